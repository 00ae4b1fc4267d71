"""The C loop (collector/_fastlines.c): takes the ordinary messages, declines the rest.

tests/collector/test_decode.py holds both loops to the careful path on arbitrary input; here
we check that the C loop really does the work for ordinary traffic (a loop that always
declined would pass those tests too) and declines exactly where Python must decide.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.output.influxdb.compile import build_table, native_table
from collector.output.influxdb.format import _careful_lines
from roadpulse.wire import Birth, MetricDef
from tests.collector.test_decode import _MIXED_TABLE

fastlines = pytest.importorskip("collector._fastlines", reason="the C loop is not built (see test_the_c_loop_is_built)")
NATIVE = native_table(_MIXED_TABLE)
BASE = 1_700_000_000_000
# Aliases of _MIXED by type: 0, 4 float; 1, 5 integer; 8, 9 scaled float (2 and 9 decimals).
FLOATS, INTEGERS, SCALED = (0, 4), (1, 5), (8, 9)
I64 = st.integers(-(2**63), 2**63 - 1)
ordinary = st.one_of(
    st.tuples(st.sampled_from(FLOATS), st.one_of(I64, st.floats(allow_nan=False, allow_infinity=False))),
    st.tuples(st.sampled_from(INTEGERS), I64),
    st.tuples(st.sampled_from(SCALED), st.one_of(I64, st.floats(allow_nan=False, allow_infinity=False))),
    st.tuples(st.sampled_from(range(8)), st.none()),
)


def _flat(items: list[tuple[int, int, Any]]) -> list[Any]:
    return [x for item in items for x in item]


@settings(max_examples=300, deadline=None)
@given(items=st.lists(st.tuples(st.integers(-1000, 1000), ordinary), max_size=60))
def test_ordinary_messages_are_done_in_c(items: list[tuple[int, tuple[int, Any]]]) -> None:
    flat = _flat([(alias, dt, value) for dt, (alias, value) in items])
    text = fastlines.lines(list(flat), BASE, NATIVE, None)
    assert text is not None
    assert text == _careful_lines(list(flat), BASE, {}, 0, _MIXED_TABLE)[0]


def test_quality_pieces_are_taken_as_given() -> None:
    flat = [0, 0, 1.5, 1, 1, None, 5, 0, 7]
    text = fastlines.lines(flat, 10, NATIVE, [(1, "PIECE-1"), (2, "PIECE-2")])
    assert text is not None
    assert text.split("\n") == [r"m,device=d%1,gateway=gw-1,lane=0,site=50%s x0%d=1.5 10",
                                "PIECE-1 11", "PIECE-2 11"]


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
        ([1, 0, 1, 1], BASE, None, "not whole readings"),
        ([], BASE, [(0, "x")], "a piece for an empty message"),
    ],
)
def test_it_declines_what_python_must_decide(flat: list[Any], base: int, overrides: Any, why: str) -> None:
    assert fastlines.lines(flat, base, NATIVE, overrides) is None, why


def test_empty_message_and_unicode_names() -> None:
    assert fastlines.lines([], BASE, NATIVE, None) == ""
    birth = Birth("gw-1", "b", 0, BASE, "0.1.0", "abcdefabcdef", [{"id": "tunnel-ö"}],
                  [MetricDef(0, "tunnel-ö", "air", "co_ppm", "ppm", "f", {"zone": "süd"}, 1)])
    table = build_table(birth)
    text = fastlines.lines([0, 0, 12], BASE, native_table(table), None)
    assert text == _careful_lines([0, 0, 12], BASE, {}, 0, table)[0]
    assert text == f"air,device=tunnel-ö,gateway=gw-1,zone=süd co_ppm=12e-1 {BASE}"


def test_a_table_with_odd_kinds_is_declined_without_running_python() -> None:
    """Only exact ints are read from the table: anything else could run Python code (__index__)
    while the loop holds borrowed items."""

    class Index:
        def __index__(self) -> int:
            raise AssertionError("the C loop ran Python code")

    assert fastlines.lines([0, 0, 1], BASE, [(b"p=", Index(), 0, b"n")], None) is None  # type: ignore[list-item]
    assert fastlines.lines([0, 0, 1], BASE, [(b"p=", 2, Index(), b"n")], None) is None  # type: ignore[list-item]


def test_wrong_argument_types_are_type_errors() -> None:
    with pytest.raises(TypeError):
        fastlines.lines((1, 0, 1), BASE, NATIVE, None)
    with pytest.raises(TypeError):
        fastlines.lines([1, 0, 1], BASE, NATIVE)
