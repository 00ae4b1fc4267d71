"""Each detector on hand-made interval sequences: an incident, a queue from downstream, missing data, restore."""

from __future__ import annotations

import json

import pytest

from roadstate.detectors import SND, California8, Detector, McMaster, PairInput
from roadstate.engine import ALGORITHMS
from roadstate.flowbalance import FlowBalance
from roadstate.state import NO_DATA, StationInterval

FREE = StationInterval(1500, 9.0, 90.0, 16.7, 0.1, 3)


def st(flow: float, occ: float, speed: float) -> StationInterval:
    return StationInterval(flow, occ, speed, occ / 100 / 6 * 1000, 0.1, 3)


def pair(up: StationInterval, down: StationInterval) -> PairInput:
    return PairInput(up, down, 30.0, 2.0, 90.0, 2100.0)


def run(det: Detector, steps: list[tuple[StationInterval, StationInterval]]) -> list[bool]:
    return [det.step(pair(u, d)).incident for u, d in steps]


# An incident in the segment: the downstream flow collapses at once, the queue reaches the
# upstream station 8 bins later and stays.
INCIDENT = [(FREE, FREE)] * 20 + [(FREE, st(600, 3.7, 90))] * 8 + [(st(600, 63, 6), st(600, 3.7, 90))] * 20
# A queue from further downstream passes both stations: downstream first, then upstream.
QUEUE_FROM_DOWNSTREAM = [(FREE, FREE)] * 20 + [(FREE, st(600, 63, 6))] * 10 + [(st(600, 63, 6), st(600, 63, 6))] * 20


# The same close to the upstream station: the queue arrives while the downstream drop is recent,
# the pattern California #8's DOCCTD test needs.
INCIDENT_NEAR_UPSTREAM = (
    [(FREE, FREE)] * 20 + [(FREE, st(600, 3.7, 90))] * 2 + [(st(600, 63, 6), st(600, 3.7, 90))] * 20
)


@pytest.mark.parametrize(
    ("make", "steps", "detects_by"),
    [(FlowBalance, INCIDENT, 24), (California8, INCIDENT_NEAR_UPSTREAM, 28), (McMaster, INCIDENT, 32),
     (SND, INCIDENT, 32)],
)
def test_each_detector_declares_the_incident(make: type[Detector], steps: list[tuple[StationInterval,
                                             StationInterval]], detects_by: int) -> None:
    states = run(make(), steps)
    assert not any(states[:20])
    assert any(states[:detects_by]), states


def test_california8_needs_the_downstream_drop_and_the_upstream_rise_together() -> None:
    # Far from the upstream station the drop is old news when the queue arrives: #8 misses it.
    assert not any(run(California8(), INCIDENT))


@pytest.mark.parametrize("make", [FlowBalance, California8, McMaster])
def test_a_queue_arriving_from_downstream_is_not_an_incident(make: type[Detector]) -> None:
    assert not any(run(make(), QUEUE_FROM_DOWNSTREAM))


def test_roadpulse_detects_before_the_queue_reaches_the_upstream_station() -> None:
    states = run(FlowBalance(), INCIDENT)
    assert states.index(True) < 28


def test_roadpulse_ignores_a_bottleneck_discharging_near_capacity() -> None:
    # Upstream queued, downstream free at 93 % of 85 % of capacity: recurrent congestion.
    steps = [(FREE, FREE)] * 20 + [(st(1660, 40, 40), st(1660, 10.2, 88))] * 40
    assert not any(run(FlowBalance(), steps))


@pytest.mark.parametrize("name", sorted(ALGORITHMS))
def test_missing_data_holds_state_and_snapshot_restores_it(name: str) -> None:
    det = ALGORITHMS[name]()
    run(det, INCIDENT[:26])
    held = det.snapshot()
    det.step(pair(NO_DATA, FREE))
    assert det.snapshot() == held
    clone = ALGORITHMS[name]()
    clone.restore(json.loads(json.dumps(det.snapshot())))
    rest = INCIDENT[26:]
    assert run(clone, rest) == run(det, rest)
