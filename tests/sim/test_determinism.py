"""Same scenario and seed, same values: pure models, register images, and the served truth."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from firmware_sim.clock import ManualClock
from firmware_sim.device import SimDevice, build_devices
from firmware_sim.runner import Simulator
from firmware_sim.scenario import Scenario, load_scenario
from firmware_sim.truth import read_truth

from .wire_clients import tcp_exchange

G60 = Path(__file__).resolve().parents[2] / "config" / "scenarios" / "g60-mountain.toml"
TIMES = [0.0, 35.0, 600.0, 1234.5, 2400.0, 3599.0]


def _sample(devices: list[SimDevice], times: list[float]) -> list[tuple[str, float, dict[str, Any]]]:
    return [(d.id, t, d.snapshot(t).values) for t in times for d in devices]


def test_same_seed_same_values_for_every_device() -> None:
    scenario = load_scenario(G60)
    _, first = build_devices(scenario)
    _, second = build_devices(scenario)
    # Read the second copy in reverse order: values must not depend on who asked first.
    forward = _sample(first, TIMES)
    backward = {(d, t): v for d, t, v in _sample(second[::-1], TIMES[::-1])}
    assert all(backward[(d, t)] == v for d, t, v in forward)


def test_another_seed_gives_other_values() -> None:
    scenario = load_scenario(G60)
    other = scenario.model_copy(update={"seed": scenario.seed + 1})
    _, a = build_devices(scenario)
    _, b = build_devices(other)
    assert _sample(a, TIMES[1:3]) != _sample(b, TIMES[1:3])


def test_register_images_are_reproducible() -> None:
    scenario = load_scenario(G60)
    _, a = build_devices(scenario)
    _, b = build_devices(scenario)
    for x, y in zip(a, b, strict=True):
        if x.ends:
            assert x.image(x.snapshot(900.0)).words == y.image(y.snapshot(900.0)).words


@pytest.mark.slow
def test_served_truth_is_identical_across_runs(make_scenario: Callable[..., Scenario], tmp_path: Path) -> None:
    async def run(path: Path) -> None:
        clock = ManualClock()
        async with Simulator(make_scenario(), truth_path=path, clock=clock) as sim:
            for t in (5.0, 25.0, 65.0):
                clock.set(t)
                await asyncio.to_thread(tcp_exchange, sim.endpoint("vds1").address, bytes.fromhex("04 0000 0028"))

    def strip(path: Path) -> list[dict[str, Any]]:
        # The free-running NMEA talker emits per wall time; the polled station is what we compare.
        return [
            {k: v for k, v in row.items() if k != "wall_time"} for row in read_truth(path) if row["device_id"] == "vds1"
        ]

    asyncio.run(run(tmp_path / "a.jsonl"))
    asyncio.run(run(tmp_path / "b.jsonl"))
    rows = strip(tmp_path / "a.jsonl")
    assert len(rows) == 3 * 28
    assert rows == strip(tmp_path / "b.jsonl")
    assert {r["point"] for r in rows} >= {"lane1_volume", "lane4_speed", "device_clock"}
