"""The agent's config file: one gateway, its MQTT link, its queue, and its devices.

Link and bus models belong to the drivers (agent/sources/); they are named here for the file's shape.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from agent.sources.links import SerialLink, TcpLink
from agent.sources.modbus.config import Bus
from roadpulse.configfile import LocatedValueError, Strict, load_model
from roadpulse.mqttconfig import MqttLinkConfig, TlsConfig, WritableDir, identity_problem
from roadpulse.profiles.base import Tags
from roadpulse.wire.topics import GATEWAY_ID_PATTERN

Tls = TlsConfig  # the shared TLS model, under the name this module has always exported

Id = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.\-]{1,64}$")]
Seconds = Annotated[float, Field(gt=0)]


class MqttConfig(MqttLinkConfig):
    """The shared MQTT/TLS/credentials model (roadpulse.mqttconfig) plus the agent's own keys."""

    client_id: str | None = None
    # Cap of the reconnect backoff (roadpulse.backoff): short in tests, ~30 s on a 4G gateway.
    reconnect_max_s: Seconds = 30.0


class AgentSection(Strict):
    gateway_id: Annotated[str, Field(pattern=GATEWAY_ID_PATTERN)]
    data_dir: WritableDir = Field(default=Path("/var/lib/roadpulse/agent"), validate_default=True)
    # Extra folders searched for profiles before the shipped config/profiles/.
    profile_dirs: list[Path] = Field(default_factory=list)
    # The agent's own metrics (queue depth, evictions, latency...) on the health topic.
    health_interval_s: Seconds = 60.0
    # "kernel" also asks the kernel (adjtimex) whether NTP has synchronised the clock: right on a
    # Pi without an RTC; "heuristic" trusts any time after the build date and watches for jumps.
    clock_sync_check: Literal["heuristic", "kernel"] = "heuristic"


class PublishConfig(Strict):
    max_readings: Annotated[int, Field(ge=1, le=5_000)] = 200  # the collector refuses more per message
    max_bytes: Annotated[int, Field(ge=256, le=256 * 1024)] = 16 * 1024
    max_age_s: Seconds = 1.0
    # Backlog replay after an outage is rate limited so live data keeps its share of the link.
    replay_messages_per_s: Seconds = 20.0
    # "end-to-end": a record leaves the queue only when a collector confirms it is durable (issue #10);
    # "broker": on the broker's PUBACK, for collectors that never confirm (older than confirmations).
    delivery: Literal["end-to-end", "broker"] = "end-to-end"
    # Unconfirmed records are sent again after this; it doubles up to the cap while none arrive.
    confirm_timeout_s: Seconds = 20.0
    confirm_timeout_max_s: Seconds = 300.0
    # Warn (once) when records wait this long without any confirmation arriving.
    confirm_warn_s: Seconds = 600.0
    # Records sent and awaiting confirmation at once (their bytes are held in memory).
    unconfirmed_max: Annotated[int, Field(ge=1, le=100_000)] = 1000


class QueueConfig(Strict):
    max_bytes: Annotated[int, Field(ge=64 * 1024)] = 64 * 1024 * 1024
    # Readings are grouped into one fsync per interval: few writes on the SD card.
    commit_interval_s: Seconds = 1.0


class Device(Strict):
    id: Id
    profile: str
    interval_s: Seconds = 10.0
    # Align polls to wall-clock multiples of the interval (detectors report on :00 and :30).
    align: bool = False
    jitter_s: Annotated[float, Field(ge=0)] = 0.0
    tags: Tags = Field(default_factory=dict)
    # Modbus: either a TCP link or a bus id; the unit id on that link.
    tcp: TcpLink | None = None
    bus: Id | None = None
    unit: Annotated[int, Field(ge=0, le=247)] = 1
    timeout_s: Seconds = 1.0
    retries: Annotated[int, Field(ge=0, le=5)] = 1
    # Serial ASCII: the port of its own.
    serial: SerialLink | None = None

    @model_validator(mode="after")
    def _one_link(self) -> Device:
        links = [x for x in (self.tcp, self.bus, self.serial) if x is not None]
        if len(links) != 1:
            raise ValueError("give exactly one of 'tcp', 'bus' or 'serial'")
        return self


class AgentConfig(Strict):
    agent: AgentSection
    mqtt: MqttConfig = MqttConfig()
    publish: PublishConfig = PublishConfig()
    queue: QueueConfig = QueueConfig()
    buses: list[Bus] = Field(default_factory=list)
    devices: Annotated[list[Device], Field(min_length=1)]

    @field_validator("devices")
    @classmethod
    def _unique_ids(cls, devices: list[Device]) -> list[Device]:
        seen: set[str] = set()
        for device in devices:
            if device.id in seen:
                raise ValueError(f"device id {device.id!r} is used twice")
            seen.add(device.id)
        return devices

    @model_validator(mode="after")
    def _identity(self) -> AgentConfig:
        if problem := identity_problem(self.agent.gateway_id, self.mqtt):
            raise LocatedValueError(("mqtt", "username"), problem)
        return self

    @model_validator(mode="after")
    def _buses_exist(self, info: ValidationInfo) -> AgentConfig:
        known = [b.id for b in self.buses]
        on_bus: dict[tuple[str, int], str] = {}
        for index, device in enumerate(self.devices):
            if device.bus is not None and device.bus not in known:
                defined = ", ".join(map(repr, known)) or "none"
                raise LocatedValueError(("devices", index, "bus"),
                                        f"no bus named {device.bus!r} in [[buses]] (defined: {defined})")
            if device.bus is not None:
                # Two slaves answering to one id on one RS-485 line garble each other's answers.
                other = on_bus.setdefault((device.bus, device.unit), device.id)
                if other != device.id:
                    raise ValueError(f"devices {other!r} and {device.id!r} both use unit {device.unit} "
                                     f"on bus {device.bus!r}")
        return self


def load_agent_config(path: Path | str) -> AgentConfig:
    return load_model(path, AgentConfig)


__all__ = ["AgentConfig", "AgentSection", "Bus", "Device", "MqttConfig", "PublishConfig", "QueueConfig",
           "SerialLink", "TcpLink", "load_agent_config"]
