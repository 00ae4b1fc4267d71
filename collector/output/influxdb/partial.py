"""Which lines of a batch InfluxDB refused in a partial write, from its error text. Pure: no I/O.

InfluxDB 1.x answers a batch with some bad points with HTTP 400 and `partial write: ...`,
and stores every other point. Dead-lettering the whole batch would then put thousands of
stored readings among the dead letters for one bad line (and count them as not written).

What an answer proves, as InfluxDB 1.6 writes them (`tests/collector/test_partial.py` has
real ones, and tests against a real influxd):
- `unable to parse '<line>': <reason>`, one per bad line, joined by newlines: given only
  when every point that parsed was stored, so the named lines are exactly the refused ones
  (an exact answer);
- `field type conflict: input field "<field>" on measurement "<measurement>" is type <type>,
  already exists as type <type> dropped=<n>`: one conflict of one shard only. It may hide
  unparseable lines, points beyond the retention policy, another conflict, or name a field
  that another shard of the same batch stored. Not exact: the caller writes the unnamed
  lines again, and the named ones on their own, until each answer is exact (points are
  idempotent: writing a stored point again changes nothing).
- `invalid field name: input field "time" on measurement "<m>" is invalid dropped=<n>` (or
  `invalid tag key: input tag "time" ...`): InfluxDB drops every point with a `time` field or
  tag key, and names only the first; every line with one is refused, and the answer is exact
  when `dropped` counts exactly those (births refuse such names now; spooled batches may hold them);
- anything else (beyond retention, series limits): no lines named; the caller keeps the
  whole batch in the dead letters (a re-drive of its stored points is harmless).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

_PARSE = re.compile(r"unable to parse '(?P<line>.*)': [^']*$")
_CONFLICT = re.compile(
    r'field type conflict: input field "(?P<field>(?:[^"\\]|\\.)*)" on measurement "(?P<measurement>(?:[^"\\]|\\.)*)" '
    r"is type (?P<type>\w+), already exists as type \w+")
_RESERVED = re.compile(r'invalid (?:field name|tag key): input (?:field|tag) "time" on measurement "(?:[^"\\]|\\.)*" '
                       r"is invalid$")
_DROPPED = re.compile(r" dropped=(\d+)$")
_UNESCAPE = re.compile(r"\\(.)")


def error_text(body: str) -> str:
    """The error message of an InfluxDB answer: v1 `{"error": ...}`, v2 `{"message": ...}`, or the body."""
    try:
        data = json.loads(body)
    except ValueError:
        return body.strip()
    if isinstance(data, dict):
        for key in ("error", "message"):
            if isinstance(data.get(key), str):
                return str(data[key])
    return body.strip()


@dataclass(frozen=True, slots=True)
class Answer:
    refused: list[int]  # indices of the lines the answer names, sorted
    exact: bool  # True: exactly these were refused, every other line stored


def partial_answer(lines: list[str], error: str) -> Answer | None:
    """What a `partial write` answer says of `lines`; None when it names no line we hold."""
    text = error.strip()
    if not text.lower().startswith("partial write:"):
        return None
    text = text[len("partial write:"):].strip()
    dropped = 0
    match = _DROPPED.search(text)
    if match:
        dropped = int(match.group(1))
        text = text[: match.start()]
    at: dict[str, list[int]] = {}
    for index, line in enumerate(lines):
        at.setdefault(line, []).append(index)
    named: set[int] = set()
    conflicts = 0
    reserved: set[int] | None = None
    for part in text.split("\n"):
        if _RESERVED.match(part):
            reserved = {i for i, line in enumerate(lines) if _has_time_key(line)}
            if not reserved:
                return None
            named.update(reserved)
            continue
        parse = _PARSE.match(part)
        if parse:
            indices = at.get(parse.group("line"))
            if not indices:
                return None
            named.update(indices)
            continue
        conflict = _CONFLICT.match(part)
        if conflict is None:
            return None  # beyond retention, series limits...: not a line we can name
        field, measurement = (_UNESCAPE.sub(r"\1", conflict.group(k)) for k in ("field", "measurement"))
        found = [i for i, line in enumerate(lines)
                 if _measurement(line) == measurement and _field_types(line).get(field) == conflict.group("type")]
        if not found:
            return None
        conflicts += 1
        named.update(found)
    if not conflicts:
        return Answer(sorted(named), exact=dropped == (len(reserved) if reserved is not None else 0))
    # A conflict is exact only when it covers the whole write: every line named and dropped.
    return Answer(sorted(named), exact=len(named) == len(lines) == dropped)


def readings_in(line: str) -> int:
    """Readings a line of ours holds: its fields not ending in `_q` (a value or an `_err` each;
    qualities and time flags end in `_q`: docs/data-model.md). A line that cannot be read
    counts as one."""
    if "\\" not in line and '"' not in line:  # no escapes, no strings: split as it stands
        parts = line.split(" ")
        if len(parts) == 3:
            return sum(not item.partition("=")[0].endswith("_q") for item in parts[1].split(","))
    fields = _field_types(line)
    return sum(not key.endswith("_q") for key in fields) if fields else 1


def _measurement(line: str) -> str:
    """The measurement of a line, unescaped."""
    out: list[str] = []
    i = 0
    while i < len(line):
        char = line[i]
        if char == "\\" and i + 1 < len(line):
            out.append(line[i + 1])
            i += 2
            continue
        if char in ", ":
            break
        out.append(char)
        i += 1
    return "".join(out)


def _has_time_key(line: str) -> bool:
    """Whether the line has a tag key or a field key `time` (which InfluxDB 1 drops)."""
    series, _, _ = _partition_unescaped(line, " ")
    tag_keys = [_partition_unescaped(tag, "=")[0] for tag in _split_unescaped(series, ",")[1:]]
    return "time" in tag_keys or "time" in _field_types(line)


def _field_types(line: str) -> dict[str, str]:
    """Field key (unescaped) -> InfluxDB's type name, for one line; {} when it cannot be read."""
    _, sep, rest = _partition_unescaped(line, " ")  # tags may hold a bare '"': no quotes before the fields
    if not sep:
        return {}
    out: dict[str, str] = {}
    for item in _split_unescaped(_split_unescaped(rest, " ")[0], ","):
        key, sep, value = _partition_unescaped(item, "=")
        if not sep:
            return {}
        out[_UNESCAPE.sub(r"\1", key)] = _value_type(value)
    return out


def _value_type(value: str) -> str:
    if value.startswith('"'):
        return "string"
    if value in ("t", "T", "true", "True", "TRUE", "f", "F", "false", "False", "FALSE"):
        return "boolean"
    if value.endswith("i"):
        return "integer"
    if value.endswith("u"):
        return "unsigned"
    return "float"


def _split_unescaped(text: str, sep: str) -> list[str]:
    """Split on `sep` outside escapes and double-quoted strings (line protocol's field rules)."""
    parts: list[str] = []
    start = 0
    quoted = False
    i = 0
    while i < len(text):
        char = text[i]
        if char == "\\":
            i += 2
            continue
        if char == '"':
            quoted = not quoted
        elif char == sep and not quoted:
            parts.append(text[start:i])
            start = i + 1
        i += 1
    parts.append(text[start:])
    return parts


def _partition_unescaped(text: str, sep: str) -> tuple[str, str, str]:
    i = 0
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == sep:
            return text[:i], sep, text[i + 1:]
        i += 1
    return text, "", ""
