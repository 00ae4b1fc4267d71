"""Imports go downward only (docs/architecture.md).

The apps (agent, collector, firmware_sim, roadstate) each import the shared package
`roadpulse` and never each other; the shared package never imports an app, except the
few modules that compose the apps into commands (the CLI, the demo, config check).
Lazy imports inside functions count too: they are read from the syntax tree.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
APPS = ("agent", "collector", "firmware_sim", "roadstate")
# Modules of the shared package that compose apps into commands: they sit on top.
COMPOSERS = ("roadpulse.cli", "roadpulse.demo", "roadpulse.check", "roadpulse.__main__")


def _modules() -> list[tuple[str, Path]]:
    found = []
    for package in (*APPS, "roadpulse"):
        base = ROOT / package
        if not base.is_dir():
            continue
        for path in sorted(base.rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found.append((".".join(parts), path))
    return found


def _imported(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _top(name: str) -> str:
    return name.split(".", 1)[0]


def _allowed(module: str, imported: str) -> bool:
    own, other = _top(module), _top(imported)
    if other not in (*APPS, "roadpulse") or other == own:
        return True
    if module.startswith(COMPOSERS):
        return True
    if own == "roadpulse":
        return False  # the shared package never reaches up into an app
    return other == "roadpulse"  # an app imports the shared package, never another app


def test_imports_go_downward_only() -> None:
    wrong = [f"{module} imports {name}"
             for module, path in _modules() for name in sorted(_imported(path))
             if not _allowed(module, name)]
    assert wrong == []


@pytest.mark.parametrize(("module", "imported", "ok"), [
    ("agent.run", "roadpulse.wire", True),
    ("collector.sink", "agent.queue.base", False),
    ("firmware_sim.device", "agent.profiles", False),
    ("roadpulse.services", "collector.run", False),
    ("roadpulse.cli", "collector.run", True),
    ("agent.run", "msgpack", True),
])
def test_the_rule_itself(module: str, imported: str, ok: bool) -> None:
    assert _allowed(module, imported) is ok


# Inside the collector, an output sits below the boundary it implements (collector/output/base.py).
ABOVE_OUTPUTS = ("collector.ingest", "collector.sink", "collector.run", "collector.decode",
                 "collector.mqtt", "collector.spool")


def test_collector_outputs_import_nothing_above_their_boundary() -> None:
    outputs = [(m, p) for m, p in _modules() if m.startswith("collector.output")]
    assert outputs
    wrong = [f"{module} imports {name}" for module, path in outputs for name in sorted(_imported(path))
             if name.startswith(ABOVE_OUTPUTS)]
    assert wrong == []
