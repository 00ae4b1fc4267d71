"""Hypothesis strategies for hostile line protocol: lines built from names and values that
are mostly fine and sometimes carry the characters influxd's scanner treats specially."""

from __future__ import annotations

from hypothesis import strategies as st

_SPECIAL = ["\\", ",", "=", " ", '"', "\n", "#", "_", "\t", "\x00", "\x01", "\x7f", "\r", "é", "\u2028", "\x85"]
_CHARS = st.sampled_from([*"abt0.-ei", *_SPECIAL])
NAMES = st.one_of(st.sampled_from(["m", "a", "b", "t", "time", "_x", "gateway"]), st.text(_CHARS, max_size=6))
VALUES = st.one_of(
    st.sampled_from(["1", "-1.5", "2i", "-3i", "true", "F", "1e3", ".5", "5.", '""', '"x"', "1u", "nan", "1e400"]),
    st.text(_CHARS, max_size=6).map(lambda s: f'"{s}"'),
    NAMES,
)
TIMES = st.sampled_from(["", " 1700000000000", " 5", " -1", " x", "  7", " 9223372036855", " 1 "])


@st.composite
def lines(draw: st.DrawFn, time: str) -> str:
    measurement = draw(NAMES)
    tags = draw(st.lists(st.tuples(NAMES, NAMES), max_size=3))
    fields = draw(st.lists(st.tuples(NAMES, VALUES), min_size=1, max_size=3))
    return (measurement + "".join(f",{k}={v}" for k, v in tags) + " "
            + ",".join(f"{k}={v}" for k, v in fields) + time)


# One time per body: points of different shards would make one field's type ambiguous to read back.
bodies = TIMES.flatmap(lambda time: st.lists(lines(time), min_size=1, max_size=3).map("\n".join))
