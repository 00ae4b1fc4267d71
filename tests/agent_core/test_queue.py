"""The queue interface, run against every implementation, plus what only the disk queue promises."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from agent.queue import DurableQueue, MemoryQueue, SegmentQueue, StorageError
from agent.queue.framing import HEADER_SIZE

Factory = Callable[[int], DurableQueue]


@pytest.fixture(params=["disk", "memory"])
def make_queue(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Factory]:
    opened: list[DurableQueue] = []

    def make(max_bytes: int = 1 << 20) -> DurableQueue:
        queue: DurableQueue
        if request.param == "disk":
            queue = SegmentQueue.open(tmp_path / "q", max_bytes=max_bytes, segment_bytes=1024)
        else:
            queue = MemoryQueue(max_bytes=max_bytes)
        opened.append(queue)
        return queue

    yield make
    for queue in opened:
        queue.close()


def _fill(queue: DurableQueue, n: int, size: int = 10) -> list[int]:
    ids = [queue.append(bytes([i % 256]) * size, weight=i + 1, ts_ms=i) for i in range(n)]
    queue.commit()
    return ids


def test_only_committed_records_are_handed_out(make_queue: Factory) -> None:
    queue = make_queue()
    queue.append(b"a")
    assert not queue.begin(10)
    assert queue.commit().committed == [0]
    tx = queue.begin(10)
    assert [r.payload for r in tx.records] == [b"a"]


def test_acked_records_are_gone_and_nacked_come_back_oldest_first(make_queue: Factory) -> None:
    queue = make_queue()
    _fill(queue, 5)
    first = queue.begin(2)
    second = queue.begin(2)
    assert [r.id for r in first.records] == [0, 1]
    assert [r.id for r in second.records] == [2, 3]
    queue.end(second, acked=True)
    queue.end(first, acked=False)
    assert [r.id for r in queue.begin(10).records] == [0, 1, 4]
    assert queue.stats().records == 3


def test_begin_window_splits_live_from_backlog(make_queue: Factory) -> None:
    queue = make_queue()
    _fill(queue, 6)
    assert [r.id for r in queue.begin(10, start=4).records] == [4, 5]
    assert [r.id for r in queue.begin(10, stop=2).records] == [0, 1]
    assert [r.id for r in queue.begin(10).records] == [2, 3]


def test_eviction_is_exact_and_takes_the_oldest(make_queue: Factory) -> None:
    queue = make_queue(8 * 1024)
    total = 0
    for i in range(400):
        queue.append(b"x" * 100, weight=3, ts_ms=i)
        total += 3
        queue.commit()
    stats = queue.stats()
    assert stats.evicted_weight > 0
    assert stats.evicted_weight + stats.weight == total
    assert stats.evicted_records * 3 == stats.evicted_weight
    remaining = queue.begin(1000).records
    assert remaining[-1].id == 399
    assert [r.id for r in remaining] == list(range(400 - len(remaining), 400))
    assert stats.bytes <= 8 * 1024


def test_evicted_while_out_then_acked_is_not_a_loss(make_queue: Factory) -> None:
    queue = make_queue(8 * 1024)
    queue.append(b"y" * 100, weight=5)
    queue.commit()
    tx = queue.begin(1)
    for _ in range(200):
        queue.append(b"x" * 100, weight=1)
        queue.commit()
    evicted = queue.stats().evicted_weight
    assert evicted >= 5
    queue.end(tx, acked=True)
    assert queue.stats().evicted_weight == evicted - 5


# ---- disk only ---------------------------------------------------------------------------------


def _open(path: Path, **kw: int) -> SegmentQueue:
    return SegmentQueue.open(path, max_bytes=kw.pop("max_bytes", 1 << 20), segment_bytes=kw.pop("seg", 1024))


def test_reopen_keeps_committed_and_forgets_staged_and_acked(tmp_path: Path) -> None:
    queue = _open(tmp_path)
    _fill(queue, 50)
    tx = queue.begin(10)
    queue.end(tx, acked=True)
    queue.commit(settle=True)  # the ACK frame
    queue.append(b"staged, lost in the crash")
    queue.close()
    again = _open(tmp_path)
    records = again.begin(1000).records
    assert [r.id for r in records] == list(range(10, 50))
    assert records[0].payload == bytes([10]) * 10
    assert records[0].weight == 11
    assert records[0].ts_ms == 10
    # The staged record never reached the disk, so nobody can have seen its id: it is given again.
    assert again.next_id == 50
    again.close()


def test_ids_survive_when_every_segment_was_settled(tmp_path: Path) -> None:
    queue = _open(tmp_path)
    _fill(queue, 200)
    queue.end(queue.begin(1000), acked=True)
    queue.commit(settle=True)
    queue.close()
    again = _open(tmp_path)
    assert again.next_id == 200
    assert again.stats().records == 0
    assert len(list(tmp_path.glob("*.seg"))) <= 2
    again.close()


def test_torn_tail_is_cut_and_counted(tmp_path: Path) -> None:
    queue = _open(tmp_path)
    _fill(queue, 5)
    queue.close()
    last = sorted(tmp_path.glob("*.seg"))[-1]
    with last.open("ab") as f:
        f.write(b"\x50\x52\x01\x00\x40\x00\x00\x00partial")
    again = _open(tmp_path)
    assert again.stats().damaged_regions == 1
    assert [r.id for r in again.begin(10).records] == [0, 1, 2, 3, 4]
    again.close()


def test_flipped_bit_loses_one_record_only(tmp_path: Path) -> None:
    queue = _open(tmp_path)
    _fill(queue, 5, size=50)
    queue.close()
    seg = sorted(tmp_path.glob("*.seg"))[0]
    raw = bytearray(seg.read_bytes())
    start = HEADER_SIZE  # after the START frame
    raw[start + (HEADER_SIZE + 50) * 2 + HEADER_SIZE + 7] ^= 0x10  # payload of record 2
    seg.write_bytes(bytes(raw))
    again = _open(tmp_path)
    assert [r.id for r in again.begin(10).records] == [0, 1, 3, 4]
    assert again.stats().damaged_regions == 1
    again.close()


def test_one_write_and_one_fsync_per_commit(tmp_path: Path) -> None:
    queue = _open(tmp_path, seg=1 << 20)
    before = queue.stats()
    for _ in range(100):
        queue.append(b"r" * 100, weight=50)
    queue.commit()
    after = queue.stats()
    assert after.fsyncs - before.fsyncs == 1
    assert after.bytes_written - before.bytes_written == 100 * (100 + HEADER_SIZE)
    queue.close()


def test_disk_full_keeps_staged_records_and_recovers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    queue = _open(tmp_path, seg=1 << 20)
    _fill(queue, 3)
    real_write = os.write

    def full(fd: int, data: bytes) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    queue.append(b"waiting", weight=7)
    monkeypatch.setattr(os, "write", full)
    with pytest.raises(StorageError) as err:
        queue.commit()
    assert err.value.reason == "ENOSPC"
    assert err.value.dropped == []
    assert queue.stats().storage_errors == 1
    monkeypatch.setattr(os, "write", real_write)
    assert queue.commit().committed == [3]
    assert [r.id for r in queue.begin(10).records] == [0, 1, 2, 3]
    queue.close()
    again = _open(tmp_path, seg=1 << 20)
    assert again.stats().weight == 1 + 2 + 3 + 7
    again.close()


def test_disk_full_evicts_our_oldest_segment_to_make_room(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    queue = _open(tmp_path, seg=512)
    for _ in range(30):
        _fill(queue, 1, size=50)
    segments = len(list(tmp_path.glob("*.seg")))
    assert segments > 2
    calls = {"n": 0}
    real_write = os.write

    def full_once(fd: int, data: bytes) -> int:
        calls["n"] += 1
        if calls["n"] == 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", full_once)
    queue.append(b"new", weight=1)
    assert queue.commit().committed == [30]
    stats = queue.stats()
    assert stats.evicted_records > 0
    assert stats.evicted_records + stats.records == 31
    assert stats.evicted_weight + stats.weight == 31
    queue.close()


def test_disk_full_at_start_is_not_fatal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    queue = _open(tmp_path, seg=1 << 20)
    _fill(queue, 3)
    queue.close()
    real_write = os.write
    failures = {"left": 2}

    def full_twice(fd: int, data: bytes) -> int:
        if failures["left"]:
            failures["left"] -= 1
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", full_twice)
    again = _open(tmp_path, seg=1 << 20)  # the new segment's START frame fails
    assert again.stats().records == 3
    again.append(b"new", weight=1)
    # The second failure evicts the old segment (3 records) to make room, then the write succeeds.
    assert again.commit().committed == [3]
    stats = again.stats()
    assert (stats.evicted_records, stats.records) == (3, 1)
    again.close()


def test_stats_name_the_oldest_unacknowledged_record(make_queue: Factory) -> None:
    queue = make_queue()
    assert queue.stats().oldest_id is None
    _fill(queue, 4)
    assert queue.stats().oldest_id == 0
    out = queue.begin(1)
    # Handed out but not acknowledged: still the oldest.
    assert queue.stats().oldest_id == 0
    queue.end(out, acked=True)
    assert queue.stats().oldest_id == 1
    queue.end(queue.begin(10), acked=True)
    assert queue.stats().oldest_id is None
