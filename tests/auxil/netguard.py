"""Refuse every connection and name lookup beyond this machine, in the tests and their subprocesses."""

# The test suite installs this in its own process (tests/conftest.py) and, through
# tests/auxil/site/sitecustomize.py, in every Python process it starts: the variables below are
# put in os.environ before any test runs, so children inherit them.
#
# Allowed: loopback addresses (127.0.0.0/8, ::1, ::ffff:127.x), the name "localhost", unix
# sockets (PostgreSQL's, asyncio's self-pipe) and binding any address (a server on 0.0.0.0 sends
# nothing). Refused, before the system call that would send a packet: connect/connect_ex/sendto/
# sendmsg to any other address, and resolving any other name (a DNS query is traffic).
#
# A refusal raises NetworkRefused (a RuntimeError, so code that handles network errors as OSError
# does not quietly absorb it) and appends one line to the refusal log, which the suite reads after
# every test: a refusal fails the test even when the code under test swallowed the exception, and
# even when it happened in a subprocess.

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Callable
from typing import Any

ENABLE_VAR = "NBB_NETWORK_GUARD"  # "1": install in every Python process that starts
LOG_VAR = "NBB_NETWORK_GUARD_LOG"  # file that refusals are appended to, one line each
ALLOWED_NAMES = frozenset({"localhost", "localhost.", "ip6-localhost", "ip6-loopback"})
_INET = (socket.AF_INET, socket.AF_INET6)

# The functions the guard wraps, as they were; the guard calls these once a target is allowed.
REAL: dict[str, Callable[..., Any]] = {}


class NetworkRefused(RuntimeError):
    """A test tried to reach beyond this machine."""


def _is_loopback_literal(host: str) -> bool | None:
    """True/False for an IP address literal, None for a name."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or bool(mapped and mapped.is_loopback)


def _host_allowed(host: object) -> bool:
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    if not isinstance(host, str):
        return False
    literal = _is_loopback_literal(host)
    return literal if literal is not None else host.lower() in ALLOWED_NAMES


def _refuse(what: str, target: object) -> None:
    message = f"network guard: refused {what} {target!r} (tests only reach 127.0.0.1, ::1, localhost)"
    path = os.environ.get(LOG_VAR)
    if path:
        with open(path, "a", encoding="utf-8") as log:
            log.write(f"pid {os.getpid()}: {message}\n")
    raise NetworkRefused(message)


def _check_address(sock: socket.socket, address: object, what: str) -> None:
    if sock.family in _INET and not (isinstance(address, tuple) and _host_allowed(address[0])):
        _refuse(what, address)


def _guarded_connect(self: socket.socket, address: Any) -> None:
    _check_address(self, address, "a connection to")
    return REAL["connect"](self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> int:
    _check_address(self, address, "a connection to")
    return int(REAL["connect_ex"](self, address))


def _guarded_sendto(self: socket.socket, data: Any, *args: Any) -> int:
    _check_address(self, args[-1], "a datagram to")
    return int(REAL["sendto"](self, data, *args))


def _guarded_sendmsg(self: socket.socket, buffers: Any, *args: Any) -> int:
    if len(args) >= 3 and args[2] is not None:
        _check_address(self, args[2], "a message to")
    return int(REAL["sendmsg"](self, buffers, *args))


def _lookup_allowed(host: object) -> bool:
    """None or "" ask for the wildcard or loopback address, and an address literal (any) needs no
    query; only ``localhost`` among names."""
    if host is None:
        return True
    text = host.decode(errors="replace") if isinstance(host, bytes) else str(host)
    return text == "" or _is_loopback_literal(text) is not None or text.lower() in ALLOWED_NAMES


def _guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    if not _lookup_allowed(host):
        _refuse("a name lookup of", host)
    return REAL["getaddrinfo"](host, *args, **kwargs)


def _guarded_lookup(name: str) -> Callable[[str], Any]:
    def lookup(host: str) -> Any:
        if not _lookup_allowed(host):
            _refuse("a name lookup of", host)
        return REAL[name](host)

    return lookup


def install() -> None:
    """Wrap the socket functions in this process; idempotent."""
    if REAL:
        return
    for name, guarded in (
        ("connect", _guarded_connect),
        ("connect_ex", _guarded_connect_ex),
        ("sendto", _guarded_sendto),
        ("sendmsg", _guarded_sendmsg),
    ):
        REAL[name] = getattr(socket.socket, name)
        setattr(socket.socket, name, guarded)
    REAL["getaddrinfo"] = socket.getaddrinfo
    socket.getaddrinfo = _guarded_getaddrinfo
    for name in ("gethostbyname", "gethostbyname_ex"):
        REAL[name] = getattr(socket, name)
        setattr(socket, name, _guarded_lookup(name))


def enable_for_children(log_path: str, site_dir: str) -> None:
    """Make every Python process started from now on install the guard too (through
    ``site_dir``'s sitecustomize) and log refusals to ``log_path``."""
    os.environ[ENABLE_VAR] = "1"
    os.environ[LOG_VAR] = log_path
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if site_dir not in paths:
        os.environ["PYTHONPATH"] = os.pathsep.join([site_dir, *paths])


class RefusalLog:
    """The refusal log, read in order: ``take()`` is what was refused since the last ``take()``."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._offset = 0

    def take(self) -> list[str]:
        with open(self.path, "rb") as log:
            log.seek(self._offset)
            data = log.read()
        complete = data[: data.rfind(b"\n") + 1]  # a line still being written waits for next time
        self._offset += len(complete)
        return complete.decode(errors="replace").splitlines()
