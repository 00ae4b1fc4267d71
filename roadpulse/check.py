"""`roadpulse config check`: the same loading and validation that start-up runs, opening no port."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from roadpulse.configfile import ConfigError, read_toml


def guess_kind(data: dict[str, object]) -> str:
    if "driver" in data:
        return "profile"
    if "agent" in data:
        return "agent"
    if "collector" in data:
        return "collector"
    if "roadstate" in data:
        return "roadstate"
    return "scenario"


def check(path: Path, kind: str = "auto") -> str:
    """Validate one file; return a one-line summary, raise ConfigError with every problem."""
    data = read_toml(path)
    if kind == "auto":
        kind = guess_kind(data)
    if kind == "agent":
        from agent.config import load_agent_config
        from roadpulse.profiles.catalog import build_catalog

        agent_config = load_agent_config(path)
        catalog = build_catalog(agent_config.devices, profile_dirs=agent_config.agent.profile_dirs,
                                config_path=path, identity=agent_config.model_dump(mode="json"))
        _check_field_types(path, [e.profile for e in catalog.devices], [path.parent / "profiles"])
        return (f"agent config OK: gateway {agent_config.agent.gateway_id}, "
                f"{len(catalog.devices)} devices, {len(catalog.metrics)} metrics, config hash {catalog.config_hash}")
    if kind == "collector":
        from collector.config import load_collector_config

        collector_config = load_collector_config(path)
        return f"collector config OK: client id {collector_config.collector.client_id}"
    if kind == "roadstate":
        from roadstate.config import load_config

        roadstate_config = load_config(path)
        return f"roadstate config OK: client id {roadstate_config.mqtt.client_id}"
    if kind == "profile":
        from roadpulse.profiles import load_model_from

        profile = load_model_from(path, data).profile
        _check_field_types(path, [profile], [path.parent])
        return f"profile OK: {profile.name} ({profile.driver})"
    if kind == "scenario":
        from firmware_sim.runner import load_scenario

        load_scenario(path)
        return "scenario OK"
    raise ConfigError(path, [("(kind)", f"unknown kind {kind!r}")])


def _check_field_types(path: Path, profiles: list[Any], folders: list[Path]) -> None:
    """Profiles that share a measurement must agree on each field's type (roadpulse/fieldtypes.py)."""
    from roadpulse.fieldtypes import check_profiles
    from roadpulse.profiles import PROFILES_DIR

    unique = list({p.name: p for p in profiles}.values())
    if problems := check_profiles(unique, [*folders, PROFILES_DIR]):
        raise ConfigError(path, problems)


def check_file(path: Path, kind: str = "auto") -> int:
    try:
        print(check(path, kind))
    except ConfigError as exc:
        print(exc)
        return 1
    return 0
