"""Scenario files: one road section, its devices and protocols, its faults, a seed.

A scenario is plain data. Everything the simulator emits is a function of the
scenario (including its seed) and of simulated time, so two runs of one file
serve the same values at the same simulated instants.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, model_validator

from roadpulse.configfile import Strict, load_model

Id = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.\-]{1,64}$")]
DeviceKind = Literal["traffic", "weather", "tunnel", "bridge", "city", "hydro"]
Protocol = Literal["modbus-tcp", "modbus-rtu", "ascii"]
FaultKind = Literal[
    "timeout", "crc", "garbage", "partial", "exception", "reboot", "stuck", "spike", "clock_drift", "link_flap"
]
FAULT_KINDS: tuple[FaultKind, ...] = (
    "timeout",
    "crc",
    "garbage",
    "partial",
    "exception",
    "reboot",
    "stuck",
    "spike",
    "clock_drift",
    "link_flap",
)
NonNeg = Annotated[float, Field(ge=0)]
Positive = Annotated[float, Field(gt=0)]


class Incident(Strict):
    """A capacity drop at one point of the road, e.g. a crash blocking lanes."""

    at_km: NonNeg
    start_s: NonNeg
    duration_s: Positive
    # Share of the normal capacity that still passes the incident.
    capacity_fraction: Annotated[float, Field(ge=0, le=1)] = 0.3


class Bottleneck(Strict):
    """A permanent capacity restriction (lane drop, steep grade, merge): recurrent congestion, not an incident."""

    at_km: NonNeg
    capacity_fraction: Annotated[float, Field(gt=0, le=1)] = 0.85


class Road(Strict):
    name: str = "road"
    length_km: Annotated[float, Field(gt=0, le=200)] = 20.0
    lanes: Annotated[int, Field(ge=1, le=8)] = 4
    # Annual average daily traffic of the simulated direction.
    aadt: Annotated[int, Field(ge=0)] = 40_000
    diagram: Literal["triangular", "greenshields"] = "triangular"
    free_flow_kmh: Positive = 90.0
    wave_kmh: Positive = 18.0
    jam_density_veh_km: Positive = 140.0
    cell_m: Annotated[float, Field(ge=20, le=1000)] = 100.0
    # Metres above sea level at km 0 and at the far end: mountain fog and lapse rate use it.
    elevation_start_m: float = 200.0
    elevation_end_m: float = 200.0
    incidents: list[Incident] = Field(default_factory=list)
    bottlenecks: list[Bottleneck] = Field(default_factory=list)
    # Capacity drop: a queue discharges this share below the capacity reached before it formed
    # (field studies: 5-10 %). 0 keeps the plain triangular diagram.
    capacity_drop: Annotated[float, Field(ge=0, lt=0.5)] = 0.0


class DeviceSpec(Strict):
    id: Id
    kind: DeviceKind
    profile: str
    protocol: Protocol
    km: NonNeg = 0.0
    # Modbus TCP: port 0 picks a free one. Modbus RTU: the bus it hangs on.
    port: Annotated[int, Field(ge=0, le=65535)] = 0
    bus: Id | None = None
    unit: Annotated[int, Field(ge=1, le=247)] = 1
    baudrate: Annotated[int, Field(ge=300, le=4_000_000)] = 9600
    # How often the device computes new values (detector binning interval, sensor update).
    interval_s: Positive = 20.0
    # Serial ASCII devices: polled (answer the profile's poll command) or free-running at interval_s.
    free_running: bool = False
    # Device clock offset at start, seconds (gateways and devices without RTC start wrong).
    clock_offset_s: float = 0.0
    # Serial ASCII devices, as a site engineer set them (not what the profile expects): unit letters
    # (speed M/K/S/N, temperature C/F, pressure H/P/B/M/I), the NMEA layout and the MWV reference.
    speed_unit: Literal["M", "K", "S", "N"] = "M"
    temperature_unit: Literal["C", "F"] = "C"
    pressure_unit: Literal["H", "P", "B", "M", "I"] | None = None
    nmea_layout: Literal["generic", "attitude", "vaisala"] = "generic"
    mwv_reference: Literal["T", "R", "RT"] = "T"

    @model_validator(mode="after")
    def _link(self) -> DeviceSpec:
        if self.protocol == "modbus-rtu" and self.bus is None:
            raise ValueError("a modbus-rtu device needs 'bus'")
        if self.protocol != "modbus-rtu" and self.bus is not None:
            raise ValueError("only modbus-rtu devices hang on a bus")
        return self


class Series(Strict):
    """Identical stations every N km, e.g. detectors every 2 km: expanded into devices."""

    id_prefix: Annotated[str, Field(pattern=r"^[A-Za-z0-9_\-]{1,40}$")]
    kind: DeviceKind
    profile: str
    protocol: Literal["modbus-tcp", "ascii"]
    from_km: NonNeg
    to_km: NonNeg
    every_km: Positive
    interval_s: Positive = 20.0
    free_running: bool = False


class Bus(Strict):
    """One RS-485 line on one pty: several unit ids answer on it, one request at a time."""

    id: Id
    baudrate: Annotated[int, Field(ge=300, le=4_000_000)] = 9600


class ScheduledFault(Strict):
    device: Id
    kind: FaultKind
    start_s: NonNeg
    duration_s: Positive
    # Share of requests/frames hit while the fault is active (protocol faults only).
    probability: Annotated[float, Field(ge=0, le=1)] = 1.0
    # Spike height as a multiple of the value, clock drift in ppm, link flap period.
    magnitude: float | None = None


class RandomFaults(Strict):
    seed: int = 0
    per_device_per_hour: NonNeg = 0.0
    kinds: list[FaultKind] = Field(default_factory=lambda: list(FAULT_KINDS))
    mean_duration_s: Positive = 60.0
    horizon_s: Positive = 86_400.0


class Scenario(Strict):
    name: str
    description: str = ""
    seed: int = 0
    start: datetime = datetime(2026, 3, 2, 7, 30, tzinfo=UTC)
    # Simulated seconds per wall second.
    time_scale: Annotated[float, Field(gt=0, le=10_000)] = 1.0
    road: Road = Road()
    buses: list[Bus] = Field(default_factory=list)
    series: list[Series] = Field(default_factory=list)
    devices: list[DeviceSpec] = Field(default_factory=list)
    faults: list[ScheduledFault] = Field(default_factory=list)
    random_faults: RandomFaults | None = None

    @model_validator(mode="after")
    def _check(self) -> Scenario:
        if self.start.tzinfo is None:
            raise ValueError("start needs a UTC offset, e.g. 2026-03-02T07:30:00+08:00")
        ids = [d.id for d in self.all_devices()]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"device ids used twice: {dupes}")
        buses = {b.id for b in self.buses}
        for device in self.all_devices():
            if device.bus is not None and device.bus not in buses:
                raise ValueError(f"device {device.id!r} names bus {device.bus!r}, which is not in [[buses]]")
            if device.km > self.road.length_km:
                raise ValueError(f"device {device.id!r} at km {device.km} is beyond the road's end")
        units = [(d.bus, d.unit) for d in self.all_devices() if d.bus is not None]
        if len(units) != len(set(units)):
            raise ValueError("two devices share one unit id on one bus")
        known = set(ids)
        for fault in self.faults:
            if fault.device not in known:
                raise ValueError(f"fault names unknown device {fault.device!r}")
        return self

    def all_devices(self) -> list[DeviceSpec]:
        """Explicit devices plus the expanded series, in a stable order."""
        out = list(self.devices)
        for s in self.series:
            km = s.from_km
            while km <= s.to_km + 1e-9:
                out.append(
                    DeviceSpec(
                        id=f"{s.id_prefix}-k{km:04.1f}",
                        kind=s.kind,
                        profile=s.profile,
                        protocol=s.protocol,
                        km=round(km, 3),
                        interval_s=s.interval_s,
                        free_running=s.free_running,
                    )
                )
                km += s.every_km
        return out

    @property
    def start_epoch(self) -> float:
        return self.start.timestamp()


def load_scenario(path: Path | str) -> Scenario:
    """Read and validate a scenario TOML; errors name the file, the key and the reason."""
    return load_model(path, Scenario)
