"""Imports go downward only (issue 15): the shared package imports no app, the collector's outputs
import nothing above their boundary, and the collector does not import the agent."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# The command line and the demo start the apps: they are above them, not shared code.
ENTRY_POINTS = {"roadpulse/cli.py", "roadpulse/demo.py", "roadpulse/check.py", "roadpulse/__main__.py"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def _modules(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


RULES = [
    ("roadpulse", ("collector", "agent", "firmware_sim")),
    ("collector", ("agent", "firmware_sim")),
    ("collector/output", ("collector.ingest", "collector.sink", "collector.run", "collector.decode",
                          "collector.mqtt", "collector.spool")),
]


@pytest.mark.parametrize(("folder", "forbidden"), RULES, ids=[r[0] for r in RULES])
def test_imports_go_downward(folder: str, forbidden: tuple[str, ...]) -> None:
    wrong = []
    assert _modules(folder), folder
    for path in _modules(folder):
        relative = path.relative_to(ROOT).as_posix()
        if relative in ENTRY_POINTS:
            continue
        for name in _imports(path):
            if any(name == f or name.startswith(f + ".") for f in forbidden):
                wrong.append(f"{relative} imports {name}")
    assert wrong == []
