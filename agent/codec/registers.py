"""Modbus register decoding for every profile type and byte/word order.

Registers arrive as 16-bit ints in wire order. An order names where each byte
of the big-endian value sits on the wire: ABCD is big-endian, CDAB swaps the
words, BADC swaps the bytes inside each word, DCBA does both. The 64-bit names
(ABCDEFGH, GHEFCDAB, BADCFEHG, HGFEDCBA) mean the same two swaps, so any order
name works with any width: a 4-letter name on a 64-bit value means its 8-letter
equivalent, and a word swap on a 16-bit value does nothing. pymodbus's
converter only handles word order, which is why byte swaps are done here.

8-bit types (int8, uint8) read the high or the low byte of one register, after the
byte swap of the order: with ABCD the high byte is the first on the wire, with BADC
the second (Telegraf's INT8H/INT8L with byte order AB/BA). float16 is IEEE 754 half
precision in one register.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass

RawValue = int | float | bool | str

# order -> (swap bytes inside each register, reverse the register order)
_SWAPS: dict[str, tuple[bool, bool]] = {
    "ABCD": (False, False),
    "ABCDEFGH": (False, False),
    "CDAB": (False, True),
    "GHEFCDAB": (False, True),
    "BADC": (True, False),
    "BADCFEHG": (True, False),
    "DCBA": (True, True),
    "HGFEDCBA": (True, True),
}
ORDERS_32 = ("ABCD", "CDAB", "BADC", "DCBA")
ORDERS_64 = ("ABCDEFGH", "GHEFCDAB", "BADCFEHG", "HGFEDCBA")

_WIDTH = {
    "bit": 1, "bool": 1, "int8": 1, "uint8": 1, "int16": 1, "uint16": 1, "float16": 1,
    "int32": 2, "uint32": 2, "float32": 2,
    "int64": 4, "uint64": 4, "float64": 4,
}
_STRUCT = {
    "float16": ">e", "int16": ">h", "uint16": ">H", "int32": ">i", "uint32": ">I", "float32": ">f",
    "int64": ">q", "uint64": ">Q", "float64": ">d",
}
NUMERIC_TYPES = ("int16", "uint16", "float16", "int32", "uint32", "int64", "uint64", "float32", "float64")
BYTE_TYPES = ("int8", "uint8")
BYTES = ("high", "low")


class DecodeError(ValueError):
    """Registers that cannot hold the asked type (wrong count, bad order name)."""


def register_count(type_: str, length: int | None = None) -> int:
    """How many 16-bit registers a value of this type occupies."""
    if type_ == "string":
        if length is None:
            raise DecodeError("type 'string' needs a length")
        return length
    try:
        return _WIDTH[type_]
    except KeyError:
        raise DecodeError(f"unknown type {type_!r}") from None


def _swaps(order: str) -> tuple[bool, bool]:
    try:
        return _SWAPS[order]
    except KeyError:
        raise DecodeError(f"unknown order {order!r}") from None


def to_big_endian(registers: Sequence[int], order: str) -> bytes:
    """Undo the device's byte/word order: the value's bytes, most significant first."""
    byte_swap, word_swap = _swaps(order)
    regs = list(reversed(registers)) if word_swap else list(registers)
    out = bytearray()
    for reg in regs:
        if not 0 <= reg <= 0xFFFF:
            raise DecodeError(f"register value {reg} is not 16-bit")
        hi, lo = reg >> 8, reg & 0xFF
        out += bytes((lo, hi)) if byte_swap else bytes((hi, lo))
    return bytes(out)


def from_big_endian(data: bytes, order: str) -> list[int]:
    """The inverse of to_big_endian: the registers a device with this order sends."""
    byte_swap, word_swap = _swaps(order)
    regs = []
    for i in range(0, len(data), 2):
        hi, lo = data[i], data[i + 1]
        regs.append((lo << 8 | hi) if byte_swap else (hi << 8 | lo))
    return list(reversed(regs)) if word_swap else regs


def decode(
    registers: Sequence[int], type_: str, order: str = "ABCD", *, bit: int | None = None, byte: str | None = None,
) -> RawValue:
    """Decode one value from exactly the registers it occupies (`byte`: "high" or "low" for 8-bit types)."""
    want = register_count(type_, len(registers) if type_ == "string" else None)
    if len(registers) != want:
        raise DecodeError(f"{type_} needs {want} registers, got {len(registers)}")
    if type_ == "bit":
        if bit is None or not 0 <= bit <= 15:
            raise DecodeError("type 'bit' needs bit 0-15")
        # A bit number names the bit of the register's value, whatever the byte order.
        return bool(registers[0] >> bit & 1)
    if type_ == "bool":
        return registers[0] != 0
    if type_ in BYTE_TYPES:
        if byte not in BYTES:
            raise DecodeError(f"type {type_!r} needs byte 'high' or 'low'")
        high, low = to_big_endian(registers, order)
        half = high if byte == "high" else low
        return half - 256 if type_ == "int8" and half > 127 else half
    if type_ == "string":
        byte_swap, _ = _swaps(order)
        # Word order is meaningless for text: only the byte swap inside registers applies.
        raw = to_big_endian(registers, "BADC" if byte_swap else "ABCD")
        return raw.split(b"\x00", 1)[0].decode("ascii", errors="replace").rstrip(" ")
    data = to_big_endian(registers, order)
    value: int | float = struct.unpack(_STRUCT[type_], data)[0]
    return value


def encode(
    value: RawValue, type_: str, order: str = "ABCD", *, length: int | None = None, byte: str | None = None,
) -> list[int]:
    """Registers that decode to `value` (the other byte 0 for 8-bit types): for fixtures and cross-checks."""
    if type_ in ("bit", "bool"):
        return [1 if value else 0]
    if type_ in BYTE_TYPES:
        if isinstance(value, str | bool) or not isinstance(value, int):
            raise DecodeError(f"{type_} holds an integer")
        low_limit, high_limit = (-128, 127) if type_ == "int8" else (0, 255)
        if not low_limit <= value <= high_limit:
            raise DecodeError(f"{value} does not fit {type_}")
        part = value & 0xFF
        return from_big_endian(bytes((part, 0)) if byte == "high" else bytes((0, part)), order)
    if type_ == "string":
        count = register_count(type_, length)
        raw = str(value).encode("ascii")[: count * 2].ljust(count * 2, b"\x00")
        byte_swap, _ = _swaps(order)
        return from_big_endian(raw, "BADC" if byte_swap else "ABCD")
    if isinstance(value, str):
        raise DecodeError(f"{type_} cannot hold text")
    return from_big_endian(struct.pack(_STRUCT[type_], value), order)


@dataclass(frozen=True, slots=True)
class Scaled:
    """A decoded value after scale, offset and sentinel checks. `reason` is set when it is unusable."""

    value: int | float | bool | str | None
    reason: str = ""


def apply_point(
    raw: RawValue, *, scale: float = 1.0, offset: float = 0.0, invalid: Sequence[float] = ()
) -> Scaled:
    """Turn a raw register value into the reported one.

    Sentinels are compared with the raw value (32767 means "no value" before any
    scaling). An integer with scale 1 and offset 0 stays an integer, so its wire
    type matches catalog.metric_type.
    """
    if isinstance(raw, (bool, str)):
        return Scaled(raw)
    if raw in invalid:
        return Scaled(None, "invalid")
    if isinstance(raw, float) and not math.isfinite(raw):
        return Scaled(None, "invalid")
    if scale == 1.0 and offset == 0.0:
        return Scaled(raw)
    return Scaled(tidy(float(raw) * scale + offset))


def tidy(value: float) -> float:
    """Drop binary noise from scaling (17 × 0.1 = 1.7000000000000002) that no sensor measured."""
    return float(f"{value:.15g}")


def plausible_decodings(registers: Sequence[int]) -> list[tuple[str, str, RawValue]]:
    """Every (type, order, value) the registers could mean, from the first register on.

    For the probe tool: a field engineer facing an unknown register map sees all
    readings side by side and picks the one that matches the display on the device.
    """
    rows: list[tuple[str, str, RawValue]] = []
    if registers:
        # 8-bit halves of the first register (the order column names the byte): status bytes, packed counters.
        for type_ in BYTE_TYPES:
            for byte in BYTES:
                rows.append((type_, byte, decode(registers[:1], type_, "ABCD", byte=byte)))
    for type_ in NUMERIC_TYPES:
        width = _WIDTH[type_]
        if len(registers) < width:
            continue
        orders = ("ABCD", "BADC") if width == 1 else ORDERS_32 if width == 2 else ORDERS_64
        for order in orders:
            rows.append((type_, order, decode(registers[:width], type_, order)))
    rows.append(("string", "ABCD", decode(registers, "string", "ABCD")))
    rows.append(("string", "BADC", decode(registers, "string", "BADC")))
    return rows
