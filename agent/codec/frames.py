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

from agent.codec.registers import tidy
from roadpulse.profiles import FrameField, Framing


class FrameError(ValueError):
    """A frame that cannot be used. `reason` is the counter name and quality reason."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


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

Fields = dict[str, str | None]


def parse_regex(text: str, pattern: re.Pattern[str]) -> Fields:
    match = pattern.search(text)
    if match is None:
        raise FrameError("parse", "pattern does not match")
    return {k: v for k, v in match.groupdict().items() if v is not None}


def parse_keyvalue(text: str) -> Fields:
    """Comma-separated `key=value` items (Vaisala: `0R0,Dn=000#,Ta=16.0C`); `#` marks invalid.

    Items without `=` (the Vaisala address and command `0R0`) are skipped.
    """
    items = [item.strip() for item in text.split(",")]
    fields: Fields = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            continue
        fields[key] = None if value.endswith("#") else value
    if not fields:
        raise FrameError("parse", "no key=value items")
    return fields


def nmea_checksum(body: str) -> int:
    checksum = 0
    for char in body.encode("ascii"):
        checksum ^= char
    return checksum


def parse_nmea(text: str) -> Fields:
    """One NMEA 0183 sentence, checksum checked; keys are `<type>.<index>` (`MWV.3`).

    The type drops the two-letter talker (`IIMWV` -> `MWV`), so one profile fits
    any talker. Index 1 is the first field after the address.
    """
    start = text.find("$")
    if start < 0:
        start = text.find("!")
    if start < 0:
        raise FrameError("garbage", "no '$'")
    sentence = text[start + 1 :]
    body, star, given = sentence.partition("*")
    if star:
        try:
            expected = int(given[:2], 16)
        except ValueError:
            raise FrameError("checksum", f"unreadable checksum {given!r}") from None
        if nmea_checksum(body) != expected:
            raise FrameError("checksum", f"{nmea_checksum(body):02X} != {given[:2]}")
    else:
        raise FrameError("checksum", "no checksum")
    parts = body.split(",")
    address = parts[0]
    if len(address) < 3:
        raise FrameError("parse", f"bad address {address!r}")
    kind = address[2:] if len(address) >= 5 else address
    # An empty NMEA field is the talker's way of saying "no value": invalid, not unparseable.
    return {f"{kind}.{i}": (value or None) for i, value in enumerate(parts[1:], start=1)}


# ---- field extraction: raw text -> typed value with the unit letter removed.

Value = int | float | bool | str | None

_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


@dataclass(frozen=True, slots=True)
class FieldValue:
    value: Value
    reason: str = ""


def convert(raw: str | None, fld: FrameField) -> FieldValue:
    """Typed value of one field, with scale, offset and sentinels applied."""
    if raw is None:
        return FieldValue(None, "invalid")
    text = raw.strip()
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
    # A trailing unit letter is allowed (Vaisala `16.0C`), anything else is a broken field.
    if match is None or len(text) - match.end() > 1 or (
        len(text) > match.end() and not text[-1].isalpha()
    ):
        return FieldValue(None, "parse")
    number = float(match.group(0))
    # 1e999 parses as infinity: no sensor measured that, and it is no JSON or InfluxDB value.
    if number in fld.invalid or not math.isfinite(number):
        return FieldValue(None, "invalid")
    if fld.type == "int" and fld.scale == 1.0 and fld.offset == 0.0:
        if not number.is_integer():
            return FieldValue(None, "parse")
        return FieldValue(int(number))
    scaled = tidy(number * fld.scale + fld.offset)
    return FieldValue(round(scaled) if fld.type == "int" else scaled)


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
                found = parse_regex(text, self.pattern)
            elif self.parser == "keyvalue":
                found = parse_keyvalue(text)
            else:
                found = parse_nmea(text)
        except FrameError as err:
            self.counters[err.reason] += 1
            return {}
        values = {f.name: convert(found[f.key], f) for f in self.fields if f.key in found}
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
