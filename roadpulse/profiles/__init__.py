"""Device profiles: a device type described once, in config/profiles/<name>.toml.

A profile says how to read the device (register map or frame parser) and what
each value means (measurement, field, unit, tags). Device instances in an agent
config refer to a profile by name and add their own tags. The agent's drivers
and the simulator both read them, so they live in the shared package.

One table, PROFILE_MODELS, maps a profile's `driver` to its model; a new driver
adds its module here and its transport under agent/sources/<driver>/.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, ValidationError

from roadpulse.configfile import ConfigError, Strict, errors_of, read_toml
from roadpulse.profiles.base import DeviceProfile, Measurement, Name, Point
from roadpulse.profiles.modbus import ByteOrder, ModbusProfile, Register, RegisterKind, RegisterType
from roadpulse.profiles.serial_ascii import FrameField, Framing, SerialProfile
from roadpulse.shipped import shipped_dir

PROFILES_DIR = shipped_dir("profiles")

AnyProfile = ModbusProfile | SerialProfile
PROFILE_MODELS: dict[str, type[AnyProfile]] = {"modbus": ModbusProfile, "serial_ascii": SerialProfile}
Profile = Annotated[AnyProfile, Field(discriminator="driver")]


class ProfileFile(Strict):
    profile: Profile


def load_profile(name: str, search: list[Path] | None = None) -> AnyProfile:
    """Find `<name>.toml` in the search path (the config's own profiles/ first, then the shipped ones)."""
    for folder in [*(search or []), PROFILES_DIR]:
        path = folder / f"{name}.toml"
        if path.exists():
            return load_model_from(path, read_toml(path)).profile
    raise ConfigError(name, [("profile", f"no profile named {name!r} in {[str(p) for p in search or []]} "
                                          "or the shipped profiles")])


def _profile_key(key: str) -> str:
    """The key as written in the file: without the wrapper and the union's driver tag."""
    key = key.removeprefix("profile.").removeprefix("profile")
    for tag in PROFILE_MODELS:
        key = key.removeprefix(f"{tag}.")
    return key or "(top level)"


def load_model_from(path: Path, data: dict[str, object]) -> ProfileFile:
    try:
        return ProfileFile.model_validate({"profile": data})
    except ValidationError as exc:
        problems = [(_profile_key(key), reason) for key, reason in errors_of(exc)]
        raise ConfigError(path, problems) from None


__all__ = [
    "PROFILES_DIR", "PROFILE_MODELS", "AnyProfile", "ByteOrder", "DeviceProfile", "FrameField", "Framing",
    "Measurement", "ModbusProfile", "Name", "Point", "Profile", "ProfileFile", "Register", "RegisterKind",
    "RegisterType", "SerialProfile", "load_model_from", "load_profile",
]
