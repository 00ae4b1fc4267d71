"""A detector station's per-lane bin: volume, occupancy, speed and length classes for one interval.

The road model gives one aggregate per interval; lanes get shares of it. A loop
measures occupancy (the time a vehicle covers it, i.e. density · L_eff) and
counts vehicles; speed is flow / density, as single-loop stations estimate it.
So every reported bin satisfies q = k·v up to the resolution of the registers.
"""

from __future__ import annotations

from dataclasses import dataclass

from firmware_sim import noise
from firmware_sim.traffic import Aggregate

# Mean vehicle length plus loop length, metres: occupancy = density · L_eff.
EFFECTIVE_LENGTH_M = 6.0
# Length class bounds (MnDOT IRIS: 7, 20, 43 ft): short < 6.1 m ≤ medium < 13.1 m ≤ long.
_TRUCK_SHARE_MEDIUM = 0.6


@dataclass(frozen=True, slots=True)
class LaneBin:
    volume: int  # vehicles in the interval
    occupancy_pct: float  # 0-100
    speed_kmh: float | None  # None when no vehicle passed: the speed is undefined
    short: int
    medium: int
    long: int


def lane_shares(lanes: int) -> list[float]:
    """Share of vehicles per lane, lane 1 the inner (fast) lane; the outer lanes carry the trucks."""
    if lanes == 1:
        return [1.0]
    raw = [1.0 + 0.12 * (1 - abs(2 * i / (lanes - 1) - 0.8)) for i in range(lanes)]
    total = sum(raw)
    return [r / total for r in raw]


def truck_share(lane: int, lanes: int) -> float:
    return 0.02 + 0.28 * (lane / (lanes - 1) if lanes > 1 else 0.5)


def bin_lanes(agg: Aggregate, lanes: int, interval_s: float, free_flow_kmh: float, *key: object) -> list[LaneBin]:
    """Split one interval's aggregate over the lanes; `key` seeds the rounding (device, interval)."""
    speed_kmh = agg.speed * 3.6
    # Lanes differ in speed while traffic flows freely and move together in congestion.
    spread = max(0.0, min(1.0, (speed_kmh / free_flow_kmh - 0.5) * 2))
    bins: list[LaneBin] = []
    for lane, share in enumerate(lane_shares(lanes)):
        wobble = 1 + 0.08 * noise.gauss(*key, lane, "share")
        expected = max(0.0, agg.vehicles * share * wobble)
        volume = noise.stochastic_round(expected, *key, lane, "volume")
        factor = 1 + spread * (0.08 - 0.16 * lane / max(1, lanes - 1))
        # Faster lanes carry their share of flow at a lower density.
        density = agg.density * share * lanes / factor  # veh/m
        if volume == 0:
            occupancy = min(100.0, round(density * EFFECTIVE_LENGTH_M * 100, 2)) if speed_kmh < 20 else 0.0
            bins.append(LaneBin(0, occupancy, None, 0, 0, 0))
            continue
        flow = volume / interval_s  # veh/s
        lane_speed = flow / density * 3.6 if density > 1e-6 else free_flow_kmh
        lane_speed = float(round(max(3.0, min(lane_speed, free_flow_kmh * 1.2))))
        # Occupancy from the count and the reported speed keeps q = k·v exact for a stray vehicle.
        occupancy = min(100.0, round(flow / (lane_speed / 3.6) * EFFECTIVE_LENGTH_M * 100, 2))
        if 5 < lane_speed < free_flow_kmh * 1.2:
            occupancy = min(100.0, round(density * EFFECTIVE_LENGTH_M * 100, 2))
        gen = noise.rng(*key, lane, "classes")
        trucks = sum(1 for _ in range(volume) if gen.random() < truck_share(lane, lanes))
        medium = sum(1 for _ in range(trucks) if gen.random() < _TRUCK_SHARE_MEDIUM)
        bins.append(LaneBin(volume, occupancy, lane_speed, volume - trucks, medium, trucks - medium))
    return bins
