"""A state machine that crashes (reopens) the spool at random points.

Committed batches that were not acked must survive every crash, in order; acked batches
must never come back; staged (uncommitted) ones may be lost, because they were never acked
to the broker.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from collector.spool import Spool, SpoolFullError
from roadpulse.queue import Tx


class SpoolMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.directory = Path(tempfile.mkdtemp(prefix="spool-sm-"))
        self.spool = Spool(self.directory, 1 << 16)
        self.committed: dict[int, bytes] = {}  # id -> payload, durable and not acked
        self.staged: dict[int, bytes] = {}
        self.acked: set[int] = set()
        self.out: list[Tx] = []

    @rule(size=st.integers(1, 9000), weight=st.integers(1, 100))
    def append(self, size: int, weight: int) -> None:
        payload = bytes([size % 251]) * size
        try:
            ident = self.spool.append(payload, weight=weight)
        except SpoolFullError:
            return
        self.staged[ident] = payload

    @rule()
    def commit(self) -> None:
        committed = self.spool.commit().committed
        assert sorted(committed) == sorted(self.staged)
        self.committed.update(self.staged)
        self.staged.clear()

    @rule(n=st.integers(1, 4))
    def begin(self, n: int) -> None:
        tx = self.spool.begin(n)
        out_ids = {r.id for t in self.out for r in t.records}
        for record in tx.records:
            assert record.id in self.committed
            assert record.id not in out_ids
            assert record.payload == self.committed[record.id]
        if tx:
            self.out.append(tx)

    @rule(acked=st.booleans())
    def end(self, acked: bool) -> None:
        if not self.out:
            return
        tx = self.out.pop(0)
        self.spool.end(tx, acked=acked)
        if acked:
            for record in tx.records:
                self.acked.add(record.id)
                del self.committed[record.id]

    @rule()
    def crash(self) -> None:
        self.spool = Spool(self.directory, 1 << 16)
        self.staged.clear()  # never durable, never acked: the broker still has them
        self.out.clear()  # handed out but unsettled: back in line after a restart

    @invariant()
    def everything_committed_is_there_in_order(self) -> None:
        stats = self.spool.stats()
        assert stats.records == len(self.committed)

    def teardown(self) -> None:
        leftover = Spool(self.directory, 1 << 16).begin(10_000)
        ids = [r.id for r in leftover.records]
        assert ids == sorted(self.committed)
        assert not set(ids) & self.acked
        shutil.rmtree(self.directory, ignore_errors=True)


TestSpoolMachine = SpoolMachine.TestCase
TestSpoolMachine.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
