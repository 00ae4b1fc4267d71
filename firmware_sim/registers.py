"""Engineering values to Modbus register words, driven by the same profile the agent reads with.

The profile in config/profiles/ is the single source of truth for the register
map: the simulator encodes with it and the agent decodes with it, so the two can
only disagree if a codec is wrong, which the interop tests then catch.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping
from dataclasses import dataclass

from roadpulse.profiles import ModbusProfile, Register

Value = int | float | bool | str | None
RegisterKey = tuple[str, int]  # (kind, address)

_WORDS = {
    "bit": 1,
    "bool": 1,
    "int8": 1,
    "uint8": 1,
    "float16": 1,
    "int16": 1,
    "uint16": 1,
    "int32": 2,
    "uint32": 2,
    "float32": 2,
    "int64": 4,
    "uint64": 4,
    "float64": 4,
}
_STRUCT = {
    "int8": ">b",
    "uint8": ">B",
    "float16": ">e",
    "int16": ">h",
    "uint16": ">H",
    "int32": ">i",
    "uint32": ">I",
    "float32": ">f",
    "int64": ">q",
    "uint64": ">Q",
    "float64": ">d",
}


class EncodeError(ValueError):
    """A value that the register cannot hold (out of range for its type)."""


def word_count(reg: Register) -> int:
    if reg.type == "string":
        assert reg.length is not None  # the profile validator guarantees it
        return reg.length
    return _WORDS[reg.type]


def reorder(data: bytes, order: str) -> bytes:
    """Big-endian bytes (ABCD...) to the device's byte order; the mapping is its own inverse.

    One register has no word order: only the byte swap of BADC and DCBA applies to it.
    """
    n = len(data)
    if n == 2:
        return data[::-1] if order in ("BADC", "DCBA", "BADCFEHG", "HGFEDCBA") else data
    if n < 4 or order in ("ABCD", "ABCDEFGH"):
        return data
    if order in ("DCBA", "HGFEDCBA"):
        return data[::-1]
    if order in ("BADC", "BADCFEHG"):
        return b"".join(data[i : i + 2][::-1] for i in range(0, n, 2))
    # CDAB / GHEFCDAB: words reversed, bytes within each word kept.
    return b"".join(data[i : i + 2] for i in range(n - 2, -1, -2))


def raw_of(value: float | int, reg: Register) -> float | int:
    """Engineering value to raw: the inverse of the agent's raw * scale + offset."""
    raw = (value - reg.offset) / reg.scale
    if reg.type in ("float16", "float32", "float64"):
        return raw
    return round(raw)


def encode(value: Value, reg: Register) -> list[int]:
    """One point's words. None means "no value": the profile's first invalid sentinel is sent."""
    if value is None:
        if not reg.invalid:
            raise EncodeError(f"{reg.name}: no value and no invalid sentinel in the profile")
        raw: float | int | str | bool = reg.invalid[0]
        if reg.type not in ("float16", "float32", "float64"):
            raw = int(raw)
    elif isinstance(value, str):
        raw = value
    elif isinstance(value, bool) or reg.type in ("bool", "bit"):
        raw = bool(value)
    else:
        raw = raw_of(value, reg)
    if reg.type in ("bool", "bit"):
        bit = reg.bit if reg.type == "bit" and reg.bit is not None else 0
        return [(1 << bit) if raw else 0]
    if reg.type == "string":
        text = str(raw).encode("ascii", "replace")[: 2 * word_count(reg)].ljust(2 * word_count(reg), b"\0")
        return [int.from_bytes(text[i : i + 2], "big") for i in range(0, len(text), 2)]
    try:
        data = struct.pack(_STRUCT[reg.type], raw)
    except (struct.error, OverflowError) as exc:
        raise EncodeError(f"{reg.name}: {raw!r} does not fit {reg.type}") from exc
    if reg.type in ("int8", "uint8"):
        # One byte of the register, the other left 0.
        data = data + b"\0" if reg.byte == "high" else b"\0" + data
    data = reorder(data, reg.order)
    return [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]


_LIMITS = {
    "int8": (-(2**7), 2**7 - 1),
    "uint8": (0, 2**8 - 1),
    "int16": (-(2**15), 2**15 - 1),
    "uint16": (0, 2**16 - 1),
    "int32": (-(2**31), 2**31 - 1),
    "uint32": (0, 2**32 - 1),
    "int64": (-(2**63), 2**63 - 1),
    "uint64": (0, 2**64 - 1),
}


def saturate(value: Value, reg: Register) -> Value:
    """Clamp a value to what the register can hold, as device firmware does (a spike pegs at the maximum)."""
    if value is None or isinstance(value, str | bool) or reg.type not in _LIMITS:
        return value
    low, high = _LIMITS[reg.type]
    raw = raw_of(value, reg)
    if low <= raw <= high:
        return value
    return max(low, min(high, raw)) * reg.scale + reg.offset


def decode(words: list[int], reg: Register) -> float | int | str | bool:
    """Words back to the raw value, as a master reads them (before scale and offset)."""
    data = b"".join(w.to_bytes(2, "big") for w in words)
    if reg.type in ("bool", "bit"):
        return bool(words[0] >> (reg.bit or 0) & 1) if reg.type == "bit" else bool(words[0])
    if reg.type == "string":
        # Text ends at the first NUL; trailing blanks are padding.
        return data.split(b"\0", 1)[0].decode("ascii", "replace").rstrip(" ")
    data = reorder(data, reg.order)
    if reg.type in ("int8", "uint8"):
        data = data[:1] if reg.byte == "high" else data[1:]
    value: float | int = struct.unpack(_STRUCT[reg.type], data)[0]
    return value


def tidy(value: float) -> float:
    """Drop binary noise from scaling (557 × 0.01 = 5.57 exactly, not 5.570000000000001)."""
    return float(f"{value:.15g}")


def engineering(raw: float | int | str | bool, reg: Register) -> Value:
    """What a correct decoder reports for a raw register value: raw × scale + offset, None for a sentinel.

    Sentinels are compared with the raw value, before scaling. An integer with
    scale 1 and offset 0 stays an integer.
    """
    if isinstance(raw, bool | str):
        return raw
    if raw in reg.invalid or (isinstance(raw, float) and not math.isfinite(raw)):
        return None
    if reg.scale == 1.0 and reg.offset == 0.0:
        return raw
    return tidy(raw * reg.scale + reg.offset)


@dataclass(frozen=True, slots=True)
class Image:
    """A device's register contents at one instant, plus which point lives where.

    `raw` is each point's value as its registers hold it (after saturation and
    rounding to the register's resolution); `values` is what decoding those
    registers gives, so the truth file says exactly what a master can read.
    """

    words: dict[RegisterKey, int]
    raw: dict[str, float | int | str | bool]
    values: dict[str, Value]

    def points_in(self, profile: ModbusProfile, kind: str, start: int, count: int) -> list[str]:
        """Points whose registers lie wholly inside one read."""
        return [
            r.name
            for r in profile.registers
            if r.kind == kind and start <= r.address and r.address + word_count(r) <= start + count
        ]

    def served(self, profile: ModbusProfile, kind: str, start: int, count: int) -> list[tuple[str, Value, Value]]:
        """(point, raw, value) of the points one read carried, for the truth file."""
        return [(name, self.raw[name], self.values[name]) for name in self.points_in(profile, kind, start, count)]


def build_image(profile: ModbusProfile, values: Mapping[str, Value]) -> Image:
    """Encode every point of the profile; a point the model lacks is sent as its invalid sentinel."""
    words: dict[RegisterKey, int] = {}
    raw: dict[str, float | int | str | bool] = {}
    for reg in profile.registers:
        value = saturate(values.get(reg.name), reg)
        encoded = encode(value, reg)
        raw[reg.name] = decode(encoded, reg)
        for i, word in enumerate(encoded):
            key = (reg.kind, reg.address + i)
            # Bit points share a register: OR them together.
            words[key] = words.get(key, 0) | word if reg.type == "bit" else word
    return Image(words, raw, {r.name: engineering(raw[r.name], r) for r in profile.registers})


def block_end(profile: ModbusProfile, kind: str) -> int:
    """One past the highest address of a kind: reads beyond it get exception 02."""
    ends = [r.address + word_count(r) for r in profile.registers if r.kind == kind]
    return max(ends, default=0)
