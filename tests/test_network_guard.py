"""The tests' network guard: nothing beyond loopback is reached, in the test process or its children."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.auxil import netguard
from tests.auxil.process import bot_env, run_bot

# TEST-NET-1 (RFC 5737): documentation only, never routed; port 9 is "discard".
OUTSIDE = ("192.0.2.1", 9)


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A TCP socket listening on 127.0.0.1 (connections complete in its backlog, never accepted)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        yield server


@pytest.fixture
def real_connects(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every address that reached the real ``socket.connect`` system call."""
    reached: list[Any] = []
    real = netguard.REAL["connect"]

    def spy(sock: socket.socket, address: Any) -> None:
        reached.append(address)
        return real(sock, address)

    monkeypatch.setitem(netguard.REAL, "connect", spy)
    return reached


def test_a_connection_beyond_loopback_is_refused_before_the_system_call(
    network_refusals: netguard.RefusalLog, real_connects: list[Any]
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        with pytest.raises(netguard.NetworkRefused, match=r"192\.0\.2\.1"):
            sock.connect(OUTSIDE)
        # The kernel never saw a connect: the socket has no local port and no peer.
        assert sock.getsockname() == ("0.0.0.0", 0)
        with pytest.raises(OSError):
            sock.getpeername()
        with pytest.raises(netguard.NetworkRefused):
            sock.connect_ex(OUTSIDE)
    with pytest.raises(netguard.NetworkRefused):
        socket.create_connection(OUTSIDE, timeout=1)
    assert real_connects == []
    refused = network_refusals.take()
    assert len(refused) == 3 and all("192.0.2.1" in line for line in refused)


def test_loopback_and_unix_sockets_are_allowed(
    listener: socket.socket, real_connects: list[Any], tmp_path: Path
) -> None:
    port = listener.getsockname()[1]
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        assert sock.getpeername() == ("127.0.0.1", port)
    with socket.create_connection(("localhost", port), timeout=5) as sock:
        assert sock.getpeername()[1] == port
    assert ("127.0.0.1", port) in real_connects
    # asyncio's self-pipe and PostgreSQL's socket directory are unix sockets.
    left, right = socket.socketpair()
    with left, right:
        left.sendall(b"x")
        assert right.recv(1) == b"x"
    path = str(tmp_path / "s")
    with socket.socket(socket.AF_UNIX) as server, socket.socket(socket.AF_UNIX) as client:
        server.bind(path)
        server.listen(1)
        client.connect(path)
    assert path in real_connects


def test_name_lookups_beyond_localhost_are_refused(network_refusals: netguard.RefusalLog) -> None:
    for lookup in (
        lambda: socket.getaddrinfo("example.com", 443),
        lambda: socket.gethostbyname("example.com"),
        lambda: socket.create_connection(("example.com", 443), timeout=1),
    ):
        with pytest.raises(netguard.NetworkRefused, match=r"example\.com"):
            lookup()
    assert len(network_refusals.take()) == 3
    # No query leaves for these: loopback by name, address literals, a server's wildcard.
    assert socket.getaddrinfo("localhost", 80)
    assert socket.getaddrinfo("192.0.2.1", 9)[0][4] == OUTSIDE
    assert socket.getaddrinfo(None, 0, flags=socket.AI_PASSIVE)


def test_datagrams_beyond_loopback_are_refused(network_refusals: netguard.RefusalLog) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        with pytest.raises(netguard.NetworkRefused):
            sock.sendto(b"x", OUTSIDE)
        with pytest.raises(netguard.NetworkRefused):
            sock.sendmsg([b"x"], [], 0, OUTSIDE)
        assert sock.getsockname() == ("0.0.0.0", 0)  # never bound: nothing was sent
        receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with receiver:
            receiver.bind(("127.0.0.1", 0))
            sock.sendto(b"y", receiver.getsockname())
            assert receiver.recv(1) == b"y"
    assert len(network_refusals.take()) == 2


async def test_the_http_client_the_bot_uses_is_refused(network_refusals: netguard.RefusalLog) -> None:
    async with aiohttp.ClientSession() as session:
        # A reserved name (RFC 2606): were the guard broken, the lookup still reaches no real host.
        for url in ("http://192.0.2.1:9/", "https://gemini.nano-banana.invalid/"):
            with pytest.raises(netguard.NetworkRefused):
                async with asyncio.timeout(10), session.get(url):
                    pass
    refused = network_refusals.take()
    assert "192.0.2.1" in refused[0] and "gemini.nano-banana.invalid" in refused[-1]


CHILD = """
import json, socket, sys
outcomes = {}
for name, address in (("outside", ("192.0.2.1", 9)), ("loopback", ("127.0.0.1", int(sys.argv[1])))):
    try:
        socket.create_connection(address, timeout=2).close()
        outcomes[name] = "connected"
    except Exception as exc:
        outcomes[name] = type(exc).__name__
print(json.dumps(outcomes))
"""


def test_a_child_process_gets_the_guard(
    listener: socket.socket, network_refusals: netguard.RefusalLog
) -> None:
    # Started the way the tests start the bot: the inherited environment, PYTHONPATH extended.
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(listener.getsockname()[1])],
        env=bot_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert json.loads(child.stdout) == {"outside": "NetworkRefused", "loopback": "connected"}
    refused = network_refusals.take()
    assert len(refused) == 1 and "192.0.2.1" in refused[0]


def test_the_bot_process_is_refused_a_gemini_beyond_loopback(
    tmp_path: Path, network_refusals: netguard.RefusalLog
) -> None:
    env = {"GEMINI_API_KEY": "k", "GOOGLE_GEMINI_BASE_URL": "http://192.0.2.1:9"}
    result = run_bot(["console"], tmp_path, env, "a cat\n")
    refused = network_refusals.take()
    assert refused, result.stderr
    assert all("192.0.2.1" in line for line in refused)
    # Loud on purpose: the refusal is not a network error the bot would politely absorb.
    assert "NetworkRefused" in result.stderr


def test_a_test_that_swallows_the_refusal_still_fails(tmp_path: Path) -> None:
    (tmp_path / "test_swallow.py").write_text(
        "import socket\n"
        "def test_swallows():\n"
        "    try:\n"
        "        socket.create_connection(('192.0.2.1', 9), timeout=1)\n"
        "    except Exception:\n"
        "        pass\n"
    )
    inner = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "tests.conftest", "-p", "no:cacheprovider"],
        cwd=tmp_path,
        env=bot_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert inner.returncode == 1, inner.stdout
    assert "1 passed, 1 error" in inner.stdout
    assert "the test tried to reach the network" in inner.stdout


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("127.0.0.1", True),
        ("127.1.2.3", True),
        ("::1", True),
        ("::ffff:127.0.0.1", True),
        ("localhost", True),
        ("LOCALHOST", True),
        (b"127.0.0.1", True),
        ("0.0.0.0", False),  # Linux would route this to the machine itself; nothing here needs it
        ("10.0.0.1", False),
        ("192.168.1.1", False),
        ("::ffff:192.0.2.1", False),
        ("2001:db8::1", False),
        ("localhost.example.com", False),
        ("example.com", False),
    ],
)
def test_which_hosts_count_as_this_machine(host: str | bytes, allowed: bool) -> None:
    assert netguard._host_allowed(host) is allowed
