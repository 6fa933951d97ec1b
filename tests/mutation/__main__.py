"""Run mutmut's mutation operators on one module against its own test files and report survivors.

mutmut 3 itself skips decorated functions (``@asynccontextmanager``, ``@property``) and module-level
constants, which hold much of the behaviour here, so this runner takes mutmut's operators, applies
each mutant to the whole module, and runs the mapped tests in a forked child with the mutant
installed in ``sys.modules``. Hand-made mutants cover what the operators cannot express.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import importlib.util
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import libcst as cst
from mutmut.mutation.file_mutation import NEVER_MUTATE_FUNCTION_NAMES, MutationVisitor, create_mutations

from tests.mutation.handmade import HAND_MADE

ROOT = Path(__file__).resolve().parents[2]

# Each module's own tests; a module not listed uses tests/test_<name>.py.
TESTS: dict[str, tuple[str, ...]] = {
    "adapters/slack_files.py": ("tests/test_slack_units.py", "tests/test_slack_files.py"),
    "bot/flags.py": ("tests/test_flags.py", "tests/test_flag_refusals.py"),
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


def run_one(path: str, source: str | None, tests: tuple[str, ...], timeout: float) -> str:
    """'killed', 'survived' or 'hang' (the tests did not finish within ``timeout``)."""
    pid = os.fork()
    if pid == 0:
        try:
            _child(path, source, tests)
        finally:
            os._exit(3)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return "survived" if os.waitstatus_to_exitcode(status) == 0 else "killed"
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return "hang"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.mutation", description=__doc__.splitlines()[0])
    parser.add_argument("module", help="path of the module to mutate, e.g. bot/limits.py")
    parser.add_argument("--tests", nargs="+", help="test files to run (default: the module's own)")
    parser.add_argument("--only", type=int, nargs="+", help="run only these mutant numbers")
    parser.add_argument("--show", type=int, help="print one mutant's diff and exit")
    options = parser.parse_args(argv)
    path = options.module
    stem = Path(path).stem
    tests = tuple(options.tests or TESTS.get(path, (f"tests/test_{stem}.py",)))
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
    started = time.monotonic()
    if run_one(path, None, tests, 600) != "survived":
        print(f"the tests fail without any mutant: {' '.join(tests)}", file=sys.stderr)
        return 2
    timeout = max(10.0, 5 * (time.monotonic() - started))
    counts = {"killed": 0, "hang": 0, "survived": 0}
    survivors: list[Mutant] = []
    for mutant in mutants:
        outcome = run_one(path, mutant.source, tests, timeout)
        counts[outcome] += 1
        print(f"{mutant.number:4d} line {mutant.line:4d} {mutant.origin:9s} {outcome}", flush=True)
        if outcome == "survived":
            survivors.append(mutant)
    for mutant in survivors:
        print(f"\n--- survivor {mutant.number} ({mutant.origin})\n{_diff(path, original, mutant.source)}")
    total = len(mutants)
    caught = counts["killed"] + counts["hang"]
    score = 100 * caught / total if total else 100.0
    print(
        f"\n{path}: {total} mutants, {caught} caught ({counts['hang']} only by a hang), "
        f"{counts['survived']} survived: {score:.0f}% [{', '.join(tests)}]"
    )
    return 0 if not survivors else 1


def _diff(path: str, before: str, after: str) -> str:
    lines = difflib.unified_diff(before.splitlines(), after.splitlines(), path, path, n=0, lineterm="")
    return "\n".join(list(lines)[2:])


if __name__ == "__main__":
    raise SystemExit(main())
