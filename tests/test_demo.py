"""`roadpulse demo` as a user runs it: a subprocess, a summary, and nothing left running."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def _children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The parent pid is the 2nd field after the parenthesised command name.
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


@pytest.mark.slow
def test_demo_stores_every_reading_and_leaves_nothing_running(tmp_path: Path) -> None:
    summary_path = tmp_path / "summary.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "roadpulse", "demo", "--duration", "6", "--summary-json", str(summary_path)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    service_pids: set[int] = set()
    # Watch the demo's children while it runs: they must all be gone when it exits.
    while proc.poll() is None:
        service_pids.update(_children_of(proc.pid))
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(0.5)
    output = proc.stdout.read() if proc.stdout else ""
    assert proc.returncode == 0, output
    summary = json.loads(summary_path.read_text())
    assert summary["sent"] > 0
    assert summary["stored"] == summary["sent"], output
    assert "sent" in output
    assert "stored" in output
    assert service_pids, "the demo starts a private mosquitto and influxd"
    alive = [pid for pid in service_pids if Path(f"/proc/{pid}").exists()]
    assert not alive, f"processes left running: {alive}"
