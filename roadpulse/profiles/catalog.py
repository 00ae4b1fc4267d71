"""The gateway's metric catalogue: every (device, point) pair gets a numeric alias for the wire.

Aliases are assigned in config order, so the same config always gives the same
aliases, and the birth message lists them (docs/protocol.md). Shared by the agent
(which sends them) and `roadpulse config check` (which proves a config builds one).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, Protocol, TypeVar

from roadpulse.configfile import ConfigError
from roadpulse.profiles import AnyProfile, load_profile
from roadpulse.wire import MetricDef


class CatalogDevice(Protocol):
    """What the catalogue needs of a configured device: its id, its profile's name, its tags."""

    @property
    def id(self) -> str: ...

    @property
    def profile(self) -> str: ...

    @property
    def tags(self) -> dict[str, str]: ...


D = TypeVar("D", bound=CatalogDevice)


@dataclass(frozen=True, slots=True)
class DeviceEntry(Generic[D]):
    device: D
    profile: AnyProfile
    aliases: dict[str, int]


@dataclass(frozen=True, slots=True)
class Catalog(Generic[D]):
    devices: list[DeviceEntry[D]]
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


def profile_search(profile_dirs: Sequence[Path], config_path: Path | None) -> list[Path]:
    """Folders searched for profiles: the configured ones (relative to the config), then its profiles/."""
    search = [(config_path.parent / d) if config_path and not d.is_absolute() else d for d in profile_dirs]
    if config_path is not None:
        search.append(config_path.parent / "profiles")
    return search


def build_catalog(
    devices: Sequence[D], *, profile_dirs: Sequence[Path], config_path: Path | None, identity: object,
) -> Catalog[D]:
    """Load each device's profile and number its points. `identity` (the config, as JSON data)
    goes into the config hash with the profiles, so a changed profile changes the hash."""
    search = profile_search(profile_dirs, config_path)
    entries: list[DeviceEntry[D]] = []
    metrics: list[MetricDef] = []
    alias = 0
    for index, device in enumerate(devices):
        try:
            profile = load_profile(device.profile, search)
        except ConfigError as err:
            if err.path != device.profile or config_path is None:
                raise  # a profile file with errors names itself
            # No such profile: the mistake is in the agent config, so name its file and key.
            problems = [(f"devices[{index}].profile", reason) for _, reason in err.problems]
            raise ConfigError(config_path, problems) from None
        aliases: dict[str, int] = {}
        for point in profile.points:
            mtype = profile.metric_type(point.name)
            metrics.append(
                MetricDef(
                    alias=alias,
                    device=device.id,
                    measurement=point.measurement or profile.measurement,
                    field=point.field or point.name,
                    unit=point.unit,
                    type=mtype,
                    tags={**profile.tags, **device.tags, **point.tags},
                    decimals=profile.metric_decimals(point.name) if mtype == "f" else None,
                )
            )
            aliases[point.name] = alias
            alias += 1
        entries.append(DeviceEntry(device, profile, aliases))
    digest = hashlib.sha256(
        json.dumps([identity, [e.profile.model_dump(mode="json") for e in entries]], sort_keys=True).encode()
    ).hexdigest()[:12]
    return Catalog(entries, metrics, digest)
