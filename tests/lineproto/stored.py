"""What a real influxd stored from one write body: written to a database of its own, read back.

For the differential tests (tests/lineproto/test_against_influxd.py): points are compared
as sets of (measurement, tags, field, type, value, time) facts, so the comparison does not
depend on how influxd groups fields into rows.
"""

from __future__ import annotations

import itertools
import string
import urllib.error
import urllib.request
from typing import Any

from roadpulse.services import Influxd
from tests.lineproto.strict_parser import Parsed

Fact = tuple[str, tuple[tuple[str, str], ...], str, str, object, int | None]
_names = itertools.count()


def facts_of(parsed: Parsed) -> set[Fact]:
    """The parser's points as facts; a later point with the same series, field and time wins, as in influxd."""
    latest: dict[tuple[Any, ...], Fact] = {}
    for point in parsed.points:
        tags = tuple(sorted(point.tags.items()))
        for key in point.fields:
            fact = (point.measurement, tags, key, point.field_type(key), _norm(point.fields[key]), point.time)
            latest[fact[:3] + fact[5:]] = fact
    return set(latest.values())


def _norm(value: object) -> object:
    return float(value) if type(value) is float else value


def write_and_read(server: Influxd, body: bytes, precision: str = "ms") -> tuple[int, str, set[Fact]]:
    """(HTTP status, error text, facts stored) for `body` written alone to a fresh database."""
    db = f"case{next(_names)}"
    server.create_database(db)
    try:
        request = urllib.request.Request(f"{server.url}/write?db={db}&precision={precision}", data=body,
                                         method="POST")
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                status, error = answer.status, ""
        except urllib.error.HTTPError as exc:
            status, error = exc.code, exc.read().decode("utf-8", "replace")
        return status, error, _stored(server, db)
    finally:
        server.query(f'DROP DATABASE "{db}"')


def _stored(server: Influxd, db: str) -> set[Fact]:
    types: dict[tuple[str, str], str] = {}
    for result in server.query("SHOW FIELD KEYS", db).get("results", []):
        for series in result.get("series", []) or []:
            for key, kind in series["values"]:
                types[(series["name"], key)] = kind
    facts: set[Fact] = set()
    # One measurement at a time: a select over several drops a measurement whose field shares
    # its name, not its type, with another's.
    for measurement in sorted({name for name, _ in types}):
        facts |= _select(server, db, measurement, types)
    return facts


def _regex_char(c: str) -> str:
    """A regex, as any name can be one: ASCII punctuation escaped (RE2 refuses other escapes),
    control characters by code (InfluxQL ends a regex at a newline)."""
    if c in string.punctuation:
        return f"\\{c}"
    return f"\\x{{{ord(c):x}}}" if ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 or c in "\u2028\u2029" else c


def _select(server: Influxd, db: str, measurement: str, types: dict[tuple[str, str], str]) -> set[Fact]:
    quoted = "".join(map(_regex_char, measurement))
    facts: set[Fact] = set()
    for result in server.query(f"SELECT * FROM /(?s)^{quoted}$/ GROUP BY *", db).get("results", []):
        for series in result.get("series", []) or []:
            name = series["name"]
            tags = tuple(sorted((k, v) for k, v in (series.get("tags") or {}).items() if v))
            columns = series["columns"]
            for row in series["values"]:
                time = row[0]
                for column, value in zip(columns[1:], row[1:], strict=True):
                    if value is None:
                        continue
                    key = column
                    if column == "val0" and (name, "") in types and (name, "val0") not in types:
                        key = ""  # influxd stores an empty field key, and SELECT names it val0
                    kind = types.get((name, key), "?")
                    facts.add((name, tags, key, kind, float(value) if kind == "float" else value, time))
    return facts
