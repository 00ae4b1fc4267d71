"""Helpers for simulator tests: small scenarios built in code."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from firmware_sim.scenario import Scenario

MakeScenario = Callable[..., Scenario]


@pytest.fixture
def make_scenario() -> MakeScenario:
    return build_scenario


def build_scenario(**overrides: Any) -> Scenario:
    """A 2-device road (TCP detector, RTU weather+hydro on one bus, NMEA, Vaisala) with overrides."""
    base: dict[str, Any] = {
        "name": "test",
        "seed": 11,
        "start": "2026-03-02T08:00:00+08:00",
        "time_scale": 1.0,
        "road": {"length_km": 6.0, "lanes": 4, "aadt": 50_000},
        "buses": [{"id": "bus1", "baudrate": 19200}],
        "devices": [
            {"id": "vds1", "kind": "traffic", "profile": "vds_modbus", "protocol": "modbus-tcp", "km": 3.0},
            {
                "id": "rws1",
                "kind": "weather",
                "profile": "rws_modbus",
                "protocol": "modbus-rtu",
                "bus": "bus1",
                "unit": 2,
                "km": 3.0,
                "interval_s": 10.0,
            },
            {
                "id": "hyd1",
                "kind": "hydro",
                "profile": "hydro_modbus",
                "protocol": "modbus-rtu",
                "bus": "bus1",
                "unit": 5,
                "km": 3.0,
                "interval_s": 10.0,
            },
            {
                "id": "wxt1",
                "kind": "weather",
                "profile": "wxt_ascii",
                "protocol": "ascii",
                "km": 3.0,
                "interval_s": 10.0,
            },
            {
                "id": "wind1",
                "kind": "weather",
                "profile": "wind_nmea",
                "protocol": "ascii",
                "km": 3.0,
                "interval_s": 0.2,
                "free_running": True,
            },
        ],
    }
    base.update(overrides)
    return Scenario.model_validate(base)
