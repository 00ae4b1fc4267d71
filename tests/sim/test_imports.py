"""Imports point downward: the simulator stands apart from the agent it tests (it shares profiles through
roadpulse.profiles), and the shared profile package imports none of the apps."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SIM = ROOT / "firmware_sim"


def _imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def test_firmware_sim_never_imports_the_agent() -> None:
    offenders = {str(p.relative_to(SIM.parent)): sorted(m for m in _imported(p) if m.split(".")[0] == "agent")
                 for p in sorted(SIM.rglob("*.py"))}
    assert {p: m for p, m in offenders.items() if m} == {}
    assert len(offenders) > 10  # the scan saw the package


def test_the_shared_profiles_import_no_app() -> None:
    folder = ROOT / "roadpulse" / "profiles"
    apps = {"agent", "collector", "firmware_sim"}
    offenders = {p.name: sorted(m for m in _imported(p) if m.split(".")[0] in apps) for p in folder.glob("*.py")}
    assert {p: m for p, m in offenders.items() if m} == {}
    assert "catalog.py" in offenders
