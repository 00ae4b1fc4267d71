"""Traffic physics: the fundamental diagram, q = k·v per reported interval, and the congestion wave speed."""

from __future__ import annotations

import functools
from dataclasses import dataclass
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


def _mean_state(device: SimDevice, bins: range) -> tuple[float, float]:
    """Flow (veh/s/lane) and density (veh/m/lane) a station reported over some 20-s bins."""
    volume = occupancy = 0.0
    for n in bins:
        for v, o, _ in _lanes(device, n, 3):
            volume += v
            occupancy += o
    return volume / len(bins) / 3 / 20, occupancy / len(bins) / 3 / 100 / EFFECTIVE_LENGTH_M


@dataclass(frozen=True)
class Waves:
    """Crossings of 40 % occupancy at the corridor's stations (km 6-14) as the incident queue grows and clears."""

    diagram: Diagram
    devices: list[SimDevice]
    kms: list[float]
    onset: list[float]  # s: occupancy rises through 40 %, the queue's tail passes
    clear: list[float]  # s: occupancy falls through 40 %, the discharge front passes


@functools.cache
def _waves() -> Waves:
    road, devices = build_devices(_corridor())
    series = [_occupancy_series(d, 5400 // 20) for d in devices]
    # Occupancy midway between the queue (~63 %) and the flow it discharges (~14 %): CTM smears
    # fronts over a few cells, symmetrically about the middle, so crossings are timed there.
    threshold = 40.0
    onset = [crossing_time(t, [-o for o in occ], -threshold, rising=False) for t, occ in series]
    clear = [crossing_time(t, occ, threshold, rising=False) for t, occ in series]
    assert all(x is not None for x in onset + clear), (onset, clear)
    return Waves(
        road.diagram,
        devices,
        [d.spec.km for d in devices],
        [x for x in onset if x is not None],
        [x for x in clear if x is not None],
    )


def _speed_kmh(kms: list[float], times: list[float]) -> float:
    return 3.6 / fit_slope([k * 1000 for k in kms], times)


def test_recovery_wave_travels_upstream_at_the_backward_wave_speed() -> None:
    """When the incident clears, the queue dissolves from its head at -w: asserted -18 +/- 1.5 km/h.

    Both sides of that front lie on the congested branch (queue and capacity
    discharge), so its speed is the diagram's w whatever the demand. Measured with
    the corridor below: -18.1 km/h over km 14 -> 6 (DOMAIN.md: -18 +/- 1 km/h in the field).
    """
    w = _waves()
    assert _speed_kmh(w.kms, w.clear) == pytest.approx(-18.0, abs=1.5)


def test_queue_tail_travels_upstream_at_the_demand_dependent_shock_speed() -> None:
    """The tail of a growing queue moves at (q_B - q_A) / (k_B - k_A), not at -w.

    A is the traffic arriving at each station, measured from that station's
    own bins 10 to 2 minutes before the tail reaches it; B is the queue, on the
    congested branch at the bottleneck's capacity (30 % of 2,100 veh/h/lane:
    630 veh/h/lane at 105 veh/km/lane). Asserted: congestion reaches the stations
    in upstream order; the queue the stations report is state B (flow within
    40 veh/h, density within 4 veh/km); the fitted tail speed is within 1.5 km/h
    of the mean predicted speed, and each 2-km leg within 1.5 km/h of its
    stations' mean prediction. Measured: arriving 1,520-1,660 veh/h/lane at
    16.8-18.3 veh/km/lane; queue 616-634 veh/h/lane at 106-108 veh/km/lane;
    predictions -10.1 to -11.9 km/h; fitted tail speed -10.93 km/h against
    -10.94 predicted; legs -10.0 to -11.5 km/h.
    """
    w = _waves()
    d = w.diagram
    assert w.onset == sorted(w.onset, reverse=True)  # km 14 first, km 6 last
    q_b = 0.3 * d.capacity
    k_b = d.jam - q_b / d.wave
    predicted = []
    for device, onset, clear in zip(w.devices, w.onset, w.clear, strict=True):
        first, last = int(onset // 20), int(clear // 20)
        if last - first > 30:  # queued long enough to read its state
            q, k = _mean_state(device, range(first + 9, last - 9))
            assert q == pytest.approx(q_b, abs=40 / 3600), device.id
            assert k == pytest.approx(k_b, abs=0.004), device.id
        q_a, k_a = _mean_state(device, range(first - 30, first - 6))
        predicted.append(3.6 * (q_b - q_a) / (k_b - k_a))
    assert all(-25.0 < p < -5.0 for p in predicted), predicted
    assert _speed_kmh(w.kms, w.onset) == pytest.approx(sum(predicted) / len(predicted), abs=1.5)
    for i in range(len(w.kms) - 1):
        leg = _speed_kmh(w.kms[i : i + 2], w.onset[i : i + 2])
        assert leg == pytest.approx((predicted[i] + predicted[i + 1]) / 2, abs=1.5), (w.kms[i], leg, predicted)
