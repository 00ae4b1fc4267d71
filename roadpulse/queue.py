"""The transaction-shaped queue interface of the agent's queue and the collector's spool, shared by both.

Shape (after Telegraf's buffer): `append` stages a record, `commit` makes staged records
durable in one group write, `begin(n)` hands out up to `n` committed records that are not
already out, and `end(tx, acked=...)` settles them: acknowledged records are gone for good,
the others go back and will be handed out again. A record's `weight` is what the owner
counts (readings for the agent), so eviction and depth are reported in the owner's units.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


class QueueError(Exception):
    """Base of the queue's errors."""


class StorageError(QueueError):
    """The disk refused a write (full, read-only, I/O error). Staged records stay in memory."""

    def __init__(self, reason: str, detail: str = "", *, dropped: list[int] | None = None) -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        # Staged ids given up because staging outgrew its memory bound while the disk refused writes.
        self.dropped = dropped or []


class RecordTooLargeError(QueueError):
    """A single record is larger than the queue's whole byte bound."""


@dataclass(frozen=True, slots=True)
class Record:
    id: int
    payload: bytes
    weight: int
    ts_ms: int


@dataclass(slots=True)
class Tx:
    """Records handed out by one `begin`; settle with `end`."""

    records: list[Record]

    @property
    def weight(self) -> int:
        return sum(r.weight for r in self.records)

    def __bool__(self) -> bool:
        return bool(self.records)


@dataclass(frozen=True, slots=True)
class CommitResult:
    """Ids that became durable in this commit, and staged ids dropped because storage failed too long."""

    committed: list[int] = field(default_factory=list)
    dropped: list[int] = field(default_factory=list)


@dataclass(slots=True)
class QueueStats:
    records: int = 0
    weight: int = 0
    bytes: int = 0
    staged_records: int = 0
    oldest_ts_ms: int | None = None
    # Id of the oldest committed, unacknowledged record (None when there is none).
    oldest_id: int | None = None
    # Committed records removed unsent to respect the byte bound: exact, in records and in weight.
    evicted_records: int = 0
    evicted_weight: int = 0
    # Staged records that never became durable because the disk refused them (ENOSPC, EIO).
    dropped_records: int = 0
    dropped_weight: int = 0
    commits: int = 0
    fsyncs: int = 0
    bytes_written: int = 0
    storage_errors: int = 0
    damaged_regions: int = 0
    damaged_bytes: int = 0


class DurableQueue(Protocol):
    """What both the disk queue and the in-memory queue implement (and a spool should)."""

    @property
    def next_id(self) -> int:
        """The id the next appended record gets: ids grow by one per record, never reused."""
        ...

    def append(self, payload: bytes, *, weight: int = 1, ts_ms: int = 0) -> int: ...

    def commit(self, *, settle: bool = False) -> CommitResult:
        """Make staged records durable in one group write. Raises StorageError; staged records then stay.

        Acknowledgements may be held back until there is data to write; `settle` writes them
        now (at shutdown), so fewer records are sent twice after the next start.
        """
        ...

    def begin(self, n: int, *, start: int = 0, stop: int | None = None) -> Tx:
        """Up to `n` committed, unsettled, not-out records with `start <= id < stop`, oldest first."""
        ...

    def end(self, tx: Tx, *, acked: bool) -> None: ...

    def stats(self) -> QueueStats: ...

    def close(self) -> None: ...
