"""The g60 scenario's traffic as the agent sends it, in the terms `sim load` takes.

From the shipped scenario and profiles (config files only): every device's points and poll
interval give readings per second; the agent's default batching (a message at 200 readings
or 1 s of age) gives messages per second. `sim load` then sends messages of that mean size
at that rate per virtual gateway, and a load is scaled by the number of gateways.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from pathlib import Path

from roadpulse.shipped import shipped_dir

MAX_READINGS = 200  # agent [publish] max_readings default
MAX_AGE_S = 1.0  # agent [publish] max_age_s default


@dataclass(frozen=True)
class Mix:
    scenario: str
    devices: int
    readings_per_s: float  # per gateway
    messages_per_s: float  # per gateway
    sensors: int  # points of all devices

    @property
    def per_message(self) -> int:
        return max(1, round(self.readings_per_s / self.messages_per_s))


def _points(profile: Path) -> int:
    data = tomllib.loads(profile.read_text())
    return len(data.get("registers", [])) + len(data.get("fields", []))


def _devices(scenario: dict[str, object]) -> list[tuple[str, float]]:
    """(profile, interval_s) of every device, series expanded."""
    out: list[tuple[str, float]] = []
    for series in scenario.get("series", []):  # type: ignore[attr-defined]
        count = round((series["to_km"] - series["from_km"]) / series["every_km"]) + 1
        out += [(series["profile"], float(series["interval_s"]))] * count
    for device in scenario.get("devices", []):  # type: ignore[attr-defined]
        out.append((device["profile"], float(device["interval_s"])))
    return out


def g60_mix(scenario: Path | None = None) -> Mix:
    path = scenario or shipped_dir("scenarios") / "g60-mountain.toml"
    data = tomllib.loads(path.read_text())
    profiles = shipped_dir("profiles")
    devices = [(_points(profiles / f"{name}.toml"), interval) for name, interval in _devices(data)]
    # One simulated hour, second by second: what each second's polls put into the batcher.
    horizon = 3600
    readings = messages = 0
    for second in range(horizon):
        due = sum(points for points, interval in devices if second % max(1, round(interval)) == 0)
        readings += due
        messages += math.ceil(due / MAX_READINGS) if due else 0
    return Mix(str(data.get("name", path.stem)), len(devices), readings / horizon, messages / horizon,
               sum(points for points, _ in devices))
