"""Device profiles: a device type described once, in config/profiles/<name>.toml.

A profile says how to read the device (register map or frame parser) and what
each value means (measurement, field, unit, tags). Device instances in an agent
config refer to a profile by name and add their own tags.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, model_validator

from roadpulse.configfile import Strict, load_model

PROFILES_DIR = Path(__file__).resolve().parent.parent / "config" / "profiles"

RegisterType = Literal[
    "bit", "bool", "int16", "uint16", "int32", "uint32", "int64", "uint64", "float32", "float64", "string"
]
ByteOrder = Literal["ABCD", "DCBA", "BADC", "CDAB", "ABCDEFGH", "HGFEDCBA", "BADCFEHG", "GHEFCDAB"]
RegisterKind = Literal["holding", "input", "coil", "discrete"]
Name = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")]


class Point(Strict):
    """What one value means once read: shared by registers and frame fields."""

    name: Name
    unit: str = ""
    measurement: Name | None = None
    field: Name | None = None
    tags: dict[str, str] = {}
    scale: float = 1.0
    offset: float = 0.0
    # Raw values that mean "no value" (32767, 65535, 1001, ...): reported as quality bad, reason invalid.
    invalid: list[float] = []
    # Report by exception: skip a value within `deadband` of the last sent one, unless `max_silence_s` passed.
    deadband: float | None = None
    max_silence_s: float | None = None


class Register(Point):
    kind: RegisterKind = "holding"
    address: Annotated[int, Field(ge=0, le=65535)]
    type: RegisterType = "uint16"
    order: ByteOrder = "ABCD"
    bit: Annotated[int, Field(ge=0, le=15)] | None = None
    # Registers a string occupies.
    length: Annotated[int, Field(ge=1, le=125)] | None = None

    @model_validator(mode="after")
    def _check(self) -> Register:
        if self.type == "bit" and self.bit is None:
            raise ValueError("type 'bit' needs 'bit' (0-15)")
        if self.type == "string" and self.length is None:
            raise ValueError("type 'string' needs 'length' (registers)")
        if self.kind in ("coil", "discrete") and self.type != "bool":
            raise ValueError(f"kind {self.kind!r} holds single bits: use type 'bool'")
        return self


class ModbusProfile(Strict):
    driver: Literal["modbus"]
    name: Name
    description: str = ""
    measurement: Name
    tags: dict[str, str] = {}
    registers: list[Register]
    # Largest gap of unused registers to read through when coalescing reads.
    max_gap: Annotated[int, Field(ge=0, le=124)] = 8


class Framing(Strict):
    mode: Literal["delimiter", "fixed"] = "delimiter"
    delimiter: str = "\r\n"
    length: Annotated[int, Field(ge=1)] | None = None
    max_length: Annotated[int, Field(ge=1, le=65536)] = 1024


class FrameField(Point):
    # keyvalue: the key (Vaisala "Ta"); regex: the group name; nmea: "<sentence>.<index>", e.g. "MWV.3".
    key: str
    type: Literal["float", "int", "str", "bool"] = "float"


class SerialProfile(Strict):
    driver: Literal["serial_ascii"]
    name: Name
    description: str = ""
    measurement: Name
    tags: dict[str, str] = {}
    framing: Framing = Framing()
    parser: Literal["regex", "keyvalue", "nmea"]
    pattern: str | None = None
    # Command sent each interval for polled devices; None means the device talks on its own.
    poll: str | None = None
    fields: list[FrameField]


Profile = Annotated[ModbusProfile | SerialProfile, Field(discriminator="driver")]


class ProfileFile(Strict):
    profile: Profile


def load_profile(name: str, search: list[Path] | None = None) -> ModbusProfile | SerialProfile:
    """Find `<name>.toml` in the search path (the config's own profiles/ first, then the shipped ones)."""
    from roadpulse.configfile import ConfigError, read_toml

    for folder in [*(search or []), PROFILES_DIR]:
        path = folder / f"{name}.toml"
        if path.exists():
            data = read_toml(path)
            wrapped = load_model_from(path, data)
            return wrapped.profile
    raise ConfigError(name, [("profile", f"no profile named {name!r} in {[str(p) for p in search or []]} "
                                          "or the shipped profiles")])


def load_model_from(path: Path, data: dict[str, object]) -> ProfileFile:
    from pydantic import ValidationError

    from roadpulse.configfile import ConfigError, errors_of

    try:
        return ProfileFile.model_validate({"profile": data})
    except ValidationError as exc:
        problems = [(key.removeprefix("profile.").removeprefix("profile"), reason)
                    for key, reason in errors_of(exc)]
        raise ConfigError(path, problems) from None


__all__ = ["PROFILES_DIR", "ModbusProfile", "SerialProfile", "load_model", "load_profile"]
