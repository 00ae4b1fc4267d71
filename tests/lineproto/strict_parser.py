"""A line-protocol parser for tests: what influxd 1.6 stores from a body, and a strict mode.

`parse(body)` says what influxd 1.6.7 would store from one `/write` body: its points, and
each block it refuses or drops with the reason. `parse(body, strict=True)` also refuses
everything influxd takes in ways a producer must never rely on (the rules are in `STRICT`
and docs of `_strict_reason`); a block it accepts reads the same in both modes (tested),
and what influxd stores from it is exactly the point it returns (tested against a real
influxd). The collector's output must parse in strict mode with no error at all.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass, field

from tests.lineproto.influxd_rules import (
    HASH,
    MAX_NANO,
    MIN_NANO,
    PRECISIONS,
    EngineError,
    FieldValue,
    RawPoint,
    ScanError,
    go_text,
    parse_block,
    skip_whitespace,
    split_blocks,
)

_FIELD_TYPES = {float: "float", int: "integer", bool: "boolean", str: "string"}


@dataclass(frozen=True, slots=True)
class Point:
    measurement: str
    tags: dict[str, str]
    fields: dict[str, FieldValue]
    time: int | None  # in the write's precision; None: the server's clock

    def field_type(self, key: str) -> str:
        return _FIELD_TYPES[type(self.fields[key])]


@dataclass(frozen=True, slots=True)
class LineError:
    block: str
    reason: str


@dataclass(slots=True)
class Parsed:
    points: list[Point] = field(default_factory=list)  # what would be stored, in order
    errors: list[LineError] = field(default_factory=list)  # blocks refused (parse) or dropped (storage)
    comments: int = 0  # blocks influxd skips as comments: it answers 204 for them and stores nothing
    engine_errors: int = 0  # blocks that make influxd answer 500 (see EngineError)
    blocks: int = 0  # blocks that are neither blank nor comments

    @property
    def ok(self) -> bool:
        return not self.errors


def parse(body: str | bytes, *, strict: bool = False, precision: str = "ms", conflicts: bool = True) -> Parsed:
    """`conflicts`: when two points of one shard give a field two types, influxd refuses all
    that shard's points of the body (a fresh database is assumed); off, types are not compared."""
    buf = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body
    fast = _strict_fast(buf, precision) if strict else None
    if fast is not None:
        out = Parsed(blocks=len(fast))
        refused = _conflicting_shards([(p, "", False) for p in fast], precision) if conflicts else set()
        for fast_point in fast:
            if _shard(fast_point, precision) in refused:
                out.errors.append(LineError("", "field type conflict in its shard"))
            else:
                out.points.append(fast_point)
        return out
    out = Parsed()
    kept: list[tuple[Point, str, bool]] = []
    poisoned: set[int] = set()
    blocks = split_blocks(buf)
    for index, block in enumerate(blocks):
        text = block.decode("utf-8", "replace")
        start = skip_whitespace(block, 0)
        if start >= len(block):
            if strict and not (index == len(blocks) - 1 and not block):
                out.errors.append(LineError(text, "strict: blank line"))
            continue
        if block[start] == HASH:
            out.comments += 1
            if strict:
                out.errors.append(LineError(text, "strict: a line starting with # is a comment to influxd"))
            continue
        out.blocks += 1
        try:
            raw = parse_block(block[start:], precision)
        except EngineError as exc:
            out.errors.append(LineError(text, str(exc)))
            out.engine_errors += 1
            poisoned.add(_shard_of(exc.time, precision))
            continue
        except ScanError as exc:
            out.errors.append(LineError(text, str(exc)))
            continue
        if strict:
            try:
                strict_point = _strict_point(block.decode("utf-8"), precision)
            except UnicodeDecodeError:
                strict_point = "invalid UTF-8"
            if isinstance(strict_point, str):
                out.errors.append(LineError(text, f"strict: {strict_point}"))
                continue
        point, why, conflict = _store(raw)
        if point is None:
            out.errors.append(LineError(text, why))
        else:
            kept.append((point, text, conflict))
    refused = _conflicting_shards(kept, precision) if conflicts else set()
    for point, text, _ in kept:
        if _shard(point, precision) in poisoned:
            out.errors.append(LineError(text, "not stored: the engine failed on its shard"))
        elif _shard(point, precision) in refused:
            out.errors.append(LineError(text, "field type conflict in its shard"))
        else:
            out.points.append(point)
    return out


_WEEK_NS = 7 * 86400 * 10**9
_YEAR1_TO_EPOCH_NS = 719162 * 86400 * 10**9  # Go truncates times to shard groups counted from year 1


def _shard(point: Point, precision: str) -> int:
    """The shard group (7 days, influxd's default) a point is written to."""
    return _shard_of(point.time, precision)


def _shard_of(point_time: int | None, precision: str) -> int:
    nanos = time.time_ns() if point_time is None else point_time * PRECISIONS[precision]
    return (nanos + _YEAR1_TO_EPOCH_NS) // _WEEK_NS


def _conflicting_shards(kept: list[tuple[Point, str, bool]], precision: str) -> set[int]:
    """Shards whose points give one field two types (in one point or two): influxd refuses
    all of that shard's points of the body."""
    types: dict[tuple[int, str, str], str] = {}
    refused = set()
    for point, _, conflict in kept:
        shard = _shard(point, precision)
        if conflict:
            refused.add(shard)
        for key in point.fields:
            if types.setdefault((shard, point.measurement, key), point.field_type(key)) != point.field_type(key):
                refused.add(shard)
    return refused


def _name(raw: bytes) -> str:
    return go_text(raw)


def _store(raw: RawPoint) -> tuple[Point | None, str, bool]:
    """influxd's storage rules after parsing: a `time` tag drops the point, a `time` field is
    dropped (and the point with it when nothing else is left), an empty value stores nothing,
    and a field given twice keeps its last value. True: the point gives one field two types."""
    tags = {_name(k): _name(v) for k, v in raw.tags}
    if "time" in tags:
        return None, "invalid tag key: time", False
    fields: dict[str, FieldValue] = {}
    conflict = False
    for key, value in raw.fields:
        name = _name(key)
        if value is None or name == "time":
            continue
        if name in fields and type(fields[name]) is not type(value):
            conflict = True
        fields[name] = value
    if not fields:
        why = "invalid field name: time" if any(k == b"time" for k, _ in raw.fields) else "no field stored"
        return None, why, False
    return Point(_name(raw.measurement), tags, fields, raw.time), "", conflict


# ---- strict mode ------------------------------------------------------------------------------

# Names: plain characters or the escapes that are needed. A backslash is never plain (influxd
# reads it differently in different places), and neither is a control character.
# Possessive (`++`): the alternatives start with different characters and the separators are
# none of them, so nothing is given back, and a refused line costs no backtracking.
_PLAIN = r"[^\\,= \x00-\x1f\x7f-\x9f]++"
_MEASUREMENT = rf"(?:{_PLAIN}|=|\\[, ])++"
_KEY = rf"(?:{_PLAIN}|\\[,= ])++"
_FLOAT = r"-?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
_INTEGER = r"-?[0-9]+i"
_BOOLEAN = r"true|True|TRUE|t|T|false|False|FALSE|f|F"
_STRING = r'"(?:[^"\\\x00-\x1f\x7f-\x9f]++|\\["\\])*+"'
_VALUE = rf"(?:{_STRING}|{_INTEGER}|{_FLOAT}|{_BOOLEAN})"
_LINE = re.compile(
    rf"(?P<m>{_MEASUREMENT})(?P<tags>(?:,{_KEY}={_KEY})*) (?P<fields>{_KEY}={_VALUE}(?:,{_KEY}={_VALUE})*)"
    r" (?P<ts>-?[0-9]+)"
)
_FIELD = re.compile(rf",?({_KEY})=({_VALUE})")
_TAG = re.compile(rf",({_KEY})=({_KEY})")
_UNESCAPE = re.compile(r"\\(.)")
_UNESCAPE_STRING = re.compile(r'\\(["\\])')
_BOOLEANS = {"t": True, "T": True, "true": True, "True": True, "TRUE": True,
             "f": False, "F": False, "false": False, "False": False, "FALSE": False}
RESERVED = frozenset({"time"})
STRICT = """\
strict mode refuses, beyond what influxd refuses:
- blank lines (but a final newline), leading whitespace, and lines starting with # (comments);
- invalid UTF-8, and control characters anywhere (C0, DEL, C1), in string values too: influxd keeps
  a newline inside a string, but other parsers and tools split lines first;
- a backslash in a name other than the escapes needed (measurement: comma, space; tag keys,
  tag values, field keys: comma, equals sign, space), so no trailing backslash, no `\\\\`;
- in a string value, a backslash other than before a double quote or a backslash;
- empty names; a tag key or field key `time` (influxd drops the point or the field); names
  starting with `_` (reserved by InfluxDB 2 and later);
- the same tag key or field key twice;
- a missing timestamp, more than one space between sections, trailing spaces;
- float forms other than decimal digits with an optional point and exponent; unsigned `u` integers;
  a float that overflows, an integer or a time out of range.
"""


def _unescape(raw: str) -> str:
    return _UNESCAPE.sub(r"\1", raw) if "\\" in raw else raw


def _pairs(pattern: re.Pattern[str], text: str) -> list[tuple[str, str]]:
    """`k=v` pairs one after the other (the whole text is known to be made of them)."""
    out = []
    pos = 0
    while pos < len(text):
        match = pattern.match(text, pos)
        assert match is not None, (pattern.pattern, text, pos)
        out.append((match[1], match[2]))
        pos = match.end()
    return out


def _strict_point(text: str, precision: str) -> Point | str:
    """The point of one strict line, or why the line is not strict line protocol (see STRICT)."""
    match = _LINE.fullmatch(text)
    if match is None:
        return "not of the strict form `measurement[,k=v...] k=v[,k=v...] time`"
    if text[0] == "#":
        return "a line starting with # is a comment to influxd"
    names = [("measurement", _unescape(match["m"]))]
    tags = [(_unescape(key), _unescape(value)) for key, value in _pairs(_TAG, match["tags"])]
    names += [("tag key", key) for key, _ in tags]
    fields: list[tuple[str, FieldValue]] = []
    for key, raw in _pairs(_FIELD, match["fields"]):
        value = _value(raw)
        if isinstance(value, _Refused):
            return value.why
        fields.append((_unescape(key), value))
        names.append(("field key", fields[-1][0]))
    for what, name in names:
        if name.startswith("_"):
            return f"{what} {name!r} starts with _"
        if what != "measurement" and name in RESERVED:
            return f"{what} {name!r} is reserved"
    for what, keys in (("tag key", [k for k, _ in tags]), ("field key", [k for k, _ in fields])):
        if len(set(keys)) != len(keys):
            return f"duplicate {what}"
    time = int(match["ts"])
    if not MIN_NANO <= time * PRECISIONS[precision] <= MAX_NANO:
        return "time outside range"
    return Point(names[0][1], dict(tags), dict(fields), time)


@dataclass(frozen=True, slots=True)
class _Refused:
    why: str


def _value(raw: str) -> FieldValue | _Refused:
    if raw[0] == '"':
        return _UNESCAPE_STRING.sub(r"\1", raw[1:-1])
    if raw[-1] == "i":
        number = int(raw[:-1])
        return number if -(2**63) <= number < 2**63 else _Refused(f"integer {raw} out of range")
    if raw in _BOOLEANS:
        return _BOOLEANS[raw]
    value = float(raw)
    return value if math.isfinite(value) else _Refused(f"float {raw} overflows")


def _strict_fast(buf: bytes, precision: str) -> list[Point] | None:
    """The points of a body whose every line is strict, or None (then the full path says why).

    A strict line holds no control character, so no newline hides in it: the body's lines are
    exactly influxd's blocks. This is the fuzz's hot path, hence regular expressions only.
    """
    try:
        text = buf.decode("utf-8")
    except UnicodeDecodeError:
        return None
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    points = []
    for line in lines:
        point = _strict_point(line, precision)
        if isinstance(point, str):
            return None
        points.append(point)
    return points
