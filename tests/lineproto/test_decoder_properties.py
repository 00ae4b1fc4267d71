"""The collector's decoder under hostile births and data, judged with the strict parser.

Property (issue #16): for every message, through the C loop and the Python path alike, every
emitted line is strict line protocol, no line starts with `#`, each accepted reading is
exactly one field of a point (a line holds a series' readings of one time), under its own
gateway's tag and its own metric; or the message is
dead-lettered with a reason, or parked; and no exception escapes. The decoder is reached
only through tests/lineproto/adapter.py.

The findings of issue #16 (the injections of its item 1, the poison births of its item 2)
are each a test here; they failed on the code before the collector's strict producer.
"""

from __future__ import annotations

import random
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.lineproto.adapter import DeadLetter, Lines, Outcome, decode_for_test, topic_of
from tests.lineproto.hostile import T0, VICTIM, Case, hostile_case, judge

both_loops = pytest.mark.parametrize("native", [True, False], ids=["c-loop", "python-loop"])
# A case is drawn from a Random (the fuzz's generator): big by nature, and a draw is a few ms.
_BIG = [HealthCheck.large_base_example, HealthCheck.too_slow, HealthCheck.data_too_large]
# Shrinking a Random's draws takes minutes and gains little: a failing case is printed as drawn,
# with a blob that reproduces it. Derandomized: the same cases on every run (the fuzz is where
# new ones are found), so a rare finding fails every run, not one in twenty.
_NO_SHRINK = (Phase.explicit, Phase.reuse, Phase.generate)


def _case(metrics: list[list[Any]], readings: list[Any], *, devices: list[Any] | None = None,
          qualities: dict[int, Any] | None = None, gateway: str = "gw-1") -> Case:
    birth = {"v": 1, "t": "birth", "gw": gateway, "boot": "b1", "seq": 0, "ts": T0, "agent": "0.1.0",
             "cfg": "abcdefabcdef", "tf": 0, "devices": devices if devices is not None else [{"id": "d"}],
             "metrics": metrics}
    victim = {**birth, "gw": VICTIM, "devices": [{"id": "d"}], "metrics": [[0, "d", "m", "v", "", "f", {}]]}
    message: dict[str, Any] = {"v": 1, "t": "data", "gw": gateway, "boot": "b1", "seq": 1, "ts": T0, "bt": T0,
                               "r": readings}
    if qualities:
        message["q"] = qualities
    births = [(topic_of(VICTIM, "birth"), msgpack.packb(victim)), (topic_of(gateway, "birth"), msgpack.packb(birth))]
    rows = {row[0]: row for row in metrics}
    return Case(gateway, topic_of(gateway, "data"), msgpack.packb(message), births,
                [(VICTIM, "b1", {}), (gateway, "b1", rows)], message)


def _check(case: Case, native: bool) -> Outcome:
    outcome = decode_for_test(case.topic, case.payload, case.births, native=native)
    assert judge(case, outcome) == [], (outcome, case.message)
    return outcome


@both_loops
def test_ordinary_traffic_is_one_field_per_reading(native: bool) -> None:
    """The judge accepts what is right (and so the properties below are not vacuous)."""
    case = _case([[0, "d", "traffic", "speed", "km/h", "f", {"lane": "1"}],
                  [1, "d", "traffic", "volume", "veh", "i", {"lane": "1"}],
                  [2, "d", "traffic", "state", "", "s", {}]],
                 [0, 0, 87.5, 1, 0, 14, 2, 0, 'jam, "slow"', 0, 1000, None], qualities={3: [2, "timeout"]})
    outcome = _check(case, native)
    assert isinstance(outcome.message, Lines)
    assert outcome.message.readings == 4


def test_the_judge_sees_an_injection_and_a_comment() -> None:
    case = _case([[0, "d", "m", "f", "", "f", {}]], [0, 0, 1.5])
    injected = Lines(f"m,device=d,gateway=gw-1 f=1.5 {T0}\nm,device=d,gateway={VICTIM} v=666 {T0}", 1, "gw-1")
    assert judge(case, Outcome(injected, [None, None])) == ["injection"]
    commented = Lines(f"#m,device=d,gateway=gw-1 f=1.5 {T0}", 1, "gw-1")
    assert judge(case, Outcome(commented, [None, None])) == ["comment-line", "invalid-line", "missing-points"]
    wrong = Lines(f"m,device=d,gateway=gw-1 g=1.5 {T0}", 1, "gw-1")
    assert judge(case, Outcome(wrong, [None, None])) == ["wrong-point"]
    assert judge(case, Outcome(DeadLetter(""), [None, None])) == ["no-reason"]


def test_the_judge_counts_the_readings_of_a_line() -> None:
    """A line holds the readings of one series and time: each field not ending in `_q` is one."""
    case = _case([[0, "d", "m", "f", "", "f", {}], [1, "d", "m", "g", "", "f", {}]], [0, 0, 1.5, 1, 0, None])
    series = "m,device=d,gateway=gw-1"
    right = Lines(f'{series} f=1.5,f_q="bad:x",g_err="nil",tf_q=1i {T0}', 2, "gw-1")
    assert judge(case, Outcome(right, [None, None])) == []
    extra = Lines(f"{series} f=1.5,g=2.5,h=1 {T0}", 2, "gw-1")  # a field more than readings: injected
    assert judge(case, Outcome(extra, [None, None])) == ["injection"]
    assert judge(case, Outcome(Lines(f"{series} f=1.5 {T0}", 2, "gw-1"), [None, None])) == ["missing-points"]
    swapped = Lines(f"{series} f=1.5,f_err=\"x\" {T0}", 2, "gw-1")  # f twice, g never
    assert judge(case, Outcome(swapped, [None, None])) == ["wrong-point"]
    lone_quality = Lines(f'{series} f=1.5,g_err="nil",g_q="bad:x" {T0}', 2, "gw-1")
    assert judge(case, Outcome(lone_quality, [None, None])) == ["wrong-point"]


_INJECT = f"\nm,device=d,gateway={VICTIM} v=666 {T0}\n"

# The findings of issue #16, item 1 and 2: (metrics, readings, devices, qualities).
Finding = tuple[list[Any], list[Any], list[Any] | None, dict[int, Any] | None]
FINDINGS: dict[str, Finding] = {
    "field-key-ending-in-backslash": ([[0, "d", "m", "x\\", "", "s", {}]], [0, 0, f'"{_INJECT}"'], None, None),
    "measurement-and-quality-newline": ([[0, "d", 'm\\ ="', "f", "", "f", {}]], [0, 0, 1.5], None,
                                        {0: [1, _INJECT]}),
    # a field key of two backslashes: the scanner reads `a\\="a b,c=d"` as a string field, the engine
    # as a key up to `c` with a boolean `d"`: influxd answers 500, which a writer retries forever
    "field-key-with-an-escaped-backslash": ([[0, "d", "m", "a\\\\", "", "s", {}]], [0, 0, "a b,c=d"], None, None),
    "tag-key-ending-in-backslash": ([[0, "d", "m", "f", "", "f", {"k\\": "v"}]], [0, 0, 1.5], None, None),
    "measurement-ending-in-backslash": ([[0, "d", "m\\", "f", "", "f", {}]], [0, 0, 1.5], None, None),
    "control-character-in-a-tag": ([[0, "d", "m", "f", "", "f", {"k": "a\nb"}]], [0, 0, 1.5], None, None),
    "comment-measurement": ([[0, "d", "#m", "f", "", "f", {}]], [0, 0, 1.5], None, None),
    "time-field": ([[0, "d", "m", "time", "", "f", {}]], [0, 0, 1.5], None, None),
    "time-tag": ([[0, "d", "m", "f", "", "f", {"time": "1"}]], [0, 0, 1.5], None, None),
    "string-value-with-newline": ([[0, "d", "m", "s", "", "s", {}]], [0, 0, "a\nb"], None, None),
    "device-tags-not-a-map": ([[0, "d", "m", "f", "", "f", {}]], [0, 0, 1.5], [{"id": "d", "tags": "abc"}], None),
    "unhashable-device-id": ([[0, "d", "m", "f", "", "f", {}]], [0, 0, 1.5], [{"id": ["d"]}], None),
}


@both_loops
@pytest.mark.parametrize("finding", sorted(FINDINGS))
def test_findings_of_issue_16(finding: str, native: bool) -> None:
    metrics, readings, devices, qualities = FINDINGS[finding]
    _check(_case(metrics, readings, devices=devices, qualities=qualities), native)


@both_loops
@pytest.mark.parametrize("value", [2**64 - 1, -1e19, 1e308], ids=["uint64", "float-below-int64", "huge-float"])
def test_an_integer_metric_value_beyond_int64(value: object, native: bool) -> None:
    """msgpack carries uint64 and floats with integral values: written as `<n>i` beyond int64,
    influxd refuses the line (the reading is lost); it must be a bad value (`_err`) instead."""
    _check(_case([[0, "d", "m", "n", "", "i", {}]], [0, 0, value]), native)


@both_loops
@pytest.mark.parametrize("dt", [2**63 - 1 - T0, 9_223_372_036_855 - T0, -(9_223_372_036_855 + T0)],
                         ids=["int64-edge", "year-2262", "year-1677"])
def test_a_time_beyond_what_influxdb_holds_is_a_dead_letter(dt: int, native: bool) -> None:
    """InfluxDB keeps int64 nanoseconds: a reading timed outside 1677-2262 would make a line it
    refuses (the reading lost); the message is dead-lettered as `bad-time` instead."""
    outcome = _check(_case([[0, "d", "m", "f", "", "f", {}]], [0, dt, 1.5]), native)
    assert outcome.message == DeadLetter("bad-time")


@both_loops
def test_a_gateway_id_with_a_trailing_newline(native: bool) -> None:
    """`re.match` with `$` lets "g1\\n" through as a topic level and a payload `gw`."""
    case = _case([[0, "d", "m", "f", "", "f", {}]], [0, 0, 1.5], gateway="g1\n")
    _check(case, native)


@both_loops
@settings(max_examples=60, deadline=None, suppress_health_check=_BIG, phases=_NO_SHRINK,
          print_blob=True, derandomize=True)
@given(rng=st.randoms(use_true_random=False))
def test_hostile_births_and_data(rng: random.Random, native: bool) -> None:
    _check(hostile_case(rng), native)


@settings(max_examples=100, deadline=None, suppress_health_check=_BIG, phases=_NO_SHRINK,
          print_blob=True, derandomize=True)
@given(rng=st.randoms(use_true_random=False))
def test_both_loops_agree_on_hostile_input(rng: random.Random) -> None:
    """Whatever the outcome, right or wrong, the C loop and the Python path give the same one."""
    case = hostile_case(rng)

    def run(native: bool) -> object:
        try:
            return decode_for_test(case.topic, case.payload, case.births, native=native)
        except Exception as exc:  # compared, not hidden: the properties above count them
            return type(exc).__name__

    assert run(True) == run(False)
