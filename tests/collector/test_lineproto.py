"""Line protocol: escaping cross-checked against influxdb-client's serializer, values table-driven."""

from __future__ import annotations

import math
import urllib.request

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.output.influxdb.lineproto import ValueTypeError, fields_line, format_value, series_key
from roadpulse.services import Influxd

names = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1,
                max_size=12)
tag_values = names.filter(lambda s: not s.endswith("\\"))


@settings(max_examples=300, deadline=None)
@given(measurement=names.filter(lambda s: not s.startswith("#")),
       tags=st.dictionaries(names, tag_values, max_size=4),
       field=names, text=st.text(max_size=20), number=st.integers(-(2**63), 2**63 - 1), ts=st.integers(0, 2**41))
def test_escaping_matches_influxdb_client(measurement: str, tags: dict[str, str], field: str, *, text: str,
                                          number: int, ts: int) -> None:
    from influxdb_client import Point, WritePrecision

    theirs = Point(measurement)
    for key, value in tags.items():
        theirs = theirs.tag(key, value)
    expected_int = theirs.field(field, number).time(ts, WritePrecision.MS).to_line_protocol()
    assert _ours(measurement, tags, field, format_value(number, "i"), ts) == expected_int
    string_point = Point(measurement)
    for key, value in tags.items():
        string_point = string_point.tag(key, value)
    expected_str = string_point.field(field, text).time(ts, WritePrecision.MS).to_line_protocol()
    assert _ours(measurement, tags, field, format_value(text, "s"), ts) == expected_str


def _ours(measurement: str, tags: dict[str, str], field: str, value: str, ts: int) -> str:
    from collector.output.influxdb.lineproto import escape_key

    return f"{series_key(measurement, tags)} {escape_key(field)}={value} {ts}"


@settings(max_examples=200, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_floats_round_trip(value: float) -> None:
    assert float(format_value(value, "f")) == value


@pytest.mark.parametrize(
    ("value", "kind", "expected"),
    [
        (1.5, "f", "1.5"), (3, "f", "3"), (3.0, "f", "3.0"), (-0.25, "f", "-0.25"),
        (7, "i", "7i"), (-7, "i", "-7i"), (7.0, "i", "7i"),
        (True, "b", "true"), (False, "b", "false"), (1, "b", "true"),
        ('a "q" \\', "s", r'"a \"q\" \\"'), ("", "s", '""'),
    ],
)
def test_format_value(value: object, kind: str, expected: str) -> None:
    assert format_value(value, kind) == expected


@pytest.mark.parametrize(
    ("value", "kind"),
    [("x", "f"), (True, "f"), (math.inf, "f"), (math.nan, "f"), (1.5, "i"), ("1", "i"), (True, "i"),
     (2, "b"), ("true", "b"), (1, "s"), (None, "f")],
)
def test_format_value_refuses_other_types(value: object, kind: str) -> None:
    with pytest.raises(ValueTypeError):
        format_value(value, kind)


def test_series_key_sorts_and_drops_empty_tags() -> None:
    assert series_key("traffic", {"z": "1", "a": "x y", "e": ""}) == r"traffic,a=x\ y,z=1"
    assert series_key("a,b c", {"k=1": "v,2"}) == r"a\,b\ c,k\=1=v\,2"
    assert series_key("m", {"k": "ends\\"}) == "m,k=ends\\ "


def test_fields_line_types() -> None:
    line = fields_line("roadpulse_collector", {"collector": "c1"},
                       {"n": 3, "ok": True, "rate": 1.5, "bad": math.nan, "s": "x"}, 10)
    assert line == 'roadpulse_collector,collector=c1 n=3i,ok=true,rate=1.5,s="x" 10\n'


@pytest.mark.parametrize(
    ("value", "decimals", "expected"),
    [(557, 2, "557e-2"), (-557, 2, "-557e-2"), (0, 1, "0e-1"), (7, 9, "7e-9"), (557, 0, "557"),
     (5.57, 2, "5.57")],
)
def test_scaled_ints_are_written_with_an_exponent(value: object, decimals: int, expected: str) -> None:
    assert format_value(value, "f", decimals) == expected


@settings(max_examples=300, deadline=None)
@given(n=st.integers(-(2**53) + 1, 2**53 - 1), decimals=st.integers(1, 9))
def test_scaled_ints_parse_to_the_engineering_value(n: int, decimals: int) -> None:
    """`ne-d` is the float n / 10**d, as a correctly rounded parser (Go's, Python's) reads it,
    and the same float influxdb-client would have written for that value."""
    from influxdb_client import Point, WritePrecision

    value = n / 10**decimals
    ours = format_value(n, "f", decimals)
    assert float(ours) == value
    theirs = Point("m").field("x", value).time(0, WritePrecision.MS).to_line_protocol()
    assert float(theirs.split(" ")[1].split("=", 1)[1]) == float(ours)


@pytest.mark.slow
def test_influxd_stores_scaled_ints_exactly(influxd: Influxd) -> None:
    """InfluxDB 1.6.7 accepts `557e-2` and stores the float n / 10**d bit for bit."""
    import random

    influxd.create_database("scaled")
    rng = random.Random(5)
    cases = [(557, 2), (-557, 2), (0, 1), (1, 9), (10000, 2), (-400, 1), (2**53 - 1, 6), (123456789, 3)]
    cases += [(rng.randrange(-(10**12), 10**12), rng.randint(1, 9)) for _ in range(200)]
    body = "\n".join(f"m,case={i} x={format_value(n, 'f', d)} {1000 + i}" for i, (n, d) in enumerate(cases))
    request = urllib.request.Request(f"{influxd.url}/write?db=scaled&precision=ms", data=body.encode(),
                                     method="POST")
    with urllib.request.urlopen(request, timeout=10) as resp:
        assert resp.status == 204
    answer = influxd.query("SELECT x, \"case\" FROM m", "scaled")
    stored = {int(row[2]): row[1] for row in answer["results"][0]["series"][0]["values"]}
    assert len(stored) == len(cases)
    for i, (n, d) in enumerate(cases):
        assert stored[i] == n / 10**d, (n, d, stored[i])
        assert type(stored[i]) is float or n % 10**d == 0  # JSON writes 5 for 5.0
