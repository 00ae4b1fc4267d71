"""The C loop (collector/_fastlines.c): takes the ordinary messages, declines the rest.

tests/collector/test_decode.py holds both loops to the careful path on arbitrary input; here
we check that the C loop really does the work for ordinary traffic (a loop that always
declined would pass those tests too), groups readings into lines exactly as the Python path
does, and declines exactly where Python must decide.
"""

from __future__ import annotations

import struct
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.output.influxdb.compile import build_table, native_table, templates
from collector.output.influxdb.format import _careful_line, _careful_lines, data_lines
from roadpulse.wire import Birth, MetricDef
from tests.collector.test_decode import _MIXED_TABLE
from tests.lineproto.stored import facts_of
from tests.lineproto.strict_parser import parse

fastlines = pytest.importorskip("collector._fastlines", reason="the C loop is not built (see test_the_c_loop_is_built)")
NATIVE = native_table(_MIXED_TABLE)
BASE = 1_700_000_000_000
# Aliases of _MIXED by type: 0, 4 float; 1, 5 integer; 8, 9 scaled float (2 and 9 decimals).
FLOATS, INTEGERS, SCALED = (0, 4), (1, 5), (8, 9)
I64 = st.integers(-(2**63), 2**63 - 1)
FINITE = st.floats(allow_nan=False, allow_infinity=False)
ordinary = st.one_of(
    st.tuples(st.sampled_from(FLOATS), st.one_of(I64, FINITE)),
    st.tuples(st.sampled_from(INTEGERS), I64),
    st.tuples(st.sampled_from(SCALED), st.one_of(I64, FINITE)),
    st.tuples(st.sampled_from(range(8)), st.none()),
)

# Series that share lines: a detector's two lanes (volume, occupancy scaled, speed, a string
# state and a bool on lane 1), a weather station, and alias 9 naming lane 1's speed again
# (a birth may give two aliases one series and field). A '%' in names: the templates are %-formats.
_LANE = {"site": "S%d", "road": "G15"}
_GROUPED = Birth("gw-1", "b", 0, BASE, "0.1.0", "abcdefabcdef",
                 [{"id": "vds%1", "tags": _LANE}, {"id": "wx", "tags": {"site": "S1"}}],
                 [MetricDef(0, "vds%1", "traffic", "volume", "veh", "i", {"lane": "1"}),
                  MetricDef(1, "vds%1", "traffic", "occ%", "%", "f", {"lane": "1"}, 2),
                  MetricDef(2, "vds%1", "traffic", "speed", "km/h", "f", {"lane": "1"}),
                  MetricDef(3, "vds%1", "traffic", "volume", "veh", "i", {"lane": "2"}),
                  MetricDef(4, "vds%1", "traffic", "speed", "km/h", "f", {"lane": "2"}),
                  MetricDef(5, "wx", "weather", "air_temp", "C", "f", {}, 1),
                  MetricDef(6, "vds%1", "traffic", "state", "", "s", {"lane": "1"}),
                  MetricDef(7, "vds%1", "traffic", "ok", "", "b", {"lane": "2"}),
                  MetricDef(8, "wx", "weather", "rh", "%", "f", {}),
                  MetricDef(9, "vds%1", "traffic", "speed", "km/h", "f", {"lane": "1"})])
GROUPED = build_table(_GROUPED)
GROUPED_NATIVE = native_table(GROUPED)
_NUMERIC = {0: "i", 1: "s", 2: "f", 3: "i", 4: "f", 5: "s", 8: "f", 9: "f"}


def _value(kind: str) -> st.SearchStrategy[Any]:
    if kind == "i":
        return I64
    return st.one_of(I64, FINITE)


grouped_reading = st.one_of(
    *[st.tuples(st.just(alias), _value(kind)) for alias, kind in _NUMERIC.items()],
    st.tuples(st.sampled_from(range(10)), st.none()),
)
# Polls: mostly dt 0 (one time), now and then a step forward, back, or to the same time again.
grouped_dt = st.one_of(st.just(0), st.just(0), st.just(0), st.sampled_from([1, 30_000, -1]))


def _flat(items: list[tuple[int, int, Any]]) -> list[Any]:
    return [x for item in items for x in item]


@settings(max_examples=300, deadline=None)
@given(items=st.lists(st.tuples(st.integers(-1000, 1000), ordinary), max_size=60))
def test_ordinary_messages_are_done_in_c(items: list[tuple[int, tuple[int, Any]]]) -> None:
    flat = _flat([(alias, dt, value) for dt, (alias, value) in items])
    text = fastlines.lines(list(flat), BASE, NATIVE, None)
    assert text is not None
    assert text == _careful_lines(list(flat), BASE, {}, 0, _MIXED_TABLE)[0]


@settings(max_examples=500, deadline=None)
@given(items=st.lists(st.tuples(grouped_dt, grouped_reading), max_size=60))
def test_grouped_messages_are_done_in_c_as_python_groups_them(items: list[tuple[int, tuple[int, Any]]]) -> None:
    """Readings of a series at one time share a line, in C as in both Python paths."""
    flat = _flat([(alias, dt, value) for dt, (alias, value) in items])
    text = fastlines.lines(list(flat), BASE, GROUPED_NATIVE, None)
    assert text is not None
    assert text == _careful_lines(list(flat), BASE, {}, 0, GROUPED)[0]
    assert text == data_lines(list(flat), BASE, {}, 0, GROUPED, compiled=templates(GROUPED, native=False))[0]


quality = st.sampled_from([[1, "stale"], [2, "timeout"], [2, 'a"b%s'], [0, ""]])


@settings(max_examples=500, deadline=None)
@given(items=st.lists(st.tuples(grouped_dt, st.one_of(grouped_reading, st.tuples(st.just(6), st.text(max_size=3)),
                                                      st.tuples(st.just(7), st.booleans()))), max_size=40),
       qualities=st.dictionaries(st.integers(0, 40), quality, max_size=6), flags=st.sampled_from([0, 1, 2, 4]))
def test_both_loops_group_every_kind_of_reading_alike(items: list[tuple[int, tuple[int, Any]]],
                                                      qualities: dict[int, Any], flags: int) -> None:
    """Strings, bools, quality pieces (handed to C as whole lines), time flags: the same text
    from the C loop, the Python templates and the careful path."""
    flat = _flat([(alias, dt, value) for dt, (alias, value) in items])
    careful = _careful_lines(list(flat), BASE, qualities, flags, GROUPED)
    for native in (True, False):
        assert data_lines(list(flat), BASE, qualities, flags, GROUPED,
                          compiled=templates(GROUPED, native=native)) == careful


def _one_line_per_reading(flat: list[Any], qualities: dict[Any, Any], flags: int) -> str:
    """The v1 data model: every reading its own line, in message order."""
    out = []
    now = BASE
    for index in range(len(flat) // 3):
        now += flat[3 * index + 1]
        line, _ = _careful_line(flat, index, qualities=qualities, table=GROUPED)
        out.append(line + (f",tf_q={flags}i" if flags not in (0, 2) else "") + f" {now}")
    return "\n".join(out)


@settings(max_examples=500, deadline=None)
@given(items=st.lists(st.tuples(grouped_dt, grouped_reading), max_size=50),
       qualities=st.dictionaries(st.integers(0, 50), quality, max_size=6), flags=st.sampled_from([0, 1]))
def test_lines_store_what_one_line_per_reading_stored(items: list[tuple[int, tuple[int, Any]]],
                                                      qualities: dict[int, Any], flags: int) -> None:
    """What influxd stores (series, field, time -> value, the last write winning) is the same
    as with one line per reading; no line gives a field twice (strict line protocol); and
    each line holds exactly as many readings as fields not ending in `_q`."""
    flat = _flat([(alias, dt, value) for dt, (alias, value) in items])
    text, _ = data_lines(list(flat), BASE, qualities, flags, GROUPED, compiled=templates(GROUPED))
    grouped = parse(text, strict=True)
    assert grouped.ok, grouped.errors
    assert facts_of(grouped) == facts_of(parse(_one_line_per_reading(flat, qualities, flags)))
    assert sum(sum(not key.endswith("_q") for key in p.fields) for p in grouped.points) == len(items)


def test_a_poll_becomes_one_line_per_series() -> None:
    flat = [0, 5, 12, 1, 0, 557, 2, 0, 88.5, 3, 0, 9, 5, 0, 215, 4, 0, None, 8, 0, 71.0,
            2, 0, 90.0,  # lane 1's speed again at the same time: a new line (the last write wins)
            0, 30_000, 13]
    text, bad = data_lines(flat, BASE, {3: [1, "stale"]}, 0, GROUPED, compiled=templates(GROUPED))
    assert bad == 0
    t0, t1 = BASE + 5, BASE + 30_005
    assert text.split("\n") == [
        f"traffic,device=vds%1,gateway=gw-1,lane=1,road=G15,site=S%d volume=12i,occ%=557e-2,speed=88.5 {t0}",
        f'traffic,device=vds%1,gateway=gw-1,lane=2,road=G15,site=S%d volume=9i,volume_q="uncertain:stale",'
        f'speed_err="nil" {t0}',
        f"weather,device=wx,gateway=gw-1,site=S1 air_temp=215e-1,rh=71.0 {t0}",
        f"traffic,device=vds%1,gateway=gw-1,lane=1,road=G15,site=S%d speed=90.0 {t0}",
        f"traffic,device=vds%1,gateway=gw-1,lane=1,road=G15,site=S%d volume=13i {t1}",
    ]


def test_two_aliases_of_one_series_and_field_never_share_a_line() -> None:
    text, _ = data_lines([2, 0, 1.5, 9, 0, 2.5], BASE, {}, 0, GROUPED, compiled=templates(GROUPED))
    assert text.split("\n") == [f"traffic,device=vds%1,gateway=gw-1,lane=1,road=G15,site=S%d speed={v} {BASE}"
                                for v in ("1.5", "2.5")]


def test_time_flags_are_written_once_per_line() -> None:
    text, _ = data_lines([0, 0, 1, 2, 0, 2.5], BASE, {}, 4, GROUPED, compiled=templates(GROUPED))
    assert text == f"traffic,device=vds%1,gateway=gw-1,lane=1,road=G15,site=S%d volume=1i,speed=2.5,tf_q=4i {BASE}"


def test_quality_pieces_are_taken_as_given() -> None:
    """A piece is a reading's whole line up to its time; after the first reading of a line,
    what follows its series is written."""
    series = "traffic,device=vds%1,gateway=gw-1,lane=1,road=G15,site=S%d "
    flat = [0, 0, 1, 1, 0, None, 2, 0, 7]
    text = fastlines.lines(flat, 10, GROUPED_NATIVE, [(1, series + "PIECE-1"), (2, series + "PIECE-2")])
    assert text == series + "volume=1i,PIECE-1,PIECE-2 10"
    assert fastlines.lines(flat, 10, GROUPED_NATIVE, [(1, "short")]) is None, "a piece shorter than its series"


@pytest.mark.parametrize(
    ("flat", "base", "overrides", "why"),
    [
        ([2, 0, True], BASE, None, "a boolean metric"),
        ([1, 0, True], BASE, None, "a bool is not an int"),
        ([3, 0, "x"], BASE, None, "a string metric"),
        ([1, 0, 1.0], BASE, None, "a float for an integer metric"),
        ([0, 0, float("nan")], BASE, None, "not finite"),
        ([0, 0, float("inf")], BASE, None, "not finite"),
        ([1, 0, 2**63], BASE, None, "beyond 64 bits"),
        ([10, 0, 1], BASE, None, "an alias the birth does not define"),
        ([99_999, 0, 1], BASE, None, "an alias beyond the table"),
        ([-1, 0, 1], BASE, None, "a negative alias"),
        ([True, 0, 1], BASE, None, "a bool alias"),
        ([1, 0.5, 1], BASE, None, "a float dt"),
        ([1, 1, 1], 2**63 - 1, None, "a time beyond 64 bits"),
        ([1, 0, 1], 2**64, None, "a base beyond 64 bits"),
        ([1, 0, [1]], BASE, None, "a list"),
        ([1, 0, 1], BASE, [(3, "x")], "a piece for a reading that is not there"),
        ([1, 0, 1], BASE, [(0, b"x")], "a piece that is not text"),
        ([1, 0, 1, 1, 0, 1], BASE, [(1, "m x=1"), (0, "m x=1")], "pieces out of order"),
        ([1, 0, 1, 1, 0, 1], BASE, [(0, "m x=1"), (0, "m x=1")], "a piece twice"),
        ([1, 0, 1, 1], BASE, None, "not whole readings"),
        ([], BASE, [(0, "x")], "a piece for an empty message"),
        ([1, 0, 1, 4, 5, 1.5, 1, 0, 1.0], BASE, None, "a later run declined"),
    ],
)
def test_it_declines_what_python_must_decide(flat: list[Any], base: int, overrides: Any, why: str) -> None:
    assert fastlines.lines(flat, base, NATIVE, overrides) is None, why


def test_empty_message_and_unicode_names() -> None:
    assert fastlines.lines([], BASE, NATIVE, None) == ""
    birth = Birth("gw-1", "b", 0, BASE, "0.1.0", "abcdefabcdef", [{"id": "tunnel-ö"}],
                  [MetricDef(0, "tunnel-ö", "air", "co_ppm", "ppm", "f", {"zone": "süd"}, 1),
                   MetricDef(1, "tunnel-ö", "air", "no₂", "ppm", "f", {"zone": "süd"})])
    table = build_table(birth)
    flat = [0, 0, 12, 1, 0, None]
    text = fastlines.lines(list(flat), BASE, native_table(table), [(1, 'air,device=tunnel-ö,gateway=gw-1,zone=süd '
                                                                     'no₂_err="ä"')])
    assert text == _careful_lines(list(flat), BASE, {1: [2, "ä"]}, 0, table)[0]
    assert text == f'air,device=tunnel-ö,gateway=gw-1,zone=süd co_ppm=12e-1,no₂_err="ä" {BASE}'


def _entry(kind: int = 0, decimals: int = 0, series: int = 0, cut: int = 2, slot: int = 0) -> Any:
    return (b"s p=", b"s n", struct.pack("=5i", kind, decimals, series, cut, slot))


@pytest.mark.parametrize(
    ("table", "why"),
    [
        (([(b"s p=", b"s n", b"\0" * 19)], 1, 1), "meta of the wrong size"),
        (([(b"s p=", b"s n", bytearray(20))], 1, 1), "meta not bytes"),
        (([("s p=", b"s n", bytes(20))], 1, 1), "a prefix not bytes"),
        (([(b"s p=", b"s n", bytes(20), 1)], 1, 1), "an entry of four"),
        (([_entry(kind=4)], 1, 1), "a kind beyond"),
        (([_entry(kind=-1)], 1, 1), "a negative kind"),
        (([_entry(kind=2, decimals=0)], 1, 1), "a scaled metric without decimals"),
        (([_entry(series=1)], 1, 1), "a series beyond the count"),
        (([_entry(slot=1)], 1, 1), "a slot beyond the count"),
        (([_entry(slot=-1)], 1, 1), "a negative slot"),
        (([_entry(cut=5)], 1, 1), "a cut beyond the prefix"),
        (([_entry()], -1, 1), "a negative count"),
        (([_entry()], 2**40, 1), "a count beyond any birth"),
    ],
)
def test_a_malformed_table_is_declined(table: Any, why: str) -> None:
    """The table's numbers are bytes, read without running Python code (no __index__), and
    every one is checked before use."""
    assert fastlines.lines([0, 0, 1], BASE, table, None) is None, why


def test_a_table_of_counts_that_are_not_ints_is_declined_without_running_python() -> None:
    class Index:
        def __index__(self) -> int:
            raise AssertionError("the C loop ran Python code")

    assert fastlines.lines([0, 0, 1], BASE, ([_entry()], Index(), 1), None) is None
    assert fastlines.lines([0, 0, 1], BASE, ([_entry()], 1, 1), None) == f"s p=1 {BASE}"


def test_wrong_argument_types_are_type_errors() -> None:
    with pytest.raises(TypeError):
        fastlines.lines((1, 0, 1), BASE, NATIVE, None)
    with pytest.raises(TypeError):
        fastlines.lines([1, 0, 1], BASE, NATIVE)
    with pytest.raises(TypeError):
        fastlines.lines([1, 0, 1], BASE, NATIVE[0], None)  # type: ignore[index]
