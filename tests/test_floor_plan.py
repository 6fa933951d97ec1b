"""The floor plan holds: one-way dependencies, the seams in one place, and the shape limits."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("bot", "adapters", "storage")
MAX_MODULE_LINES = 450
MAX_FUNCTION_LINES = 60
MAX_SERVICE_METHODS = 15
MAX_MODULES_DIRECTLY_IN_BOT = 12


def modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def imported(path: Path) -> Iterator[str]:
    """Every module ``path`` imports, wherever in the file (lazy imports count)."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


def importers(package: str, target: str) -> list[str]:
    return [
        str(path.relative_to(ROOT))
        for path in modules(package)
        if any(name == target or name.startswith(target + ".") for name in imported(path))
    ]


def test_every_package_has_modules() -> None:
    # The checks below pass vacuously on an empty tree; this one cannot.
    assert all(len(modules(package)) > 10 for package in PACKAGES)


def test_storage_imports_nothing_from_the_core_or_the_adapters() -> None:
    assert importers("storage", "bot") == []
    assert importers("storage", "adapters") == []


def test_the_core_never_imports_an_adapter() -> None:
    assert importers("bot", "adapters") == ["bot/runtime.py"]  # the runtime starts the configured ones


@pytest.mark.parametrize(
    ("library", "allowed"),
    [("google.genai", "bot/gemini/"), ("discord", "adapters/discord/"), ("slack_bolt", "adapters/slack/")],
)
def test_only_one_package_imports_each_platform_library(library: str, allowed: str) -> None:
    users = [path for package in PACKAGES for path in importers(package, library)]
    assert users, f"nothing imports {library}: the check would pass vacuously"
    assert [path for path in users if not path.startswith(allowed)] == []


def test_protocols_of_the_core_are_declared_in_its_ports() -> None:
    declared_elsewhere = []
    for path in modules("bot"):
        for node in ast.parse(path.read_text()).body:
            bases = [ast.unparse(base) for base in getattr(node, "bases", [])]
            if isinstance(node, ast.ClassDef) and "Protocol" in bases and not node.name.startswith("_"):
                declared_elsewhere.append(f"{path.relative_to(ROOT)}:{node.name}")
    assert [entry for entry in declared_elsewhere if not entry.startswith("bot/ports.py:")] == []


def test_bot_is_a_floor_plan_of_subpackages() -> None:
    direct = sorted(path.name for path in (ROOT / "bot").glob("*.py"))
    assert len(direct) <= MAX_MODULES_DIRECTLY_IN_BOT, direct


def test_modules_and_functions_stay_small() -> None:
    too_long = []
    for package in PACKAGES:
        for path in modules(package):
            source = path.read_text()
            if source.count("\n") > MAX_MODULE_LINES:
                too_long.append(f"{path.relative_to(ROOT)}: {source.count(chr(10))} lines")
            for node in ast.walk(ast.parse(source)):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    length = (node.end_lineno or node.lineno) - node.lineno + 1
                    if length > MAX_FUNCTION_LINES:
                        too_long.append(f"{path.relative_to(ROOT)}:{node.name}: {length} lines")
    assert too_long == []


def test_the_service_stays_a_small_door() -> None:
    tree = ast.parse((ROOT / "bot/entry/service.py").read_text())
    service = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "ConversationService")
    public = [
        n.name
        for n in service.body
        if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) and not n.name.startswith("_")
    ]
    assert len(public) <= MAX_SERVICE_METHODS, public
