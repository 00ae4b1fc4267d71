"""InfluxDB line protocol, built for speed: each series' prefix once per birth, per reading only value and time.

Pure: no I/O. Escaping follows InfluxDB's rules and matches influxdb-client's serializer
(tests cross-check it on generated inputs), so the same reading always yields the same point.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from roadpulse.wire.names import check_name, printable

_ESCAPE_MEASUREMENT = str.maketrans({",": r"\,", " ": r"\ ", "\n": r"\n", "\t": r"\t", "\r": r"\r"})
_ESCAPE_KEY = str.maketrans(
    {",": r"\,", "=": r"\=", " ": r"\ ", "\n": r"\n", "\t": r"\t", "\r": r"\r"}
)
_ESCAPE_STRING = str.maketrans({'"': r"\"", "\\": r"\\"})

# Metric value types of protocol v1 (docs/protocol.md, births).
FLOAT, INTEGER, BOOLEAN, STRING = "f", "i", "b", "s"
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


class ValueTypeError(ValueError):
    """A value that cannot be written as its metric's fixed type."""


def escape_measurement(name: str) -> str:
    return name.translate(_ESCAPE_MEASUREMENT)


def escape_key(key: str) -> str:
    """Tag keys, tag values and field keys."""
    return key.translate(_ESCAPE_KEY)


def escape_tag_value(value: str) -> str:
    escaped = value.translate(_ESCAPE_KEY)
    # A trailing backslash would escape the separator that follows it.
    return escaped + " " if escaped.endswith("\\") else escaped


def escape_string(value: str) -> str:
    return value.translate(_ESCAPE_STRING)


def series_key(measurement: str, tags: Mapping[str, str]) -> str:
    """`measurement,k=v,...` with tags sorted by key; empty keys or values are left out (InfluxDB rejects them)."""
    parts = [escape_measurement(measurement)]
    for key in sorted(tags):
        value = tags[key]
        if key and value:
            parts.append(f"{escape_key(key)}={escape_tag_value(value)}")
    return ",".join(parts)


def strict_series_key(measurement: str, tags: Mapping[str, str]) -> str:
    """`series_key` of names roadpulse.wire.names accepts; raises ValueError for any other.

    Births are checked when decoded; this is the one producer of series text, so a name that
    was not checked can never reach a line (one reading, one point, in its own series).
    """
    check_name(measurement, "measurement")
    for key, value in tags.items():
        check_name(key, "tag key")
        check_name(value, "tag value")
    return series_key(measurement, tags)


def strict_field_key(name: str) -> str:
    """`escape_key` of a field name roadpulse.wire.names accepts; raises ValueError for any other."""
    return escape_key(check_name(name, "field"))


def string_text(value: str) -> str:
    """A string value or a quality reason as text between quotes: it can end no line (control
    characters become U+FFFD) and close no quote."""
    if value.isprintable() and '"' not in value and "\\" not in value:  # the common case: nothing to do
        return value
    return escape_string(printable(value))


def format_value(value: object, kind: str, decimals: int = 0) -> str:
    """One field value as its metric's fixed type. Raises ValueTypeError when it does not fit.

    `decimals` (type f): an int n is the scaled int of protocol v1, n x 10**-decimals, written
    as `ne-decimals`, which InfluxDB parses to the same float as n / 10**decimals.
    """
    if kind == FLOAT:
        if isinstance(value, float):
            if not math.isfinite(value):
                raise ValueTypeError("non-finite float")
            # repr is the shortest text that round-trips; "3.0" and "3" are the same float to InfluxDB.
            return repr(value)
        if isinstance(value, int) and not isinstance(value, bool):
            return f"{value}e-{decimals}" if decimals else str(value)
    elif kind == INTEGER:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, int) and not isinstance(value, bool):
            # msgpack carries uint64 and InfluxDB refuses a whole line beyond int64.
            if not INT64_MIN <= value <= INT64_MAX:
                raise ValueTypeError("integer beyond int64")
            return f"{value}i"
    elif kind == BOOLEAN:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int) and value in (0, 1):
            return "true" if value else "false"
    elif kind == STRING and isinstance(value, str):
        return f'"{escape_string(value)}"'
    raise ValueTypeError(f"{type(value).__name__} is not type {kind}")


def line(prefix: str, fields: str, ts_ms: int) -> str:
    """`prefix` is `series_key + " "`; `fields` is already `k=v[,k=v]`."""
    return f"{prefix}{fields} {ts_ms}\n"


def fields_line(measurement: str, tags: Mapping[str, str], fields: Mapping[str, object], ts_ms: int) -> str:
    """A general point (self-metrics, health): fields typed by their Python type, ints as integers."""
    parts = []
    for key in sorted(fields):
        value = fields[key]
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, int):
            text = f"{value}i"
        elif isinstance(value, float):
            if not math.isfinite(value):
                continue
            text = format_value(value, FLOAT)
        elif isinstance(value, str):
            text = f'"{escape_string(value)}"'
        else:
            continue
        parts.append(f"{escape_key(key)}={text}")
    if not parts:
        return ""
    return f"{series_key(measurement, tags)} {','.join(parts)} {ts_ms}\n"
