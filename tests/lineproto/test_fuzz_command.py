"""The fuzz command's mechanics, on a few hundred cases (its findings are the property tests')."""

from __future__ import annotations

import pytest

from tests.lineproto import fuzz
from tests.lineproto.hostile import hostile_case


def test_cases_are_reproducible_by_number() -> None:
    assert hostile_case(fuzz._rng(7, 42)).payload == hostile_case(fuzz._rng(7, 42)).payload
    assert hostile_case(fuzz._rng(7, 42)).payload != hostile_case(fuzz._rng(7, 43)).payload


def test_a_chunk_counts_every_case_once() -> None:
    tally = fuzz.run_chunk((3, 0, 120, 0.05))
    assert tally.cases == 120
    # one outcome per case, but for cases where every loop raised (those count as exceptions)
    assert 120 - tally.counts["exception"] <= sum(tally.outcomes.values()) <= 120
    assert all(len(cases) <= fuzz.EXAMPLES for cases in tally.examples.values())
    both = fuzz.Tally()
    both.add(tally)
    both.add(tally)
    assert both.cases == 240
    assert both.counts == tally.counts + tally.counts


def test_report_names_every_finding_and_the_time_bound() -> None:
    tally = fuzz.run_chunk((3, 0, 20, 0.05))
    text = fuzz.report(tally, seed=3, cases=20, elapsed=1.0, stopped=False, slow_s=0.05)
    for name in fuzz.FINDINGS:
        assert (name if name != "slow" else "slow (> 50 ms CPU per message)") in text
    assert "dead letters by reason:" in text


def test_only_shows_one_case(capsys: pytest.CaptureFixture[str]) -> None:
    assert fuzz.main(["--seed", "3", "--only", "5"]) == 0
    out = capsys.readouterr().out
    assert "message on" in out
    assert "C loop" in out
    assert "Python path" in out
