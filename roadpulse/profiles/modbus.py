"""The Modbus profile: a register map (address, type, byte order, scale) per device type."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from roadpulse.configfile import Strict
from roadpulse.profiles.base import Measurement, MetricType, Name, Point, Tags, unique_names

RegisterType = Literal[
    "bit", "bool", "int8", "uint8", "int16", "uint16", "float16", "int32", "uint32", "int64", "uint64", "float32",
    "float64", "string",
]
ByteOrder = Literal["ABCD", "DCBA", "BADC", "CDAB", "ABCDEFGH", "HGFEDCBA", "BADCFEHG", "GHEFCDAB"]
RegisterKind = Literal["holding", "input", "coil", "discrete"]
# Which byte of the register an 8-bit type reads, once the order's byte swap is undone.
RegisterByte = Literal["high", "low"]

_WIDTH = {"int32": 2, "uint32": 2, "float32": 2, "int64": 4, "uint64": 4, "float64": 4}
_TYPE_OF_REGISTER = {"bit": "b", "bool": "b", "string": "s", "float16": "f", "float32": "f", "float64": "f"}
INTEGER_TYPES = frozenset({"int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64"})
_MAX_DECIMALS = 6


class Register(Point):
    kind: RegisterKind = "holding"
    address: Annotated[int, Field(ge=0, le=65535)]
    type: RegisterType = "uint16"
    order: ByteOrder = "ABCD"
    bit: Annotated[int, Field(ge=0, le=15)] | None = None
    # int8/uint8: the high byte (first on the wire in ABCD order) or the low one.
    byte: RegisterByte | None = None
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
        if self.type in ("int8", "uint8") and self.byte is None:
            raise ValueError(f"type {self.type!r} needs 'byte': 'high' or 'low'")
        if self.byte is not None and self.type not in ("int8", "uint8"):
            raise ValueError("'byte' is only for types 'int8' and 'uint8'")
        if self.kind in ("coil", "discrete") and self.type != "bool":
            raise ValueError(f"kind {self.kind!r} holds single bits: use type 'bool'")
        if self.bit is not None and self.type != "bit":
            raise ValueError("'bit' is only for type 'bit'")
        if self.length is not None and self.type != "string":
            raise ValueError("'length' is only for type 'string'")
        if self.address + (self.length or _WIDTH.get(self.type, 1)) > 65536:
            raise ValueError(f"register {self.address} runs past address 65535")
        return self


class ModbusProfile(Strict):
    driver: Literal["modbus"]
    name: Name
    description: str = ""
    measurement: Measurement
    tags: Tags = Field(default_factory=dict)
    registers: list[Register]
    # Largest gap of unused registers to read through when coalescing reads.
    max_gap: Annotated[int, Field(ge=0, le=124)] = 8

    @model_validator(mode="after")
    def _check(self) -> ModbusProfile:
        unique_names([r.name for r in self.registers])
        return self

    @property
    def points(self) -> list[Point]:
        return list(self.registers)

    def register(self, point_name: str) -> Register:
        return next(r for r in self.registers if r.name == point_name)

    def metric_type(self, point_name: str) -> MetricType:
        reg = self.register(point_name)
        if reg.type in _TYPE_OF_REGISTER:
            return _TYPE_OF_REGISTER[reg.type]
        if reg.field_type == "float":
            return "f"
        # Integers with a scale or offset become floats; a bare integer register stays an integer.
        return "i" if reg.scale == 1.0 and reg.offset == 0.0 else "f"

    def metric_decimals(self, point_name: str) -> int | None:
        """Decimals d when every value of the point is an integer times 10**-d, else None.

        That holds for an integer register whose scale is exactly 10**-d (d = 1..6) and whose offset
        is a multiple of it: the codec's value (register x scale + offset, tidied to 15 digits) is
        then n / 10**d, which goes on the wire as the int n (docs/protocol.md, scaled ints).
        Float registers carry no such promise.
        """
        reg = self.register(point_name)
        if reg.type not in INTEGER_TYPES:
            return None
        for d in range(1, _MAX_DECIMALS + 1):
            if reg.scale == 1 / 10**d:
                offset = round(reg.offset * 10**d)
                return d if offset / 10**d == reg.offset else None
        return None
