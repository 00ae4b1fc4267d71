"""The section simulator against field signatures: wave speed and the capacity drop.

With the evaluation suite's settings (its capacity drop), a dissolving queue's front must
travel upstream within +/- 3 km/h of the configured backward wave speed, and a queue at a
recurrent bottleneck must discharge 5-10 % below the flow that preceded it.
"""

from __future__ import annotations

import functools
from datetime import datetime, timedelta, timezone

import pytest

from bench.roadstate.suite import CAPACITY_DROP
from firmware_sim.scenario import Bottleneck, Incident, Road
from firmware_sim.section import SectionRun, simulate
from firmware_sim.traffic import crossing_time, fit_slope

CST = timezone(timedelta(hours=8))
STATIONS = [6.0, 8.0, 10.0, 12.0, 14.0]


def _occupancy(run: SectionRun, index: int) -> tuple[list[float], list[float]]:
    times, occ = [], []
    for row in run.intervals:
        lanes = row[index].lanes
        assert lanes is not None
        times.append(row[index].t)
        occ.append(sum(lane.occupancy_pct for lane in lanes) / len(lanes))
    return times, occ


def _flow(run: SectionRun, index: int) -> list[float]:
    out = []
    for row in run.intervals:
        lanes = row[index].lanes
        assert lanes is not None
        out.append(sum(lane.volume for lane in lanes) * 3600 / run.interval_s / len(lanes))
    return out


@functools.cache
def _incident_run(wave_kmh: float) -> SectionRun:
    road = Road(length_km=20, lanes=3, aadt=60_000, wave_kmh=wave_kmh, capacity_drop=CAPACITY_DROP,
                incidents=[Incident(at_km=16.0, start_s=600, duration_s=1800, capacity_fraction=0.3)])
    return simulate("waves", road, STATIONS, seed=3, start=datetime(2026, 3, 2, 7, 30, tzinfo=CST),
                    duration_s=5400)


@pytest.mark.parametrize("wave_kmh", [18.0, 15.0])
def test_dissolving_queue_front_travels_at_the_configured_wave_speed(wave_kmh: float) -> None:
    run = _incident_run(wave_kmh)
    clear = []
    for i in range(len(STATIONS)):
        times, occ = _occupancy(run, i)
        t = crossing_time(times, occ, 40.0, rising=False)
        assert t is not None, f"station {STATIONS[i]} never left the queue"
        clear.append(t)
    speed = 3.6 / fit_slope([km * 1000 for km in STATIONS], clear)
    assert speed == pytest.approx(-wave_kmh, abs=3.0)


def test_queue_discharges_5_to_10_percent_below_the_pre_queue_flow() -> None:
    # Demand rises through the morning peak into a bottleneck at 85 % of capacity at km 12.5.
    road = Road(length_km=20, lanes=3, aadt=75_000, capacity_drop=CAPACITY_DROP,
                bottlenecks=[Bottleneck(at_km=12.5, capacity_fraction=0.85)])
    run = simulate("drop", road, STATIONS, seed=4, start=datetime(2026, 3, 2, 6, 0, tzinfo=CST),
                   duration_s=3 * 3600)
    _times, occ_up = _occupancy(run, STATIONS.index(12.0))
    onset = next(i for i, o in enumerate(occ_up) if o > 20.0)
    assert onset > 20, "the queue must form during the run, not at its start"
    down = _flow(run, STATIONS.index(14.0))
    window = 10  # 5 minutes of 30-s bins
    pre_queue = max(sum(down[i : i + window]) / window for i in range(onset - window))
    discharge = sum(down[onset + 10 : onset + 50]) / 40
    drop = 1 - discharge / pre_queue
    assert 0.05 <= drop <= 0.10, (pre_queue, discharge)
