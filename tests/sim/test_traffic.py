"""Traffic physics: the fundamental diagram, q = k·v per reported interval, and the congestion wave speed."""

from __future__ import annotations

import math
from typing import Any

import pytest

from firmware_sim.detector import EFFECTIVE_LENGTH_M
from firmware_sim.device import SimDevice, build_devices
from firmware_sim.scenario import Road, Scenario
from firmware_sim.traffic import Diagram, crossing_time, fit_slope


@pytest.mark.parametrize(
    ("road", "critical_veh_km", "capacity_veh_h", "jam_flow"),
    [
        # UXsim's verification parameters (DOMAIN.md): 20 m/s, w 5 m/s, jam 0.2 veh/m.
        ({"free_flow_kmh": 72, "wave_kmh": 18, "jam_density_veh_km": 200}, 40.0, 2880.0, 0.0),
        # Our highway default: 90 km/h, 18 km/h, 140 veh/km -> 2,100 veh/h/lane.
        ({}, 23.33, 2100.0, 0.0),
        # Greenshields: q_max = v_f k_j / 4 at k_j / 2.
        ({"diagram": "greenshields", "free_flow_kmh": 90, "jam_density_veh_km": 120}, 60.0, 2700.0, 0.0),
    ],
)
def test_diagram_parameters(
    road: dict[str, Any], critical_veh_km: float, capacity_veh_h: float, jam_flow: float
) -> None:
    d = Diagram.of(Road.model_validate(road))
    assert d.critical * 1000 == pytest.approx(critical_veh_km, abs=0.01)
    assert d.capacity * 3600 == pytest.approx(capacity_veh_h, rel=1e-6)
    assert d.flow(d.jam) == jam_flow
    assert d.sending(d.jam) == pytest.approx(d.capacity)  # a jammed cell still discharges at capacity
    assert d.receiving(0.0) == pytest.approx(d.capacity)


def _corridor(**road: Any) -> Scenario:
    return Scenario.model_validate(
        {
            "name": "corridor",
            "seed": 3,
            "start": "2026-03-02T07:30:00+08:00",
            "road": {
                "length_km": 20.0,
                "lanes": 3,
                "aadt": 60_000,
                "incidents": [{"at_km": 16.0, "start_s": 600.0, "duration_s": 1800.0, "capacity_fraction": 0.3}],
                **road,
            },
            "series": [
                {
                    "id_prefix": "vds",
                    "kind": "traffic",
                    "profile": "vds_modbus",
                    "protocol": "modbus-tcp",
                    "from_km": 6.0,
                    "to_km": 14.0,
                    "every_km": 2.0,
                    "interval_s": 20.0,
                }
            ],
        }
    )


def _lanes(device: SimDevice, n: int, lanes: int) -> list[tuple[int, float, float | None]]:
    values = device.snapshot(n * device.spec.interval_s).values
    out = []
    for i in range(1, lanes + 1):
        volume, occupancy, speed = values[f"lane{i}_volume"], values[f"lane{i}_occupancy"], values[f"lane{i}_speed"]
        assert isinstance(volume, int)
        assert isinstance(occupancy, float)
        assert speed is None or isinstance(speed, float)
        out.append((volume, occupancy, speed))
    return out


def test_flow_equals_density_times_speed_in_every_interval() -> None:
    _, devices = build_devices(_corridor())
    checked = 0
    for device in devices:
        for n in range(1, 5400 // 20, 3):
            for volume, occupancy, speed in _lanes(device, n, 3):
                if volume == 0:
                    assert speed is None  # no vehicle, no speed: sent as the invalid sentinel
                    continue
                assert speed is not None
                flow = volume / 20 * 3600  # veh/h
                density = occupancy / 100 / EFFECTIVE_LENGTH_M * 1000  # veh/km
                # Within the registers' resolution: speed in whole km/h, occupancy in 0.01 %.
                resolution = density * 0.5 + speed * 0.01 / 100 / EFFECTIVE_LENGTH_M * 1000
                assert flow == pytest.approx(density * speed, abs=resolution + 1e-6)
                checked += 1
    assert checked > 1000


def test_station_aggregates_stay_on_the_fundamental_diagram() -> None:
    scenario = _corridor()
    road, devices = build_devices(scenario)
    d = road.diagram
    for device in devices:
        for n in range(1, 5400 // 20, 5):
            lanes = _lanes(device, n, 3)
            flow = sum(v for v, _, _ in lanes) / 20 / 3  # veh/s/lane
            density = sum(o for _, o, _ in lanes) / 3 / 100 / EFFECTIVE_LENGTH_M  # veh/m/lane
            # Counting noise over 20 s and lane splits: allow 20 % of capacity around the curve.
            assert flow <= d.flow(density) + 0.2 * d.capacity
            assert density <= d.jam * 1.05


def _occupancy_series(device: SimDevice, steps: int) -> tuple[list[float], list[float]]:
    times, occ = [], []
    for n in range(1, steps):
        lanes = _lanes(device, n, 3)
        times.append(n * 20.0)
        occ.append(sum(o for _, o, _ in lanes) / 3)
    return times, occ


def test_congestion_wave_travels_upstream_at_18_kmh_between_stations() -> None:
    _, devices = build_devices(_corridor())
    kms = [d.spec.km for d in devices]
    series = [_occupancy_series(d, 5400 // 20) for d in devices]
    # Occupancy midway between the queue (~65 %) and capacity flow (~14 %): where the discharge front is.
    threshold = 40.0
    onset = [crossing_time(t, [-o for o in occ], -threshold, rising=False) for t, occ in series]
    clear = [crossing_time(t, occ, threshold, rising=False) for t, occ in series]
    assert all(x is not None for x in onset + clear), (onset, clear)
    clear_speed = 3.6 / fit_slope([k * 1000 for k in kms], [c for c in clear if c is not None])
    onset_speed = 3.6 / fit_slope([k * 1000 for k in kms], [c for c in onset if c is not None])
    # The queue dissolves from its head at the backward wave speed w of the triangular diagram.
    assert clear_speed == pytest.approx(-18.0, abs=1.5)
    # The queue's tail also grows upstream; its speed depends on demand, (q_B - q_A) / (k_B - k_A).
    assert -25.0 < onset_speed < -5.0
    # Congestion reaches the stations in upstream order.
    ordered = [c for c in onset if c is not None]
    assert ordered == sorted(ordered, reverse=True)
    assert math.isfinite(clear_speed)
