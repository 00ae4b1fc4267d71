"""The agent's catalogue: roadpulse.profiles.catalog built from an agent config."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from agent.config import AgentConfig, Device
from roadpulse.profiles import AnyProfile
from roadpulse.profiles import catalog as shared

if TYPE_CHECKING:
    DeviceEntry = shared.DeviceEntry[Device]
    Catalog = shared.Catalog[Device]
else:
    # At run time the plain classes: a subscripted frozen, slotted dataclass cannot be instantiated.
    DeviceEntry = shared.DeviceEntry
    Catalog = shared.Catalog


def build_catalog(config: AgentConfig, config_path: Path | None = None) -> Catalog:
    return shared.build_catalog(config.devices, profile_dirs=config.agent.profile_dirs, config_path=config_path,
                                identity=config.model_dump(mode="json"))


def metric_type(profile: AnyProfile, point_name: str) -> str:
    return profile.metric_type(point_name)


def metric_decimals(profile: AnyProfile, point_name: str) -> int | None:
    return profile.metric_decimals(point_name)
