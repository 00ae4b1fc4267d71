"""`python -m bench --quick` runs every section end to end and reports every figure, losing nothing.

Behaviour only: the figures' values are the bench's business (bench/results/latest.json,
docs/performance.md), not a test's; timing is not checked.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench import report

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_quick_bench_reports_every_figure_and_loses_nothing(tmp_path: Path) -> None:
    out = tmp_path / "quick.json"
    doc = tmp_path / "performance.md"
    proc = subprocess.run([sys.executable, "-m", "bench", "--quick", "--json", str(out), "--docs", str(doc)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert out.exists(), proc.stdout[-2000:] + proc.stderr[-2000:]
    results = json.loads(out.read_text())
    assert report.missing(results) == []
    for phase in ("limits", "overload", "drain", "latency", "storage"):
        assert results[phase]["lost"] == 0, (phase, results[phase])
    assert results["system"]["collector"]["lost"] == 0
    assert results["system"]["collector"]["readings"] > 0
    assert report.total_lost(results) == 0
    assert proc.returncode == 0, proc.stderr[-2000:]
    # The table printed and the document hold every figure.
    for label, *_ in report.rows(results):
        assert label in proc.stdout
        assert label.strip() in doc.read_text()


def test_a_missing_figure_is_reported_and_shown_as_not_available() -> None:
    results: dict[str, object] = {"system": {"collector": {"cpu_us": {"total": 1.0}}}}
    assert "whole-system CPU per reading (collector + mosquitto + influxd)" not in report.missing(results)
    assert "agent RSS with 100 sensors" in report.missing(results)
    rows = {label: (value, verdict) for label, value, _t, verdict in report.rows(results)}
    assert rows["whole-system CPU per reading (collector + mosquitto + influxd)"] == ("1.00 µs", "pass")
    assert rows["agent RSS with 100 sensors"] == ("n/a", "miss")
    assert report.total_lost(results) is None
