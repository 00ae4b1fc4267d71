"""A stateful property test: the disk queue against a model, across crashes, torn writes and reopens.

The model says what a crash may do: staged records and unsettled acks may be lost; a commit
torn by a power cut may or may not have landed; a committed record is never lost and an
acknowledged one whose ack was committed never comes back.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from agent.queue import SegmentQueue, Tx


class QueueAcrossCrashes(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="rpq-"))
        self.queue = self._open()
        self.durable: dict[int, bytes] = {}  # committed, not acknowledged
        self.staged: dict[int, bytes] = {}
        self.acked_unsettled: dict[int, bytes] = {}  # acked, ack not committed yet: may come back
        self.maybe: dict[int, bytes] = {}  # in a torn commit: may or may not have landed
        self.out: list[Tx] = []

    def _open(self) -> SegmentQueue:
        return SegmentQueue.open(self.dir, max_bytes=1 << 24, segment_bytes=300)

    def teardown(self) -> None:
        self.queue.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    @rule(payload=st.binary(min_size=0, max_size=60), weight=st.integers(0, 50))
    def append(self, payload: bytes, weight: int) -> None:
        record_id = self.queue.append(payload, weight=weight)
        self.staged[record_id] = payload

    @rule(settle=st.booleans())
    def commit(self, settle: bool) -> None:
        result = self.queue.commit(settle=settle)
        assert sorted(result.committed) == sorted(self.staged)
        if self.staged or settle:
            self.acked_unsettled.clear()
        self.durable.update(self.staged)
        self.staged.clear()

    @rule(n=st.integers(1, 5), live=st.booleans())
    def begin(self, n: int, live: bool) -> None:
        start = max(self.durable, default=0) if live else 0
        tx = self.queue.begin(n, start=start)
        out_ids = {r.id for t in self.out for r in t.records}
        for record in tx.records:
            assert record.id in self.durable
            assert record.id not in out_ids
            assert record.payload == self.durable[record.id]
        if tx:
            self.out.append(tx)

    @precondition(lambda self: bool(self.out))
    @rule(index=st.integers(0, 100), acked=st.booleans())
    def end(self, index: int, acked: bool) -> None:
        tx = self.out.pop(index % len(self.out))
        self.queue.end(tx, acked=acked)
        if acked:
            for record in tx.records:
                self.acked_unsettled[record.id] = self.durable.pop(record.id)

    @rule(torn=st.integers(0, 400))
    def crash(self, torn: int) -> None:
        """SIGKILL or power cut, optionally in the middle of writing the next commit."""
        if torn and self.queue._staged:
            frames = b"".join(s.frame for s in self.queue._staged)
            cut = frames[: torn % len(frames)]
            with self.queue._segments[-1].path.open("ab") as f:
                f.write(cut)
            self.maybe.update(self.staged)
        self.queue.close()
        self.queue = self._open()
        self.out.clear()
        found = self.queue.begin(10**9)
        self.queue.end(found, acked=False)
        seen = {r.id: r.payload for r in found.records}
        missing = set(self.durable) - set(seen)
        assert not missing, f"committed records lost: {sorted(missing)}"
        allowed = {**self.durable, **self.acked_unsettled, **self.maybe}
        for record_id, payload in seen.items():
            assert record_id in allowed, f"record {record_id} came back from nowhere"
            assert allowed[record_id] == payload
        self.durable = seen
        self.staged.clear()
        self.acked_unsettled.clear()
        self.maybe.clear()

    @invariant()
    def weight_matches(self) -> None:
        stats = self.queue.stats()
        assert stats.records == len(self.durable)
        assert stats.evicted_records == 0


QueueAcrossCrashes.TestCase.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)
TestQueueAcrossCrashes = QueueAcrossCrashes.TestCase


class EvictionAccounting(RuleBasedStateMachine):
    """A queue too small for its traffic: every committed reading is queued, acked or evicted, exactly."""

    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="rpq-"))
        self.queue = SegmentQueue.open(self.dir, max_bytes=2048, segment_bytes=256)
        self.committed_weight = 0
        self.staged_weight = 0
        self.acked_weight = 0
        self.out: list[Tx] = []

    def teardown(self) -> None:
        self.queue.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    @rule(size=st.integers(0, 200), weight=st.integers(1, 9))
    def append(self, size: int, weight: int) -> None:
        self.queue.append(b"p" * size, weight=weight)
        self.staged_weight += weight

    @rule()
    def commit(self) -> None:
        self.queue.commit()
        self.committed_weight += self.staged_weight
        self.staged_weight = 0

    @rule(n=st.integers(1, 3))
    def begin(self, n: int) -> None:
        tx = self.queue.begin(n)
        if tx:
            self.out.append(tx)

    @precondition(lambda self: bool(self.out))
    @rule(acked=st.booleans())
    def end(self, acked: bool) -> None:
        tx = self.out.pop(0)
        self.queue.end(tx, acked=acked)
        if acked:
            self.acked_weight += tx.weight

    @invariant()
    def every_reading_is_accounted_for(self) -> None:
        stats = self.queue.stats()
        assert stats.bytes <= 2048
        # Out and evicted records count as evicted until acknowledged; then they count as acked.
        out_evicted = sum(r.weight for t in self.out for r in t.records if r.id not in self.queue._meta)
        assert stats.weight + stats.evicted_weight + self.acked_weight == self.committed_weight
        assert out_evicted <= stats.evicted_weight


EvictionAccounting.TestCase.settings = settings(max_examples=60, stateful_step_count=60, deadline=None)
TestEvictionAccounting = EvictionAccounting.TestCase
