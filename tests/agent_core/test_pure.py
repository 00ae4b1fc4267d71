"""Table tests of the pure pieces: batch sealing, sizes, clock judgement, replay rate, birth."""

from __future__ import annotations

import pytest

from agent.clock import BUILD_DATE_MS, ClockJudge, corrected, split_at_jump
from agent.publisher import TokenBucket
from agent.queue.batcher import Batcher, int_size, value_size
from roadpulse.wire import DataBatch, Reading, TimeFlag, encode_data

T = BUILD_DATE_MS + 86_400_000


@pytest.mark.parametrize(
    ("value", "size"),
    [(0, 1), (127, 1), (128, 2), (-32, 1), (-33, 2), (255, 2), (256, 3), (65535, 3), (65536, 5),
     (-129, 3), (2**32, 9), (None, 1), (True, 1), (0.5, 5), (0.1, 9), ("ok", 3), (float("nan"), 9)],
)
def test_value_sizes_match_msgpack(value: object, size: int) -> None:
    assert (int_size(value) if isinstance(value, int) and not isinstance(value, bool) else value_size(value)) == size


def test_size_estimate_is_an_upper_bound_of_the_encoding() -> None:
    readings = [Reading(i % 40, T + i // 7, [1, 300, 0.5, 0.1, -5, None, "x"][i % 7]) for i in range(500)]
    batcher = Batcher(10_000, 1024, 60.0)
    sealed = batcher.add(readings, TimeFlag.NONE, 0, 0.0)
    assert sealed, "the byte limit sealed at least one batch"
    for batch in sealed:
        assert len(encode_data(DataBatch("gw-test", "0" * 16, 10**6, T, batch.readings))) <= 1024


@pytest.mark.parametrize(
    ("name", "adds", "limits", "sealed_sizes", "open_after"),
    [
        ("count limit", [(5, TimeFlag.NONE, 0, 0.0)], (2, 10.0), [2, 2], 1),
        ("age limit", [(1, TimeFlag.NONE, 0, 0.0), (1, TimeFlag.NONE, 0, 2.0)], (100, 1.0), [2], 0),
        ("flags change", [(2, TimeFlag.NONE, 0, 0.0), (1, TimeFlag.UNSYNCED, 0, 0.1)], (100, 10.0), [2], 1),
        ("epoch change", [(2, TimeFlag.NONE, 0, 0.0), (1, TimeFlag.NONE, 1, 0.1)], (100, 10.0), [2], 1),
        ("nothing due", [(3, TimeFlag.NONE, 0, 0.0)], (100, 10.0), [], 3),
    ],
)
def test_batcher(name: str, adds: list[tuple[int, TimeFlag, int, float]], limits: tuple[int, float],
                 sealed_sizes: list[int], open_after: int) -> None:
    batcher = Batcher(limits[0], 16 * 1024, limits[1])
    sizes = []
    for count, flags, epoch, now in adds:
        sizes += [len(s.readings) for s in batcher.add([Reading(1, T, 1)] * count, flags, epoch, now)]
    assert sizes == sealed_sizes, name
    assert batcher.open_count == open_after, name


@pytest.mark.parametrize(
    ("name", "observations", "flags_for", "expected_flags", "jumps"),
    [
        ("good clock", [(T, 1000), (T + 1000, 2000)], T + 1000, TimeFlag.NONE, 0),
        ("1970 after boot", [(5_000, 5_000)], 5_000, TimeFlag.UNSYNCED | TimeFlag.SUSPECT, 0),
        ("ntp step forward", [(5_000, 5_000), (T, 6_000)], T, TimeFlag.NONE, 1),
        ("slow slew is no jump", [(T, 0), (T + 10_500, 10_000)], T + 10_500, TimeFlag.NONE, 0),
        ("step back", [(T + 60_000, 0), (T, 1_000)], T, TimeFlag.NONE, 1),
        ("future reading", [(T, 0)], T + 2 * 3600 * 1000, TimeFlag.SUSPECT, 0),
    ],
)
def test_clock_judge(name: str, observations: list[tuple[int, int]], flags_for: int,
                     expected_flags: TimeFlag, jumps: int) -> None:
    judge = ClockJudge()
    now = 0
    for wall, mono in observations:
        judge.observe(wall, mono)
        now = wall
    assert judge.flags_for(flags_for, now) == expected_flags, name
    assert judge.jumps == jumps, name


def test_kernel_unsynced_flags_readings() -> None:
    judge = ClockJudge()
    judge.observe(T, 0, kernel_synced=False)
    assert judge.flags_for(T, T) == TimeFlag.UNSYNCED


def test_corrections_compose_over_two_steps() -> None:
    judge = ClockJudge()
    judge.observe(5_000, 5_000)
    first = judge.observe(T, 6_000)
    second = judge.observe(T + 1_000 + 30_000, 7_000)
    assert first is not None
    assert second is not None
    # Epoch 0 (1970, offset 0) was T - 6 s off; epoch 1 then 30 s more.
    assert judge.correction(0) == (T - 6_000) + 30_000
    assert judge.correction(1) == 30_000
    assert judge.correction(2) is None


def test_corrected_batch_is_shifted_and_flagged() -> None:
    judge = ClockJudge()
    batch = DataBatch("gw", "0" * 16, 3, 5_000, [Reading(1, 5_000, 1.5), Reading(2, 5_010, 2)],
                      TimeFlag.UNSYNCED | TimeFlag.SUSPECT)
    fixed = corrected(batch, T - 5_000, judge, T + 100)
    assert [r.ts_ms for r in fixed.readings] == [T, T + 10]
    assert fixed.time_flags == TimeFlag.CORRECTED
    assert fixed.seq == 3


def test_split_at_jump() -> None:
    judge = ClockJudge()
    judge.observe(5_000, 5_000)
    jump = judge.observe(T, 6_000)
    assert jump is not None
    before, after = split_at_jump([Reading(1, 5_900, 1), Reading(1, T - 5, 2)], jump, T)
    assert [r.value for r in before] == [1]
    assert [r.value for r in after] == [2]


def test_token_bucket_limits_replay_rate() -> None:
    bucket = TokenBucket(rate=10.0, burst=2.0)
    taken = sum(bucket.take(t / 1000) for t in range(0, 1000, 1))
    assert 11 <= taken <= 12  # the burst of 2, then 10 per second
    slow = TokenBucket(rate=10.0, burst=1.0)
    assert slow.take(0.0)
    assert not slow.take(0.0)
    assert slow.wait_time(0.0) == pytest.approx(0.1)
