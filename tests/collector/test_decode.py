"""The fast data path agrees with roadpulse.wire: same readings accepted, same messages refused."""

from __future__ import annotations

from collections.abc import Callable

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import collector.output.influxdb.compile as decode_module
from collector.decode import Decoder, Kind
from collector.output.base import UnknownAlias as _Unknown
from collector.output.influxdb.compile import build_table, templates
from collector.output.influxdb.format import _careful_lines, data_lines
from roadpulse.wire import (
    Birth,
    DataBatch,
    MetricDef,
    Quality,
    Reading,
    TimeFlag,
    WireError,
    decode,
    encode_birth,
    encode_data,
    engineering_values,
)
from tests.collector.traffic import make_birth

BOOT = "0123456789abcdef"
BIRTH = make_birth("gw-1", BOOT, metrics=10)
# The same metrics, the float ones declared with 2 decimals (scaled ints on the wire).
SCALED_BIRTH = make_birth("gw-1", BOOT, metrics=10, decimals=2)


def _decoder(birth: Birth = BIRTH) -> Decoder:
    decoder = Decoder()
    decoder.decode("gw-1", "birth", encode_birth(birth))
    return decoder


def _parse(line: str) -> tuple[str, dict[str, str], int]:
    """(series, fields, ts) of one of our lines (no spaces inside string values in these tests)."""
    series, fields, ts = line.rsplit(" ", 2)
    return series, dict(f.split("=", 1) for f in fields.split(",")), int(ts)


readings = st.lists(
    st.tuples(
        st.integers(0, 9),
        st.integers(-5000, 5000),
        st.one_of(st.none(), st.integers(-(2**31), 2**31), st.floats(allow_nan=False, allow_infinity=False,
                                                                     width=32),
                  st.integers(-(10**6), 10**6).map(lambda n: n / 100)),
        st.sampled_from([Quality.GOOD, Quality.UNCERTAIN, Quality.BAD]),
    ),
    max_size=40,
)


def _fits_int64(value: object) -> bool:
    if isinstance(value, float):
        return value.is_integer() and -(2**63) <= int(value) < 2**63
    return isinstance(value, int) and -(2**63) <= value < 2**63


@settings(max_examples=200, deadline=None)
@given(items=readings, flags=st.sampled_from([0, 1, 2, 4, 5]), seq=st.integers(0, 2**40),
       birth=st.sampled_from([BIRTH, SCALED_BIRTH]))
def test_fast_path_matches_wire_decode(items: list[tuple[int, int, object, Quality]], flags: int,
                                       seq: int, birth: Birth) -> None:
    ts = 1_700_000_000_000
    batch_readings = []
    for alias, dt, value, quality in items:
        ts += dt
        batch_readings.append(Reading(alias, ts, value, quality, "why" if quality else ""))  # type: ignore[arg-type]
    decimals = {m.alias: m.decimals for m in birth.metrics if m.decimals is not None}
    payload = encode_data(DataBatch("gw-1", BOOT, seq, ts, batch_readings, TimeFlag(flags)), decimals)
    wire = decode(payload)
    assert isinstance(wire, DataBatch)
    reference = engineering_values(wire, birth)
    # What the agent took is what the collector writes, scaled on the wire or not.
    assert [r.value for r in reference.readings] == [r.value for r in batch_readings]
    result = _decoder(birth).decode("gw-1", "data", payload)
    assert result.kind is Kind.LINES
    assert result.seq == seq
    assert len(result.lines) == len(reference.readings)
    metrics = {m.alias: m for m in BIRTH.metrics}
    for line, reading in zip(result.lines, reference.readings, strict=True):
        series, fields, line_ts = _parse(line)
        metric = metrics[reading.alias]
        assert line_ts == reading.ts_ms
        assert series.startswith(f"traffic,device={metric.device},")
        assert f"lane={metric.tags['lane']}" in series
        counted = [k for k in fields if not k.endswith("_q")]
        assert len(counted) == 1  # the counting rule of docs/data-model.md
        if reading.value is None:
            assert counted == [f"{metric.field}_err"]
        elif metric.type == "i" and not _fits_int64(reading.value):
            # not an integer, or beyond int64 (msgpack's uint64): InfluxDB would refuse the line
            assert fields[f"{metric.field}_err"].startswith('"bad-type')
        else:
            text = fields[metric.field]
            if metric.type == "i":
                assert text == f"{int(reading.value)}i"
            else:
                assert float(text) == reading.value
            if reading.quality:
                assert fields[f"{metric.field}_q"].startswith('"uncertain:' if reading.quality == 1 else '"bad:')
        assert ("tf_q" in fields) == (flags not in (0, 2))


def _raw(**changes: object) -> bytes:
    obj: dict[str, object] = {"v": 1, "t": "data", "gw": "gw-1", "boot": BOOT, "seq": 1, "ts": 5, "bt": 5,
                              "r": [1, 0, 2.5]}
    obj.update(changes)
    return msgpack.packb({k: v for k, v in obj.items() if v is not _DROP})


_DROP = object()


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"\xc1garbage", "not-msgpack"),
        (msgpack.packb([1, 2]), "not-a-map"),
        (_raw(v=2), "bad-version"),
        (_raw(t="nope"), "bad-kind"),
        (_raw(gw="a/b"), "bad-gateway"),
        (_raw(gw="gw-2"), "gateway-mismatch"),
        (_raw(boot=""), "bad-boot"),
        (_raw(seq=-1), "bad-seq"),
        (_raw(seq="1"), "bad-type"),
        (_raw(bt=_DROP), "missing-key"),
        (_raw(r=[1, 0]), "bad-readings"),
        (_raw(r=[-1, 0, 1.0]), "bad-alias"),
        (_raw(r=[True, 0, 1.0]), "bad-alias"),
        (_raw(r=[1, 0.5, 1.0]), "bad-dt"),
        (_raw(r=[1, 0, [1]]), "bad-value"),
        (_raw(r=[1, 0, float("nan")]), "bad-value"),
        (_raw(q=[1]), "bad-type"),
        (_raw(q={0: [7, "x"]}), "bad-quality"),
        (_raw(tf=9), "bad-time-flags"),
    ],
)
def test_invalid_data_is_refused_with_the_wire_reason(payload: bytes, reason: str) -> None:
    with pytest.raises(WireError) as caught:
        _decoder().decode("gw-1", "data", payload)
    assert caught.value.reason == reason
    if reason not in ("gateway-mismatch",):
        with pytest.raises(WireError):
            decode(payload)


def test_unknown_boot_and_alias_are_parked_not_dead() -> None:
    decoder = _decoder()
    other_boot = decoder.decode("gw-1", "data", _raw(boot="ffffffffffffffff"))
    assert other_boot.kind is Kind.PARK
    assert "unknown boot" in other_boot.missing
    unknown_alias = decoder.decode("gw-1", "data", _raw(r=[1, 0, 2.5, 99, 0, 1]))
    assert unknown_alias.kind is Kind.PARK
    assert "99" in unknown_alias.missing
    with pytest.raises(WireError):  # parked only when otherwise valid
        decoder.decode("gw-1", "data", _raw(boot="ffffffffffffffff", r=[1, 0.5, 1]))


def test_health_goes_to_roadpulse_agent() -> None:
    result = _decoder().decode("gw-1", "health", _raw(t="health"))
    assert result.kind is Kind.LINES
    assert result.lines[0].startswith("roadpulse_agent,")
    assert result.health


def test_birth_topic_must_match() -> None:
    with pytest.raises(WireError) as caught:
        Decoder().decode("gw-2", "birth", encode_birth(BIRTH))
    assert caught.value.reason == "gateway-mismatch"


def test_old_boots_are_remembered_for_replays() -> None:
    decoder = Decoder(boots_per_gateway=2)
    boots = [f"{i:016x}" for i in range(3)]
    for boot in boots:
        decoder.learn(make_birth("gw-1", boot))
    assert not decoder.known("gw-1", boots[0])
    assert decoder.known("gw-1", boots[1])
    assert decoder.known("gw-1", boots[2])


# Both loops, the C one (collector/_fastlines.c) and the Python one it falls back to.
both_loops = pytest.mark.parametrize("native", [True, False], ids=["c-loop", "python-loop"])


def test_the_c_loop_is_built() -> None:
    """The test command installs a compiler; without the C loop the collector is slower, not wrong."""
    assert decode_module.NATIVE, "collector._fastlines is not built: install gcc and the Python headers, reinstall"


# Every metric type, scaled floats (aliases 8, 9), and a '%' in a tag and a field name (the
# templates are %-formats). Aliases 10 and 11 are unknown.
_MIXED = Birth("gw-1", BOOT, 0, 1_700_000_000_000, "0.1.0", "abcdefabcdef",
               [{"id": "d%1", "tags": {"site": "50%s"}}],
               [MetricDef(a, "d%1", "m", f"x{a}%d", "", "fibs"[a % 4], {"lane": str(a)}) for a in range(8)]
               + [MetricDef(8, "d%1", "m", "x8%d", "", "f", {"lane": "8"}, 2),
                  MetricDef(9, "d%1", "m", "x9%d", "", "f", {"lane": "9"}, 9)])
_MIXED_TABLE = build_table(_MIXED)
_ANY_VALUE = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1), st.floats(),
                       st.text(max_size=5), st.just([1]))


@both_loops
@settings(max_examples=400, deadline=None)
@given(items=st.lists(st.tuples(st.one_of(st.integers(0, 11), st.just(True)),
                                st.one_of(st.just(0), st.integers(-5, 5)), _ANY_VALUE),  # polls: dt 0
                      max_size=40),
       # msgpack map keys may be bools or floats: True == 1 == 1.0 for the dict lookups of the careful path
       qualities=st.dictionaries(st.one_of(st.integers(-1, 20), st.booleans(), st.integers(0, 20).map(float),
                                           st.just(-0.0), st.just(1.5)),
                                 st.sampled_from([[0, ""], [1, "x"], [2, ""], [2, "a\"b"], [3, "bad"], "junk"]),
                                 max_size=4),
       flags=st.sampled_from([0, 1, 2]))
def test_templates_write_what_the_careful_path_writes(items: list[tuple[int, int, object]],
                                                      qualities: dict[int, object], flags: int, native: bool) -> None:
    """The formatted-in-one-go path and the reading-by-reading path agree on every input:
    same text, same bad-value count, same WireError reason, same unknown alias."""
    flat = [x for item in items for x in item]

    def outcome(run: Callable[[], tuple[str, int]]) -> object:
        try:
            return run()
        except WireError as exc:
            return ("wire", exc.reason)
        except _Unknown as exc:
            return ("unknown", str(exc))

    fast = outcome(lambda: data_lines(list(flat), 1_700_000_000_000, qualities, flags, _MIXED_TABLE,
                                      compiled=templates(_MIXED_TABLE, native=native)))
    careful = outcome(lambda: _careful_lines(list(flat), 1_700_000_000_000, qualities, flags, _MIXED_TABLE))
    assert fast == careful


@both_loops
def test_percent_in_names_is_written_literally(native: bool) -> None:
    text, bad = data_lines([0, 0, 1.5, 1, 1, 7, 2, 1, True, 3, 1, "a%sb", 0, 1, None], 5, {}, 0, _MIXED_TABLE,
                           compiled=templates(_MIXED_TABLE, native=native))
    assert bad == 0
    assert text.split("\n") == [
        r"m,device=d%1,gateway=gw-1,lane=0,site=50%s x0%d=1.5 5",
        r"m,device=d%1,gateway=gw-1,lane=1,site=50%s x1%d=7i 6",
        r"m,device=d%1,gateway=gw-1,lane=2,site=50%s x2%d=true 7",
        r'm,device=d%1,gateway=gw-1,lane=3,site=50%s x3%d="a%sb" 8',
        r'm,device=d%1,gateway=gw-1,lane=0,site=50%s x0%d_err="nil" 9',
    ]


@both_loops
def test_scaled_ints_are_written_without_a_float(native: bool) -> None:
    flat = [8, 0, 557, 8, 1, -3, 8, 1, 5.571, 9, 1, 1, 8, 1, None, 8, 1, True]
    text, bad = data_lines(flat, 5, {}, 0, _MIXED_TABLE, compiled=templates(_MIXED_TABLE, native=native))
    assert bad == 1
    assert text.split("\n") == [
        r"m,device=d%1,gateway=gw-1,lane=8,site=50%s x8%d=557e-2 5",
        r"m,device=d%1,gateway=gw-1,lane=8,site=50%s x8%d=-3e-2 6",
        r"m,device=d%1,gateway=gw-1,lane=8,site=50%s x8%d=5.571 7",  # a float on the wire: as is
        r"m,device=d%1,gateway=gw-1,lane=9,site=50%s x9%d=1e-9 8",
        r'm,device=d%1,gateway=gw-1,lane=8,site=50%s x8%d_err="nil" 9',
        r'm,device=d%1,gateway=gw-1,lane=8,site=50%s x8%d_err="bad-type:bool" 10',
    ]


@both_loops
@settings(max_examples=200, deadline=None)
@given(polls=st.lists(st.tuples(st.integers(-3, 30_000), st.lists(
           st.tuples(st.integers(0, 9), st.one_of(st.integers(-999, 999), st.floats(-1e3, 1e3), st.none())),
           min_size=1, max_size=30)), min_size=1, max_size=4),
       qualities=st.dictionaries(st.integers(0, 40), st.sampled_from([[2, "timeout"], [1, "stale"]]), max_size=3))
def test_readings_of_one_poll_share_their_formatted_time(polls: list[tuple[int, list[tuple[int, object]]]],
                                                         qualities: dict[int, object], native: bool) -> None:
    """Messages of whole polls (long runs of dt = 0, the time joined in once per run) give the careful text."""
    flat: list[object] = []
    for dt, poll in polls:
        for k, (alias, value) in enumerate(poll):
            flat += [alias, dt if k == 0 else 0, value]
    fast = data_lines(list(flat), 1_700_000_000_000, qualities, 0, _MIXED_TABLE,
                      compiled=templates(_MIXED_TABLE, native=native))
    assert fast == _careful_lines(list(flat), 1_700_000_000_000, qualities, 0, _MIXED_TABLE)
