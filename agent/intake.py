"""Readings in: the clock's judgement, batching by time flags, staging in the outbox, group commit.

Readings count as taken once their commit is durable; until then they are staged, and
a disk that refuses writes for too long makes the queue give some up (counted as dropped,
never as taken).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from agent.clock import ClockJudge, kernel_clock_synchronised, split_at_jump
from agent.outbox import Outbox
from agent.queue import StorageError
from agent.queue.batcher import Batcher, Sealed
from agent.stats import AgentStats
from roadpulse.wire import Reading, TimeFlag

log = logging.getLogger(__name__)
OnTaken = Callable[[list[Reading]], None]


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


def _mono_ms() -> int:
    return time.monotonic_ns() // 1_000_000


class Intake:
    def __init__(self, outbox: Outbox, batcher: Batcher, judge: ClockJudge, stats: AgentStats, *,
                 ask_kernel: bool, on_taken: OnTaken | None = None) -> None:
        self._outbox = outbox
        self._batcher = batcher
        self._judge = judge
        self._stats = stats
        self._ask_kernel = ask_kernel
        self._on_taken = on_taken
        # Readings staged in the queue, reported to on_taken once their commit is durable.
        self._staged: dict[int, list[Reading]] = {}
        self._storage_failing = False

    def take(self, readings: list[Reading]) -> None:
        """Stage readings from a poll; they count as taken once committed to the queue."""
        now = _wall_ms()
        was_unsynced = self._judge.unsynced
        kernel = kernel_clock_synchronised() if self._ask_kernel else None
        jump = self._judge.observe(now, _mono_ms(), kernel)
        if jump is not None:
            log.warning("wall clock stepped", extra={"event": "clock_step", "delta_ms": jump.delta_ms})
            before, readings = split_at_jump(readings, jump, now)
            self.seal_all()
            base = TimeFlag.UNSYNCED if was_unsynced else TimeFlag.NONE
            self._stage_groups(before, jump.old_epoch, now - jump.delta_ms, base)
            self.seal_all()
        base = TimeFlag.UNSYNCED if self._judge.unsynced else TimeFlag.NONE
        self._stage_groups(readings, self._judge.epoch, now, base)

    def _stage_groups(self, readings: list[Reading], epoch: int, now_ms: int, base: TimeFlag) -> None:
        groups: dict[TimeFlag, list[Reading]] = {}
        for reading in readings:
            flags = base | (TimeFlag.SUSPECT if self._judge.implausible(reading.ts_ms, now_ms) else 0)
            groups.setdefault(flags, []).append(reading)
        for flags, group in groups.items():
            for sealed in self._batcher.add(group, flags, epoch, time.monotonic()):
                self._store(sealed)

    def _store(self, sealed: Sealed) -> None:
        self._staged[self._outbox.store(sealed)] = sealed.readings

    def seal_all(self) -> None:
        sealed = self._batcher.seal()
        if sealed is not None:
            self._store(sealed)

    def commit(self) -> bool:
        """Seal batches that reached their age, write and fsync the queue once, report what was taken.

        True when records became durable (the publisher has something new to send).
        """
        sealed = self._batcher.seal_due(time.monotonic())
        if sealed is not None:
            self._store(sealed)
        try:
            result = self._outbox.commit()
        except StorageError as err:
            self._stats.storage_errors += 1
            for record_id in err.dropped:
                self._stats.readings_dropped += len(self._staged.pop(record_id, []))
            if not self._storage_failing:
                self._storage_failing = True
                log.error("queue cannot write to disk", extra={"event": "storage_down", "reason": err.reason})
            self._outbox.refresh()
            return False
        if self._storage_failing:
            self._storage_failing = False
            log.info("queue writes again", extra={"event": "storage_up"})
        for record_id in result.committed:
            readings = self._staged.pop(record_id, None)
            if readings is None:
                continue
            self._stats.readings_taken += len(readings)
            if self._on_taken is not None:
                self._on_taken(readings)
        self._outbox.refresh()
        return bool(result.committed)
