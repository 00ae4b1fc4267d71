"""An in-memory queue with the same interface and eviction accounting as the disk queue.

Used where durability is not wanted (tests, a collector without a spool directory) and to
run the shared interface tests against a second implementation.
"""

from __future__ import annotations

import bisect
from collections import OrderedDict

from agent.queue.disk import EVICTED_REMEMBERED
from roadpulse.queue import CommitResult, QueueStats, Record, RecordTooLargeError, Tx


class MemoryQueue:
    def __init__(self, *, max_bytes: int) -> None:
        self._max_bytes = max_bytes
        self._records: OrderedDict[int, Record] = OrderedDict()
        self._pending: list[int] = []
        self._out: set[int] = set()
        self._evicted_out: dict[int, Record] = {}
        self._staged: list[Record] = []
        self._bytes = 0
        self._next_id = 0
        self._stats = QueueStats()

    @property
    def next_id(self) -> int:
        return self._next_id

    def append(self, payload: bytes, *, weight: int = 1, ts_ms: int = 0) -> int:
        if len(payload) > self._max_bytes:
            raise RecordTooLargeError(f"record of {len(payload)} bytes exceeds the queue's bound")
        self._staged.append(Record(self._next_id, payload, weight, ts_ms))
        self._next_id += 1
        return self._next_id - 1

    def commit(self, *, settle: bool = False) -> CommitResult:
        committed = []
        for record in self._staged:
            while self._bytes + len(record.payload) > self._max_bytes:
                self._evict_oldest()
            self._records[record.id] = record
            self._pending.append(record.id)
            self._bytes += len(record.payload)
            committed.append(record.id)
        self._staged = []
        if committed:
            self._stats.commits += 1
        return CommitResult(committed=committed)

    def _evict_oldest(self) -> None:
        record_id, record = self._records.popitem(last=False)
        self._bytes -= len(record.payload)
        self._stats.evicted_records += 1
        self._stats.evicted_weight += record.weight
        if record_id in self._out:
            self._out.discard(record_id)
        else:
            del self._pending[bisect.bisect_left(self._pending, record_id)]
        self._evicted_out[record_id] = record  # a late acknowledgement still makes it no loss
        if len(self._evicted_out) > EVICTED_REMEMBERED:
            del self._evicted_out[next(iter(self._evicted_out))]

    def begin(self, n: int, *, start: int = 0, stop: int | None = None) -> Tx:
        lo = bisect.bisect_left(self._pending, start)
        hi = lo
        while hi < len(self._pending) and hi - lo < n and (stop is None or self._pending[hi] < stop):
            hi += 1
        ids = self._pending[lo:hi]
        del self._pending[lo:hi]
        self._out.update(ids)
        return Tx([self._records[i] for i in ids])

    def end(self, tx: Tx, *, acked: bool) -> None:
        for record in tx.records:
            if record.id in self._out:
                self._out.discard(record.id)
                if acked:
                    del self._records[record.id]
                    self._bytes -= len(record.payload)
                else:
                    bisect.insort(self._pending, record.id)
            elif record.id in self._evicted_out and acked:
                # Not acknowledged, it stays remembered: a late acknowledgement may still come.
                del self._evicted_out[record.id]
                self._stats.evicted_records -= 1
                self._stats.evicted_weight -= record.weight

    def stats(self) -> QueueStats:
        s = self._stats
        first = next(iter(self._records.values()), None)
        return QueueStats(
            records=len(self._records), weight=sum(r.weight for r in self._records.values()),
            bytes=self._bytes, staged_records=len(self._staged),
            oldest_ts_ms=first.ts_ms if first else None, oldest_id=first.id if first else None,
            evicted_records=s.evicted_records, evicted_weight=s.evicted_weight, commits=s.commits,
        )

    def close(self) -> None:
        self._staged = []
