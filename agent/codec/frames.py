"""ASCII serial frames: cut a byte stream into frames, parse them, pick the profile's fields.

Serial lines deliver garbage after power cycles, half frames when the agent
starts mid-sentence and broken fields (`0R1,Dn=0m=032D`). Every such case is a
counted, skipped frame or a bad field, never an exception out of the reader.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from agent.codec.errors import FrameError
from agent.codec.nmea import Fields, Found, find_nmea, nmea_checksum, parse_nmea
from agent.codec.registers import tidy
from agent.codec.vaisala import find_keyvalue, parse_keyvalue
from roadpulse.profiles import FrameField, Framing
from roadpulse.profiles.units import resolve


@dataclass(slots=True)
class Framer:
    """Incremental framing by delimiter or fixed length; bytes in, complete frames out.

    A delimited frame longer than `max_length` is dropped up to the next delimiter,
    so one missing delimiter costs one frame, not the buffer.
    """

    framing: Framing
    counters: Counter[str] = field(default_factory=Counter)
    _buffer: bytearray = field(default_factory=bytearray)
    _discarding: bool = False

    def feed(self, data: bytes) -> list[bytes]:
        self._buffer += data
        if self.framing.mode == "fixed":
            return self._fixed()
        return self._delimited()

    def _fixed(self) -> list[bytes]:
        size = self.framing.length or 1
        frames = []
        while len(self._buffer) >= size:
            frames.append(bytes(self._buffer[:size]))
            del self._buffer[:size]
        self.counters["frames"] += len(frames)
        return frames

    def _delimited(self) -> list[bytes]:
        delimiter = self.framing.delimiter.encode()
        frames: list[bytes] = []
        while True:
            end = self._buffer.find(delimiter)
            if end < 0:
                if len(self._buffer) > self.framing.max_length:
                    # Keep a tail that may hold the start of a delimiter.
                    keep = len(delimiter) - 1
                    del self._buffer[: len(self._buffer) - keep]
                    if not self._discarding:
                        self.counters["overlong"] += 1
                    self._discarding = True
                return frames
            frame = bytes(self._buffer[:end])
            del self._buffer[: end + len(delimiter)]
            if self._discarding or len(frame) > self.framing.max_length:
                if not self._discarding:
                    self.counters["overlong"] += 1
                self._discarding = False
                continue
            if frame.strip():
                self.counters["frames"] += 1
                frames.append(frame)

    def reset(self) -> None:
        """Forget a partial frame: after a reconnect or before a poll command."""
        self._buffer.clear()
        self._discarding = False


def decode_text(frame: bytes) -> str:
    try:
        text = frame.decode("ascii")
    except UnicodeDecodeError:
        raise FrameError("garbage", "not ASCII") from None
    if any(ord(c) < 32 and c not in "\t\r\n" for c in text):
        raise FrameError("garbage", "control characters")
    return text.strip()


# ---- parsers: text -> {key: raw text}. A None value means the device marked it invalid.
# keyvalue (Vaisala) is agent.codec.vaisala, nmea is agent.codec.nmea.


def parse_regex(text: str, pattern: re.Pattern[str]) -> Fields:
    match = pattern.search(text)
    if match is None:
        raise FrameError("parse", "pattern does not match")
    return {k: v for k, v in match.groupdict().items() if v is not None}


def find_regex(fields: Fields, fld: FrameField) -> Found | None:
    if fld.key not in fields:
        return None
    if fld.unit_key is None:
        return Found(fields[fld.key])
    return Found(fields[fld.key], fields.get(fld.unit_key), unit_expected=True)


# ---- field extraction: raw text -> typed value in the profile's unit.

Value = int | float | bool | str | None

_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


@dataclass(frozen=True, slots=True)
class FieldValue:
    value: Value
    reason: str = ""
    # The unit the device wrote for it (`kn`, or the letter when it means nothing known), for the probe.
    device_unit: str | None = None


def convert(found: Found | str | None, fld: FrameField) -> FieldValue:
    """Typed value of one field: sentinels, scale and offset on the number as sent, then the unit.

    A number in another unit than the profile's is converted when the conversion is exact
    (roadpulse.profiles.units), else it is bad with reason `unit:<letter>`.
    """
    if not isinstance(found, Found):
        found = Found(found)
    if found.bad:
        return FieldValue(None, found.bad)
    if found.text is None:
        return FieldValue(None, "invalid")
    text = found.text.strip()
    if fld.type == "str":
        return FieldValue(text)
    if fld.type == "bool":
        lowered = text.lower()
        if lowered in ("1", "true", "on", "yes", "a"):
            return FieldValue(True)
        if lowered in ("0", "false", "off", "no", "v"):
            return FieldValue(False)
        return FieldValue(None, "parse")
    match = _NUMBER.match(text)
    # A trailing unit letter is allowed (`16.0C`), anything else is a broken field.
    if match is None or len(text) - match.end() > 1 or (
        len(text) > match.end() and not text[-1].isalpha()
    ):
        return FieldValue(None, "parse")
    number = float(match.group(0))
    # 1e999 parses as infinity: no sensor measured that, and it is no JSON or InfluxDB value.
    if number in fld.invalid or not math.isfinite(number):
        return FieldValue(None, "invalid")
    letter = found.unit if found.unit is not None else (text[match.end():] or None)
    unit = resolve(letter, unit=fld.unit, declared=fld.device_unit,
                   expected=found.unit_expected or letter is not None)
    if unit.reason:
        return FieldValue(None, unit.reason, unit.device_unit)
    if fld.type == "int" and fld.scale == 1.0 and fld.offset == 0.0 and unit.convert is None:
        if not number.is_integer():
            return FieldValue(None, "parse")
        return FieldValue(int(number), device_unit=unit.device_unit)
    scaled = number * fld.scale + fld.offset
    if unit.convert is not None:
        scaled = unit.convert(scaled)
    value = tidy(scaled)
    return FieldValue(round(value) if fld.type == "int" else value, device_unit=unit.device_unit)


@dataclass(slots=True)
class FrameParser:
    """A profile's parser: frame bytes in, values of the profile's fields out."""

    parser: str
    fields: Sequence[FrameField]
    pattern: re.Pattern[str] | None = None
    counters: Counter[str] = field(default_factory=Counter)

    def parse(self, frame: bytes) -> dict[str, FieldValue]:
        """Values of the fields present in this frame; a frame without any is counted and skipped."""
        try:
            text = decode_text(frame)
            if self.parser == "regex":
                assert self.pattern is not None, "regex parser built without a pattern"
                fields, find = parse_regex(text, self.pattern), find_regex
            elif self.parser == "keyvalue":
                fields, find = parse_keyvalue(text), find_keyvalue
            else:
                fields, find = parse_nmea(text), find_nmea
        except FrameError as err:
            self.counters[err.reason] += 1
            return {}
        values = {}
        for fld in self.fields:
            found = find(fields, fld)
            if found is not None:
                values[fld.name] = convert(found, fld)
        if not values:
            self.counters["unmatched"] += 1
        elif any(v.reason == "parse" for v in values.values()):
            self.counters["partial"] += 1
        else:
            self.counters["parsed"] += 1
        return values


def frame_parser(parser: str, fields: Iterable[FrameField], pattern: str | None) -> FrameParser:
    compiled = re.compile(pattern) if pattern is not None else None
    if parser == "regex" and compiled is None:
        raise ValueError("parser 'regex' needs 'pattern'")
    return FrameParser(parser, list(fields), compiled)


__all__ = [
    "FieldValue", "FrameError", "FrameParser", "Framer", "convert", "decode_text", "frame_parser", "nmea_checksum",
    "parse_keyvalue", "parse_nmea", "parse_regex",
]
