"""Run mutmut's mutation operators on one module against its own test files and report survivors.

mutmut 3 itself skips decorated functions (``@asynccontextmanager``, ``@property``) and module-level
constants, which hold much of the behaviour here, so this runner takes mutmut's operators, applies
each mutant to the whole module, and runs the mapped tests in a forked child with the mutant
installed in ``sys.modules``. Hand-made mutants cover what the operators cannot express.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import importlib
import importlib.util
import os
import signal
import sys
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import libcst as cst
from mutmut.mutation.file_mutation import NEVER_MUTATE_FUNCTION_NAMES, MutationVisitor, create_mutations

from tests.auxil.postgres import SHARED_POSTGRES_PORT, PostgresServer
from tests.mutation.handmade import HAND_MADE

ROOT = Path(__file__).resolve().parents[2]

# Each module's own tests; a module not listed uses the mirrored tests/<package>/test_<name>.py.
TESTS: dict[str, tuple[str, ...]] = {
    "adapters/slack/files.py": (
        "tests/adapters/slack/test_slack_units.py",
        "tests/adapters/slack/test_slack_files.py",
    ),
    "adapters/guarded_download.py": (
        "tests/adapters/test_guarded_download.py",
        "tests/adapters/slack/test_slack_units.py",
        "tests/adapters/slack/test_slack_files.py",
    ),
    "bot/text/flags.py": ("tests/bot/text/test_flags.py", "tests/bot/text/test_flag_refusals.py"),
    "storage/pg_coordination.py": (
        "tests/storage/test_pg_coordination.py",
        "tests/storage/test_pg_outages.py",
    ),
    "storage/pg_fence.py": ("tests/storage/test_pg_outages.py",),
    "storage/sqlite_errors.py": ("tests/storage/test_full_disk.py",),
    "storage/postgres_store.py": ("tests/storage/test_postgres_store.py", "tests/test_postgres_runtime.py"),
    "storage/sql_turns.py": ("tests/storage/test_sqlite_store.py", "tests/storage/test_postgres_store.py"),
    "storage/sql_usage.py": ("tests/storage/test_sqlite_store.py", "tests/storage/test_postgres_store.py"),
    "storage/pg_processes.py": (
        "tests/storage/test_postgres_store.py",
        "tests/storage/test_pg_coordination.py",
        "tests/storage/test_pg_outages.py",
    ),
}

# Imported once in the parent so each forked child only collects and runs the tests.
_PRELOAD = (
    "pytest",
    "pytest_asyncio",
    "pytest_timeout",
    "aiohttp",
    "aiosqlite",
    "PIL.Image",
    "slack_sdk",
    "slack_bolt",
    "discord",
    "google.genai",
    "asyncpg",
)


@dataclass(frozen=True, slots=True)
class Mutant:
    number: int
    line: int
    source: str
    origin: str  # "mutmut" or "hand-made"


class _AllFunctions(MutationVisitor):
    """mutmut's visitor, but decorated functions are mutated too: mutmut skips them because its
    trampolines cannot wrap them, and a whole-module mutant needs no trampoline."""

    def _skip_node_and_children(self, node: cst.CSTNode) -> bool:
        if isinstance(node, cst.FunctionDef) and node.decorators:
            return node.name.value in NEVER_MUTATE_FUNCTION_NAMES
        return super()._skip_node_and_children(node)


def mutants_of(path: str) -> list[Mutant]:
    """Every mutant of the module at ``path``, numbered in a stable order."""
    original = (ROOT / path).read_text()
    import mutmut.mutation.file_mutation as fm

    fm.MutationVisitor = _AllFunctions  # create_mutations looks the class up by name
    module, mutations, _, _ = create_mutations(path, original)
    sources: list[tuple[str, str]] = [
        (module.deep_replace(m.original_node, m.mutated_node).code, "mutmut")
        for m in mutations
        if m.contained_by_top_level_function is not None  # module level: hand-made where it matters
    ]
    for old, new in HAND_MADE.get(path, ()):
        if original.count(old) != 1:
            raise SystemExit(f"hand-made mutant for {path} no longer matches exactly once: {old!r}")
        sources.append((original.replace(old, new), "hand-made"))
    return [
        Mutant(number, _first_changed_line(original, source), source, origin)
        for number, (source, origin) in enumerate(sources, 1)
        if source != original
    ]


def _first_changed_line(before: str, after: str) -> int:
    pairs = zip(before.splitlines(), after.splitlines(), strict=False)
    return next((i for i, (a, b) in enumerate(pairs, 1) if a != b), len(before.splitlines()))


def _child(path: str, source: str | None, tests: tuple[str, ...]) -> None:
    """In the forked child: install the mutant, run the tests quietly, exit with pytest's code."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    name = path.removesuffix(".py").replace("/", ".")
    if source is not None:
        package, _, leaf = name.rpartition(".")
        parent = importlib.import_module(package)
        spec = importlib.util.spec_from_file_location(name, ROOT / path)
        assert spec is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        exec(compile(source, str(ROOT / path), "exec"), module.__dict__)
        setattr(parent, leaf, module)
    import pytest

    args = [*tests, "-x", "-q", "-p", "no:cacheprovider", "-o", "addopts=", "--no-header"]
    os._exit(int(pytest.main(args)))


def _start(path: str, source: str | None, tests: tuple[str, ...]) -> int:
    """Fork a child that runs the tests against ``source`` (None: the module as it is)."""
    pid = os.fork()
    if pid == 0:
        try:
            os.setpgid(0, 0)  # its own group: a hang is killed with whatever the tests started
            _child(path, source, tests)
        finally:
            os._exit(3)
    return pid


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    os.waitpid(pid, 0)


def run_all(
    path: str, runs: list[tuple[int, str | None]], tests: tuple[str, ...], timeout: float, jobs: int
) -> Iterator[tuple[int, str]]:
    """Run each (number, source) in a forked child, ``jobs`` at a time; yield (number, outcome)
    as each ends: 'killed', 'survived' or 'hang' (the tests did not finish within ``timeout``)."""
    waiting = deque(runs)
    running: dict[int, tuple[int, float]] = {}
    try:
        while waiting or running:
            while waiting and len(running) < jobs:
                number, source = waiting.popleft()
                running[_start(path, source, tests)] = (number, time.monotonic() + timeout)
            for pid, (number, deadline) in list(running.items()):
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    del running[pid]
                    yield number, "survived" if os.waitstatus_to_exitcode(status) == 0 else "killed"
                elif time.monotonic() > deadline:
                    del running[pid]
                    _kill(pid)
                    yield number, "hang"
            time.sleep(0.05)
    finally:
        for pid in running:
            _kill(pid)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.mutation", description=__doc__.splitlines()[0])
    parser.add_argument("module", help="path of the module to mutate, e.g. bot/limits/quotas.py")
    parser.add_argument("--tests", nargs="+", help="test files to run (default: the module's own)")
    parser.add_argument("--only", type=int, nargs="+", help="run only these mutant numbers")
    parser.add_argument("--show", type=int, help="print one mutant's diff and exit")
    parser.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="mutants run at once (tests that mostly wait on a database can share a core)",
    )
    options = parser.parse_args(argv)
    # A stop (SIGTERM) unwinds like Ctrl-C, so the shared PostgreSQL server is stopped too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    path = options.module
    mirrored = Path("tests") / Path(path).parent / f"test_{Path(path).stem}.py"
    tests = tuple(options.tests or TESTS.get(path, (str(mirrored),)))
    os.chdir(ROOT)
    original = (ROOT / path).read_text()
    mutants = mutants_of(path)
    if options.show is not None:
        print(_diff(path, original, next(m for m in mutants if m.number == options.show).source))
        return 0
    if options.only:
        mutants = [m for m in mutants if m.number in options.only]
    for module in _PRELOAD:
        importlib.import_module(module)
    with _shared_postgres(tests):
        return _measure(path, original, mutants, tests, options.jobs)


@contextmanager
def _shared_postgres(tests: tuple[str, ...]) -> Iterator[None]:
    """One PostgreSQL server for every mutant when the tests use one: starting a server per
    mutant would cost seconds each. Each test still gets its own fresh schema on it."""
    if not any("postgres" in (ROOT / test).read_text() for test in tests):
        yield
        return
    server = PostgresServer().start()
    os.environ[SHARED_POSTGRES_PORT] = str(server.port)
    try:
        yield
    finally:
        del os.environ[SHARED_POSTGRES_PORT]
        server.stop()


def _measure(path: str, original: str, mutants: list[Mutant], tests: tuple[str, ...], jobs: int) -> int:
    started = time.monotonic()
    if next(run_all(path, [(0, None)], tests, 600, 1))[1] != "survived":
        print(f"the tests fail without any mutant: {' '.join(tests)}", file=sys.stderr)
        return 2
    # Children sharing the cores run slower than the lone baseline run.
    timeout = max(10.0, 5 * (time.monotonic() - started) * max(1.0, jobs / (os.cpu_count() or 1)))
    counts = {"killed": 0, "hang": 0, "survived": 0}
    survivors: list[Mutant] = []
    by_number = {mutant.number: mutant for mutant in mutants}
    for number, outcome in run_all(path, [(m.number, m.source) for m in mutants], tests, timeout, jobs):
        mutant = by_number[number]
        counts[outcome] += 1
        print(f"{mutant.number:4d} line {mutant.line:4d} {mutant.origin:9s} {outcome}", flush=True)
        if outcome == "survived":
            survivors.append(mutant)
    survivors.sort(key=lambda mutant: mutant.number)
    for mutant in survivors:
        case = ", letter case only" if mutant.source.lower() == original.lower() else ""
        diff = _diff(path, original, mutant.source)
        print(f"\n--- survivor {mutant.number} ({mutant.origin}{case})\n{diff}")
    # SQL keywords and unquoted names ignore case, so such survivors in SQL text are equivalent.
    case_only = sum(m.source.lower() == original.lower() for m in survivors)
    total = len(mutants)
    caught = counts["killed"] + counts["hang"]
    score = 100 * caught / total if total else 100.0
    print(
        f"\n{path}: {total} mutants, {caught} caught ({counts['hang']} only by a hang), "
        f"{counts['survived']} survived ({case_only} changing only letter case): {score:.0f}% "
        f"[{', '.join(tests)}]"
    )
    return 0 if not survivors else 1


def _diff(path: str, before: str, after: str) -> str:
    lines = difflib.unified_diff(before.splitlines(), after.splitlines(), path, path, n=0, lineterm="")
    return "\n".join(list(lines)[2:])


if __name__ == "__main__":
    raise SystemExit(main())
