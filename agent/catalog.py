"""The gateway's metric catalogue: every (device, point) pair gets a numeric alias for the wire.

Aliases are assigned in config order, so the same config always gives the same
aliases, and the birth message lists them (docs/protocol.md).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from agent.config import AgentConfig, Device
from agent.profiles import ModbusProfile, SerialProfile, load_profile
from roadpulse.configfile import ConfigError
from roadpulse.wire import MetricDef

_TYPE_OF_REGISTER = {"bit": "b", "bool": "b", "string": "s", "float32": "f", "float64": "f"}
_INTEGER_REGISTERS = frozenset({"int16", "uint16", "int32", "uint32", "int64", "uint64"})
_MAX_DECIMALS = 6


def metric_type(profile: ModbusProfile | SerialProfile, point_name: str) -> str:
    """The wire type of a point: fixed once, so InfluxDB never sees int one day and float the next."""
    if isinstance(profile, ModbusProfile):
        reg = next(r for r in profile.registers if r.name == point_name)
        if reg.type in _TYPE_OF_REGISTER:
            return _TYPE_OF_REGISTER[reg.type]
        if reg.field_type == "float":
            return "f"
        # Integers with a scale or offset become floats; a bare integer register stays an integer.
        return "i" if reg.scale == 1.0 and reg.offset == 0.0 else "f"
    fld = next(f for f in profile.fields if f.name == point_name)
    return {"float": "f", "int": "i", "str": "s", "bool": "b"}[fld.type]


def metric_decimals(profile: ModbusProfile | SerialProfile, point_name: str) -> int | None:
    """Decimals d when every value of the point is an integer times 10**-d, else None.

    That holds for an integer register whose scale is exactly 10**-d (d = 1..6) and whose offset
    is a multiple of it: the codec's value (register x scale + offset, tidied to 15 digits) is
    then n / 10**d, which goes on the wire as the int n (docs/protocol.md, scaled ints).
    Float registers and serial fields carry no such promise.
    """
    if not isinstance(profile, ModbusProfile):
        return None
    reg = next(r for r in profile.registers if r.name == point_name)
    if reg.type not in _INTEGER_REGISTERS:
        return None
    for d in range(1, _MAX_DECIMALS + 1):
        if reg.scale == 1 / 10**d:
            offset = round(reg.offset * 10**d)
            return d if offset / 10**d == reg.offset else None
    return None


@dataclass(frozen=True, slots=True)
class DeviceEntry:
    device: Device
    profile: ModbusProfile | SerialProfile
    aliases: dict[str, int]


@dataclass(frozen=True, slots=True)
class Catalog:
    devices: list[DeviceEntry]
    metrics: list[MetricDef]
    config_hash: str

    @property
    def decimals(self) -> dict[int, int]:
        """alias -> decimals of the metrics that declare them: what encode_data scales."""
        return {m.alias: m.decimals for m in self.metrics if m.decimals is not None}

    def alias(self, device_id: str, point: str) -> int:
        for entry in self.devices:
            if entry.device.id == device_id:
                return entry.aliases[point]
        raise KeyError(device_id)


def build_catalog(config: AgentConfig, config_path: Path | None = None) -> Catalog:
    search = [
        (config_path.parent / d) if config_path and not d.is_absolute() else d
        for d in config.agent.profile_dirs
    ]
    if config_path is not None:
        search.append(config_path.parent / "profiles")
    entries: list[DeviceEntry] = []
    metrics: list[MetricDef] = []
    alias = 0
    for index, device in enumerate(config.devices):
        try:
            profile = load_profile(device.profile, search)
        except ConfigError as err:
            if err.path != device.profile or config_path is None:
                raise  # a profile file with errors names itself
            # No such profile: the mistake is in the agent config, so name its file and key.
            problems = [(f"devices[{index}].profile", reason) for _, reason in err.problems]
            raise ConfigError(config_path, problems) from None
        points = profile.registers if isinstance(profile, ModbusProfile) else profile.fields
        aliases: dict[str, int] = {}
        for point in points:
            tags = {**profile.tags, **device.tags, **point.tags}
            mtype = metric_type(profile, point.name)
            metrics.append(
                MetricDef(
                    alias=alias,
                    device=device.id,
                    measurement=point.measurement or profile.measurement,
                    field=point.field or point.name,
                    unit=point.unit,
                    type=mtype,
                    tags=tags,
                    decimals=metric_decimals(profile, point.name) if mtype == "f" else None,
                )
            )
            aliases[point.name] = alias
            alias += 1
        entries.append(DeviceEntry(device, profile, aliases))
    digest = hashlib.sha256(
        json.dumps([config.model_dump(mode="json"), [e.profile.model_dump(mode="json") for e in entries]],
                   sort_keys=True).encode()
    ).hexdigest()[:12]
    return Catalog(entries, metrics, digest)
