"""One simulated device: its model, its profile, its faults, and what it shows at a simulated instant.

Transports ask a device for a snapshot at the current simulated time and encode
it; everything here is pure and deterministic, so tests call it without servers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from firmware_sim import noise
from firmware_sim.faults import FaultPlan
from firmware_sim.models import (
    BridgeModel,
    CityModel,
    HydroModel,
    Place,
    TrafficModel,
    TunnelModel,
    ValueModel,
    Values,
    WeatherModel,
)
from firmware_sim.registers import Image, block_end, build_image
from firmware_sim.scenario import DeviceSpec, Scenario
from firmware_sim.traffic import RoadModel
from roadpulse.configfile import ConfigError
from roadpulse.profiles import ModbusProfile, SerialProfile, load_profile

# Points every device computes from its own state rather than from a model.
COUNTERS = ("uptime_s", "bin_seq", "device_clock")


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What the device shows during interval n; `faults` names the value faults in force."""

    t: float
    n: int
    values: Values
    faults: tuple[str, ...] = ()


class SimDevice:
    def __init__(
        self,
        spec: DeviceSpec,
        profile: ModbusProfile | SerialProfile,
        model: ValueModel,
        plan: FaultPlan,
        start_epoch: float,
    ) -> None:
        self.spec = spec
        self.profile = profile
        self.model = model
        self.plan = plan
        self.start_epoch = start_epoch
        self._cache: dict[tuple[int, float], Values] = {}
        # Modbus points need a sentinel to send "no value"; ASCII frames mark any field invalid.
        self._can_be_invalid = (
            {r.name for r in profile.registers if r.invalid}
            if isinstance(profile, ModbusProfile)
            else {f.name for f in profile.fields}
        )
        self.ends = (
            {k: block_end(profile, k) for k in ("holding", "input", "coil", "discrete")}
            if isinstance(profile, ModbusProfile)
            else {}
        )

    @property
    def id(self) -> str:
        return self.spec.id

    def interval_of(self, t: float) -> int:
        return math.floor(t / self.spec.interval_s)

    def _model_values(self, n: int, boot: float) -> Values:
        key = (n, boot)
        if key not in self._cache:
            if len(self._cache) > 64:
                self._cache.clear()
            self._cache[key] = self.model.values(n, boot)
        return self._cache[key]

    def clock(self, t: float) -> float:
        """The device's own idea of Unix time: start offset plus accumulated drift."""
        drift = 0.0
        for w in self.plan.for_device(self.id):
            if w.kind == "clock_drift" and w.start_s < t:
                drift += w.size * 1e-6 * (min(t, w.end_s) - w.start_s)
        return self.start_epoch + t + self.spec.clock_offset_s + drift

    def snapshot(self, t: float) -> Snapshot:
        interval = self.spec.interval_s
        n = self.interval_of(t)
        boot = self.plan.last_boot(self.id, t)
        faults: list[str] = []
        stuck = self.plan.active(self.id, "stuck", t)
        model_n = n
        if stuck is not None:
            model_n = self.interval_of(stuck.start_s)
            faults.append("stuck")
        values = dict(self._model_values(model_n, boot))
        if boot > 0 and t < boot + interval:
            # Sensors warm up after a reboot: the first interval carries invalid sentinels.
            values = {k: None if k in self._can_be_invalid else v for k, v in values.items()}
            faults.append("warming")
        spike = self.plan.hits(self.id, "spike", t, n)
        if spike is not None:
            numeric = sorted(k for k, v in values.items() if isinstance(v, int | float) and not isinstance(v, bool))
            if numeric:
                name = noise.rng(self.plan.seed, self.id, "spike-point", n).choice(numeric)
                value = values[name]
                assert isinstance(value, int | float)
                spiked = value * spike.size if value else spike.size
                values[name] = round(spiked) if isinstance(value, int) else spiked
                faults.append(f"spike:{name}")
        if self.plan.active(self.id, "clock_drift", t) is not None:
            faults.append("clock_drift")
        values["uptime_s"] = int(t - boot) + (0 if boot > 0 else 86_400 * 3)
        values["bin_seq"] = n - math.floor(boot / interval)
        values["device_clock"] = int(self.clock(t))
        return Snapshot(t, n, values, tuple(faults))

    def image(self, snap: Snapshot) -> Image:
        assert isinstance(self.profile, ModbusProfile)
        return build_image(self.profile, snap.values)

    def offline(self, t: float) -> bool:
        """Rebooting or link down: the device does not answer at all."""
        return self.plan.rebooting(self.id, t) or self.plan.link_down(self.id, t)


def elevation_at(scenario: Scenario, km: float) -> float:
    road = scenario.road
    frac = km / road.length_km if road.length_km else 0.0
    return road.elevation_start_m + (road.elevation_end_m - road.elevation_start_m) * frac


def build_devices(scenario: Scenario, profile_dirs: list[Path] | None = None) -> tuple[RoadModel, list[SimDevice]]:
    """Every device of a scenario, sharing one road model and one fault plan."""
    offset = scenario.start.utcoffset() or timedelta(0)
    road = RoadModel(scenario.road, scenario.seed, scenario.start_epoch, offset)
    plan = FaultPlan.from_scenario(scenario)
    local0_h = scenario.start.hour + scenario.start.minute / 60 + scenario.start.second / 3600
    devices: list[SimDevice] = []
    for spec in scenario.all_devices():
        place = Place(scenario.seed, spec.id, spec.km, elevation_at(scenario, spec.km), local0_h, spec.interval_s)
        model: ValueModel
        if spec.kind == "traffic":
            model = TrafficModel(place, road)
        elif spec.kind == "weather":
            model = WeatherModel(place)
        elif spec.kind == "tunnel":
            model = TunnelModel(place, road)
        elif spec.kind == "bridge":
            model = BridgeModel(place, road)
        elif spec.kind == "city":
            model = CityModel(place)
        else:
            model = HydroModel(place)
        profile = load_profile(spec.profile, profile_dirs)
        wants_modbus = spec.protocol in ("modbus-tcp", "modbus-rtu")
        if wants_modbus != isinstance(profile, ModbusProfile):
            raise ConfigError(
                scenario.name,
                [(f"devices.{spec.id}.profile", f"profile {spec.profile!r} cannot be served over {spec.protocol}")],
            )
        devices.append(SimDevice(spec, profile, model, plan, scenario.start_epoch))
    return road, devices
