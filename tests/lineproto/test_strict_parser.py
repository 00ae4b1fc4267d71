"""The parser's rules, table-driven (each row was checked against influxd 1.6.7 in the corpus),
and strict mode's promise: what it accepts reads the same as influxd reads it."""

from __future__ import annotations

import pytest
from hypothesis import given, settings

from tests.lineproto.corpus import CASES, INFLUXD_INCONSISTENT
from tests.lineproto.strategies import bodies
from tests.lineproto.strict_parser import STRICT, Point, parse

T = 1_700_000_000_000


@pytest.mark.parametrize(
    ("body", "points", "errors"),
    [
        (f"m f=1 {T}", [Point("m", {}, {"f": 1.0}, T)], []),
        (f'm,b=2,a=1 f=1.5,g=2i,h=T,s="a\\"b\\\\" {T}',
         [Point("m", {"a": "1", "b": "2"}, {"f": 1.5, "g": 2, "h": True, "s": 'a"b\\'}, T)], []),
        (f"m\\ x\\,y,t\\ k\\==v\\,w f\\ k\\,=1 {T}", [Point("m x,y", {"t k=": "v,w"}, {"f k,": 1.0}, T)], []),
        ("m f=1", [Point("m", {}, {"f": 1.0}, None)], []),
        (f"m f=1,f=2 {T}", [Point("m", {}, {"f": 2.0}, T)], []),  # the last of a duplicate field
        (f'm f=1,f="x" {T}', [], ["field type conflict in its shard"]),
        (f"m,a=1,a=2 f=1 {T}", [], ["duplicate tags"]),
        (f"m,t=v=w f=1 {T}", [], ["invalid tag format"]),
        (f"m,t==v f=1 {T}", [Point("m", {"t": "=v"}, {"f": 1.0}, T)], []),  # a tag value may start with =
        (f"m,time=1 f=1 {T}", [], ["invalid tag key: time"]),
        (f"m time=1 {T}", [], ["invalid field name: time"]),
        (f"m time=1,x=2 {T}", [Point("m", {}, {"x": 2.0}, T)], []),  # the time field alone is dropped
        (f"# c\n  #m f=1 {T}\nm f=1 {T}", [Point("m", {}, {"f": 1.0}, T)], []),  # comments: 204, nothing
        (f"m a=9223372036854775808i {T}", [], ["integer out of range b'9223372036854775808'"]),
        (f"m a=1e400 {T}", [], ["invalid float"]),
        (f"m a=1u {T}", [], ["invalid number"]),
        (f"m a=yes {T}", [], ["invalid boolean"]),
        ("m f=1 9223372036855", [], ["time outside range"]),
        (f"m f=1 {T} x", [], ["point is invalid"]),
        (f'm s="a\\" {T}', [], ["unbalanced quotes"]),
        (f'm s="a\\b" {T}', [Point("m", {}, {"s": "a\\b"}, T)], []),  # kept literally
        (f'm s="x\ny" {T}', [Point("m", {}, {"s": "x\ny"}, T)], []),  # a newline inside a string
        (f"m,t=v\\ f=1 {T}", [], ["invalid tag format"]),  # a trailing backslash swallows the separator
        (f"m,t=v f=1\\\nm2 g=2 {T}", [], ["invalid number"]),  # an escaped newline joins two lines
        (f"m\\\nx f=1 {T}", [Point("m\\\nx", {}, {"f": 1.0}, T)], []),
        (f"m fo\\o=1 {T}", [Point("m", {}, {"fo\\o": 1.0}, T)], []),
        # #16: a field key ending in a backslash escapes its `=`: the string's quotes no longer
        # count, and its newline ends the line, so the text after it is a point of its own
        (f'm,gateway=g1 x\\="a\nm,gateway=victim y=666 {T}\n" {T}',
         [Point("m", {"gateway": "victim"}, {"y": 666.0}, T)], ["invalid field format", "invalid field format"]),
    ],
)
def test_what_influxd_stores(body: str, points: list[Point], errors: list[str]) -> None:
    parsed = parse(body)
    assert parsed.points == points
    assert [e.reason for e in parsed.errors] == errors


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (f"m f=1 {T}\n", None),
        (f'm,a=x\\,y\\ z\\=w f=1.5,g=-2i,h=false,s="a\\"b\\\\c,d=e f" {T}', None),
        (f"m=x f=1 {T}", None),  # `=` needs no escape in a measurement
        ("m f=1", "not of the strict form"),
        (f"m f=1 {T} ", "not of the strict form"),
        (f"m  f=1 {T}", "not of the strict form"),
        (f" m f=1 {T}", "not of the strict form"),
        (f"m f=1 {T}\n\nm f=2 {T}", "blank line"),
        (f"#m f=1 {T}", "a line starting with # is a comment"),
        (f"m\\\\ f=1 {T}", "invalid field format"),  # influxd refuses it anyway
        (f"m,t=a\\\\ f=1 {T}", ""),  # refused, whatever the reason
        (f"m fo\\o=1 {T}", "not of the strict form"),
        (f'm s="a\\b" {T}', "not of the strict form"),
        (f'm s="x\ny" {T}', "not of the strict form"),
        (f"m,t=a\x01b f=1 {T}", "not of the strict form"),
        (f"m\x85 f=1 {T}", "not of the strict form"),  # C1
        (f'm\u2028,t"k=v"w f"k="x\u2028" {T}', None),  # influxd reads quotes in names as plain
        (f"m,_t=v f=1 {T}", "starts with _"),
        (f"_m f=1 {T}", "starts with _"),
        (f"m time=1,x=2 {T}", "field key 'time' is reserved"),
        (f"m f=1,f=2 {T}", "duplicate field key"),
        (f"m a=1e400 {T}", "invalid float"),  # influxd's own reason comes first
        (b"m\xff f=1 1", "invalid UTF-8"),
    ],
)
def test_strict_mode(body: str | bytes, reason: str | None) -> None:
    parsed = parse(body, strict=True)
    if reason is None:
        assert parsed.ok, parsed.errors
        assert parsed.points == parse(body).points
    else:
        assert not parsed.ok
        assert reason in parsed.errors[0].reason, parsed.errors


def test_strict_mode_refuses_what_influxd_stores_inconsistently() -> None:
    for body in INFLUXD_INCONSISTENT:
        assert not parse(body, strict=True).ok
    assert "control characters" in STRICT


@pytest.mark.parametrize("body", CASES)
def test_strict_accepts_only_what_reads_the_same(body: str) -> None:
    strict = parse(body, strict=True)
    if strict.ok:
        assert strict.points == parse(body).points


@settings(max_examples=500, deadline=None)
@given(body=bodies)
def test_strict_points_are_influxds_points(body: str) -> None:
    """Strict mode never reads a block otherwise than influxd, on hostile text (the real
    influxd agrees with the lenient reading: test_against_influxd.py)."""
    lenient, strict = parse(body), parse(body, strict=True)
    assert len(strict.points) + len(strict.errors) >= len(lenient.points)
    if strict.ok:
        assert strict.points == lenient.points
        assert all(point.time is not None for point in strict.points)
