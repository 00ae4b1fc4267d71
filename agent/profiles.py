"""Device profiles: a device type described once, in config/profiles/<name>.toml.

A profile says how to read the device (register map or frame parser) and what
each value means (measurement, field, unit, tags). Device instances in an agent
config refer to a profile by name and add their own tags.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, ValidationError, model_validator

from roadpulse.configfile import ConfigError, Strict, errors_of, load_model, read_toml
from roadpulse.shipped import shipped_dir

PROFILES_DIR = shipped_dir("profiles")

RegisterType = Literal[
    "bit", "bool", "int16", "uint16", "int32", "uint32", "int64", "uint64", "float32", "float64", "string"
]
ByteOrder = Literal["ABCD", "DCBA", "BADC", "CDAB", "ABCDEFGH", "HGFEDCBA", "BADCFEHG", "GHEFCDAB"]
RegisterKind = Literal["holding", "input", "coil", "discrete"]
Name = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")]


def _not_reserved(name: str) -> str:
    if name.startswith("roadpulse_"):
        raise ValueError("measurements named roadpulse_* are reserved for roadpulse's own metrics")
    return name


# The collector tells readings from agent health and its own metrics by this prefix.
Measurement = Annotated[Name, AfterValidator(_not_reserved)]


class Point(Strict):
    """What one value means once read: shared by registers and frame fields."""

    name: Name
    unit: str = ""
    measurement: Measurement | None = None
    field: Name | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    scale: float = 1.0
    offset: float = 0.0
    # Raw values that mean "no value" (32767, 65535, 1001, ...): reported as quality bad, reason invalid.
    invalid: list[float] = Field(default_factory=list)
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
    # Store a bare integer register as a float field, when other profiles write the same
    # (measurement, field) as floats: InfluxDB fixes a field's type once (docs/data-model.md).
    field_type: Literal["float"] | None = None

    @model_validator(mode="after")
    def _check(self) -> Register:
        if self.type == "bit" and self.bit is None:
            raise ValueError("type 'bit' needs 'bit' (0-15)")
        if self.type == "string" and self.length is None:
            raise ValueError("type 'string' needs 'length' (registers)")
        if self.kind in ("coil", "discrete") and self.type != "bool":
            raise ValueError(f"kind {self.kind!r} holds single bits: use type 'bool'")
        if self.bit is not None and self.type != "bit":
            raise ValueError("'bit' is only for type 'bit'")
        if self.length is not None and self.type != "string":
            raise ValueError("'length' is only for type 'string'")
        width = {"int32": 2, "uint32": 2, "float32": 2, "int64": 4, "uint64": 4, "float64": 4}
        if self.address + (self.length or width.get(self.type, 1)) > 65536:
            raise ValueError(f"register {self.address} runs past address 65535")
        return self


def _unique_names(names: list[str]) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValueError(f"point name {name!r} is used twice")
        seen.add(name)


class ModbusProfile(Strict):
    driver: Literal["modbus"]
    name: Name
    description: str = ""
    measurement: Measurement
    tags: dict[str, str] = Field(default_factory=dict)
    registers: list[Register]
    # Largest gap of unused registers to read through when coalescing reads.
    max_gap: Annotated[int, Field(ge=0, le=124)] = 8

    @model_validator(mode="after")
    def _check(self) -> ModbusProfile:
        _unique_names([r.name for r in self.registers])
        return self


class Framing(Strict):
    mode: Literal["delimiter", "fixed"] = "delimiter"
    delimiter: str = "\r\n"
    length: Annotated[int, Field(ge=1)] | None = None
    max_length: Annotated[int, Field(ge=1, le=65536)] = 1024

    @model_validator(mode="after")
    def _check(self) -> Framing:
        if self.mode == "fixed" and self.length is None:
            raise ValueError("mode 'fixed' needs 'length'")
        if self.mode == "delimiter" and not self.delimiter:
            raise ValueError("mode 'delimiter' needs a non-empty 'delimiter'")
        return self


class FrameField(Point):
    # keyvalue: the key (Vaisala "Ta"); regex: the group name; nmea: "<sentence>.<index>", e.g. "MWV.3".
    key: str
    type: Literal["float", "int", "str", "bool"] = "float"


class SerialProfile(Strict):
    driver: Literal["serial_ascii"]
    name: Name
    description: str = ""
    measurement: Measurement
    tags: dict[str, str] = Field(default_factory=dict)
    framing: Framing = Framing()
    parser: Literal["regex", "keyvalue", "nmea"]
    pattern: str | None = None
    # Command sent each interval for polled devices; None means the device talks on its own.
    poll: str | None = None
    fields: list[FrameField]

    @model_validator(mode="after")
    def _check(self) -> SerialProfile:
        _unique_names([f.name for f in self.fields])
        if self.parser == "regex":
            if self.pattern is None:
                raise ValueError("parser 'regex' needs 'pattern'")
            try:
                groups = re.compile(self.pattern).groupindex
            except re.error as exc:
                raise ValueError(f"pattern does not compile: {exc}") from None
            missing = [f.key for f in self.fields if f.key not in groups]
            if missing:
                raise ValueError(f"pattern has no named group for keys {missing}")
        if self.parser == "nmea":
            bad = [f.key for f in self.fields if not re.fullmatch(r"[A-Z0-9]{3,5}\.[1-9][0-9]*", f.key)]
            if bad:
                raise ValueError(f"nmea keys look like 'MWV.3' (sentence type, 1-based field): {bad}")
        return self


Profile = Annotated[ModbusProfile | SerialProfile, Field(discriminator="driver")]


class ProfileFile(Strict):
    profile: Profile


def load_profile(name: str, search: list[Path] | None = None) -> ModbusProfile | SerialProfile:
    """Find `<name>.toml` in the search path (the config's own profiles/ first, then the shipped ones)."""
    for folder in [*(search or []), PROFILES_DIR]:
        path = folder / f"{name}.toml"
        if path.exists():
            data = read_toml(path)
            wrapped = load_model_from(path, data)
            return wrapped.profile
    raise ConfigError(name, [("profile", f"no profile named {name!r} in {[str(p) for p in search or []]} "
                                          "or the shipped profiles")])


def _profile_key(key: str) -> str:
    """The key as written in the file: without the wrapper and the union's driver tag."""
    key = key.removeprefix("profile.").removeprefix("profile")
    for tag in ("modbus.", "serial_ascii."):
        key = key.removeprefix(tag)
    return key or "(top level)"


def load_model_from(path: Path, data: dict[str, object]) -> ProfileFile:
    try:
        return ProfileFile.model_validate({"profile": data})
    except ValidationError as exc:
        problems = [(_profile_key(key), reason) for key, reason in errors_of(exc)]
        raise ConfigError(path, problems) from None


__all__ = ["PROFILES_DIR", "ModbusProfile", "SerialProfile", "load_model", "load_profile"]
