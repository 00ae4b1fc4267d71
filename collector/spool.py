"""A bounded on-disk spool of write batches for InfluxDB outages, in transactions.

It implements the shared queue interface (roadpulse/queue.py `DurableQueue`, after
Telegraf's buffer): `append` stages a record, `commit` makes staged records durable,
`begin(n)` hands out the oldest n not already out, `end(tx, acked=...)` settles them:
acked ones are gone, the others go back. The shared test suite runs against it
(tests/collector/test_spool.py). One difference is deliberate: the agent's queue evicts
its oldest records when full, but the collector must never drop data, so `append` raises
SpoolFullError and the collector stops acking; the broker then holds the messages.

One file per batch (temp name, fsync, rename, folder fsync): a crash leaves the whole batch
or none of it, and replay order is file-name order. Batches are thousands of lines, so a
file each is cheap.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from roadpulse.queue import CommitResult, QueueError, QueueStats, Record, StorageError, Tx

NEXT_ID_FILE = "next-id"


class SpoolFullError(QueueError):
    """Appending would pass max_bytes: the caller stops acking and lets the broker hold messages."""


@dataclass(frozen=True, slots=True)
class _Entry:
    id: int
    weight: int  # readings in the batch
    ts_ms: int  # when it was spooled
    size: int
    path: Path


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Spool:
    def __init__(self, directory: Path, max_bytes: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        directory.mkdir(parents=True, exist_ok=True)
        for leftover in directory.glob(".tmp-*"):
            leftover.unlink()  # a crash mid-append: that batch was never acked
        self._entries: list[_Entry] = []
        for path in sorted(directory.glob("*.batch")):
            entry = self._parse(path)
            if entry is not None:
                self._entries.append(entry)
        self._staged: list[tuple[int, bytes, int, int]] = []
        self._out: set[int] = set()
        self._next_id = max(self._entries[-1].id + 1 if self._entries else 0, self._read_marker())
        self._bytes = sum(e.size for e in self._entries)
        self._stats = QueueStats()
        # The collector commits from its live writer and settles from its replay task, each
        # in a worker thread (disk I/O stays off the event loop): one lock keeps the lists whole.
        self._lock = threading.Lock()

    def _read_marker(self) -> int:
        try:
            return int((self.directory / NEXT_ID_FILE).read_text())
        except (OSError, ValueError):
            return 0

    def _write_marker(self) -> None:
        # Only needed when the spool empties (file names carry ids otherwise), so ids are never
        # reused after a restart, as the queue interface promises.
        tmp = self.directory / f".tmp-{NEXT_ID_FILE}"
        tmp.write_text(str(self._next_id))
        os.replace(tmp, self.directory / NEXT_ID_FILE)

    @staticmethod
    def _parse(path: Path) -> _Entry | None:
        try:
            ident, weight, created = path.stem.split("-")
            return _Entry(int(ident), int(weight), int(created), path.stat().st_size, path)
        except (ValueError, OSError):
            return None

    @property
    def next_id(self) -> int:
        return self._next_id

    def has_room(self, size: int) -> bool:
        staged = sum(len(s[1]) for s in self._staged)
        return self._bytes + staged + size <= self.max_bytes

    def append(self, payload: bytes, *, weight: int = 1, ts_ms: int = 0) -> int:
        """Stage one batch; durable only after `commit`. Raises SpoolFullError instead of evicting."""
        with self._lock:
            if not self.has_room(len(payload)):
                raise SpoolFullError(f"spool holds {self._bytes} of {self.max_bytes} bytes")
            ident = self._next_id
            self._next_id += 1
            self._staged.append((ident, payload, weight, ts_ms or int(time.time() * 1000)))
            return ident

    def commit(self, *, settle: bool = False) -> CommitResult:
        """Write staged batches durably. On a disk error, raises StorageError and drops what was staged.

        Unlike the agent's queue, staged batches are not kept for a retry: the collector still
        holds them (unacked) and will write or spool them again.
        """
        with self._lock:
            return self._commit()

    def _commit(self) -> CommitResult:
        done: list[int] = []
        try:
            while self._staged:
                ident, payload, weight, ts_ms = self._staged[0]
                name = f"{ident:016d}-{weight}-{ts_ms}.batch"
                tmp = self.directory / f".tmp-{name}"
                with tmp.open("wb") as fh:
                    fh.write(payload)
                    fh.flush()
                    os.fsync(fh.fileno())
                final = self.directory / name
                os.replace(tmp, final)
                self._staged.pop(0)
                self._entries.append(_Entry(ident, weight, ts_ms, len(payload), final))
                self._bytes += len(payload)
                self._stats.bytes_written += len(payload)
                done.append(ident)
            if done:
                _fsync_dir(self.directory)
                self._stats.commits += 1
                self._stats.fsyncs += len(done) + 1
        except OSError as exc:
            self._stats.storage_errors += 1
            self._stats.dropped_records += len(self._staged)
            self._stats.dropped_weight += sum(s[2] for s in self._staged)
            self._staged.clear()
            for leftover in self.directory.glob(".tmp-*"):
                leftover.unlink(missing_ok=True)
            raise StorageError("spool-write", exc.strerror or str(exc)) from None
        return CommitResult(committed=done)

    def begin(self, n: int, *, start: int = 0, stop: int | None = None) -> Tx:
        """Up to n committed batches not already out, with start <= id < stop, oldest first."""
        with self._lock:
            entries = [e for e in self._entries if e.id not in self._out and e.id >= start
                       and (stop is None or e.id < stop)][:n]
            self._out.update(e.id for e in entries)
        return Tx([Record(e.id, e.path.read_bytes(), e.weight, e.ts_ms) for e in entries])

    def end(self, tx: Tx, *, acked: bool) -> None:
        """Acked batches are removed for good; otherwise they go back for a later begin."""
        ids = {r.id for r in tx.records}
        with self._lock:
            self._out -= ids
            if not acked:
                return
            for entry in [e for e in self._entries if e.id in ids]:
                entry.path.unlink(missing_ok=True)
                self._bytes -= entry.size
            self._entries = [e for e in self._entries if e.id not in ids]
            if not self._entries:
                self._write_marker()

    def stats(self) -> QueueStats:
        with self._lock:
            s = self._stats
            s.records = len(self._entries)
            s.weight = sum(e.weight for e in self._entries)
            s.bytes = self._bytes
            s.staged_records = len(self._staged)
            s.oldest_ts_ms = self._entries[0].ts_ms if self._entries else None
            return s

    def close(self) -> None:
        self._staged.clear()
