"""Which lines of a batch InfluxDB refused in a partial write, from its error text. Pure: no I/O.

InfluxDB 1.x answers a batch with some bad points with HTTP 400 and `partial write: ...`,
and stores every other point. Dead-lettering the whole batch would then put thousands of
stored readings among the dead letters for one bad line (and count them as not written).
So the refused lines are worked out from the error and only they are dead-lettered, but
only when the error accounts for every refused point exactly; otherwise the caller keeps
the whole batch in the dead letters, as before (a re-drive of stored points is harmless:
same series and time overwrite).

The texts understood, as InfluxDB 1.6 writes them (`tests/collector/test_partial.py` has
real ones, and a test against a real influxd):
- `unable to parse '<line>': <reason>`, one per bad line, joined by newlines;
- `field type conflict: input field "<field>" on measurement "<measurement>" is type
  <type>, already exists as type <type>`, the first conflict only;
- a trailing ` dropped=<n>`: points refused for a conflict (parse failures not included).
"""

from __future__ import annotations

import json
import re

_PARSE = re.compile(r"unable to parse '(?P<line>.*)': [^']*$")
_CONFLICT = re.compile(
    r'field type conflict: input field "(?P<field>(?:[^"\\]|\\.)*)" on measurement "(?P<measurement>(?:[^"\\]|\\.)*)" '
    r"is type (?P<type>\w+), already exists as type \w+")
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


def rejected_lines(lines: list[str], error: str) -> list[int] | None:
    """Indices of the lines InfluxDB did not store, or None when the error does not say exactly."""
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
    refused: set[int] = set()
    conflicts = 0
    for part in text.split("\n"):
        parse = _PARSE.match(part)
        if parse:
            indices = at.get(parse.group("line"))
            if not indices:
                return None
            refused.update(indices)
            continue
        conflict = _CONFLICT.match(part)
        if conflict is None:
            return None  # beyond retention, series limits...: not a line we can name
        field, measurement = (_UNESCAPE.sub(r"\1", conflict.group(k)) for k in ("field", "measurement"))
        found = [i for i, line in enumerate(lines)
                 if _measurement(line) == measurement and _field_types(line).get(field) == conflict.group("type")]
        conflicts += len(found)
        refused.update(found)
    if conflicts != dropped:
        return None  # another conflict InfluxDB did not name, or lines we misread
    return sorted(refused)


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
