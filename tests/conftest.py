"""Shared fixtures: the network guard, the fake Gemini and Slack servers, a production-wired
conversation core, and a real PostgreSQL server."""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bot.gemini.capabilities import GENERATE_CONTENT
from tests.auxil import netguard
from tests.auxil.core import Core
from tests.auxil.fake_gemini import FakeGemini
from tests.auxil.fake_slack import FakeSlack
from tests.auxil.ledger import LEDGER
from tests.auxil.postgres import SHARED_POSTGRES_PORT, PostgresServer

_REFUSALS = pytest.StashKey[netguard.RefusalLog]()
_SITE_DIR = Path(__file__).parent / "auxil" / "site"


def pytest_configure(config: pytest.Config) -> None:
    """Tests never touch the network: refuse any connection or name lookup beyond loopback, here
    and in every Python process the tests start (see tests/auxil/netguard.py)."""
    handle, path = tempfile.mkstemp(prefix="nbb-network-guard-", suffix=".log")
    os.close(handle)
    netguard.install()
    netguard.enable_for_children(path, str(_SITE_DIR))
    config.stash[_REFUSALS] = netguard.RefusalLog(path)


def pytest_unconfigure(config: pytest.Config) -> None:
    log = config.stash.get(_REFUSALS, None)
    if log is not None:
        Path(log.path).unlink(missing_ok=True)


@pytest.fixture(autouse=True)
def network_refusals(request: pytest.FixtureRequest) -> Iterator[netguard.RefusalLog]:
    """Fails the test if it, or a process it started, tried to reach beyond this machine, even
    when the code under test swallowed the error. A test that provokes refusals on purpose
    ``take()``s them."""
    log = request.config.stash[_REFUSALS]
    earlier = log.take()
    if earlier:
        pytest.fail(
            "refused before this test began (a process from an earlier test?):\n" + "\n".join(earlier)
        )
    yield log
    refused = log.take()
    if refused:
        pytest.fail("the test tried to reach the network:\n" + "\n".join(refused))


@pytest.fixture(autouse=True)
def _restore_root_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
async def fake_gemini() -> AsyncIterator[FakeGemini]:
    async with FakeGemini() as fake:
        yield fake


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as fake:
        yield fake


@pytest.fixture
def engine_api() -> str:
    """The GEMINI_API the ``core`` runs on; a module importing tests.auxil.engines.both_engines
    runs its tests on each engine."""
    return GENERATE_CONTENT


@pytest.fixture
async def core(fake_gemini: FakeGemini, tmp_path: Path, engine_api: str) -> AsyncIterator[Core]:
    env = {"GEMINI_API": engine_api}
    started = await Core(fake_gemini, tmp_path / "bot.sqlite3", env=env).start()
    yield started
    await started.stop()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One real PostgreSQL server for the whole run, started on first use. If it cannot start,
    every test that needs it errors (never skips). ``NBB_TEST_POSTGRES_PORT`` names a server on
    127.0.0.1 that is already running (the mutation runner starts one for all its mutants)."""
    if port := os.environ.get(SHARED_POSTGRES_PORT):
        yield PostgresServer(attached_port=int(port))
        return
    server = PostgresServer()
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
async def postgres_url(postgres_server: PostgresServer) -> str:
    """The URL of a fresh, empty database on that server."""
    return await postgres_server.create_database()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """End the run with the fault and abuse suite's table when any of its cases ran."""
    if LEDGER.tried:
        terminalreporter.write_line("")
        for line in LEDGER.table():
            terminalreporter.write_line(line)
