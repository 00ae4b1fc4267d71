"""A quick variant of `python -m bench.roadstate`: every algorithm runs on the same small suite.

It checks behaviour (every incident counted, every algorithm scored, the LOS matrix covers every
segment-interval, the truth file written), plus a floor well below the full bench's figures for
roadpulse's detector so a regression that breaks it fails here.
"""

from __future__ import annotations

import json
from pathlib import Path

from bench.roadstate.__main__ import main
from bench.roadstate.evaluate import evaluate
from bench.roadstate.suite import SuiteSpec, incident_sections, negative_days
from roadstate.engine import ALGORITHMS


def test_quick_suite_scores_every_algorithm() -> None:
    spec = SuiteSpec(seed=11, incidents=4, negative_days=0)
    runs = list(incident_sections(spec))
    report = evaluate(runs)
    assert set(report.scores) == set(ALGORITHMS)
    intervals = sum(len(r.intervals) * (len(r.stations) - 1) for r in runs)
    assert sum(sum(row) for row in report.los) == intervals
    for score in report.scores.values():
        assert score.incidents == 4
        assert score.decisions == intervals
    ours = report.scores["roadpulse"]
    assert ours.detected >= 3
    assert ours.false_alarms <= 2
    assert report.los_accuracy > 0.8


def test_cli_prints_the_table_and_writes_truth(tmp_path: Path, capsys: object) -> None:
    truth = tmp_path / "truth.jsonl"
    assert main(["--seed", "12", "--incidents", "1", "--negative-days", "0", "--truth", str(truth)]) == 0
    out = capsys.readouterr().out  # type: ignore[attr-defined]
    for name in ALGORITHMS:
        assert name in out
    assert "LOS correct" in out
    docs = [json.loads(line) for line in truth.read_text(encoding="utf-8").splitlines()]
    assert len(docs) == 1
    assert len(docs[0]["incidents"]) == 1
    assert docs[0]["segments"]


def test_negative_day_has_no_incidents_and_recurrent_congestion() -> None:
    spec = SuiteSpec(seed=13, incidents=0, negative_days=1)
    run = next(negative_days(spec))
    assert run.incidents == []
    assert len(run.intervals) == 2880
    jammed = sum(1 for row in run.segments for s in row if s.speed_kmh < 40)
    assert jammed > 50, "an incident-free day must still carry recurrent congestion"
