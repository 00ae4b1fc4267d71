"""The durable queue on the gateway's SD card: append-only segment files of CRC-framed records.

Why this shape:
- One `write` and at most one `fsync` per commit (group commit): an SD card wears out and
  writes 4K pages slowly, so readings are staged in memory and written together.
- Acknowledgements are appended as small ACK frames to the same log, not rewritten in
  place, so a commit never seeks. A segment file is deleted once it is the oldest and
  all its records are acknowledged.
- Every frame carries a CRC32: after a power cut or SIGKILL, a torn tail or a damaged
  region is skipped (and counted) on open; it is never fatal.
- The byte bound is enforced by deleting the oldest segment; each unacknowledged record
  in it is counted as evicted, so the eviction count is exact.
"""

from __future__ import annotations

import bisect
import contextlib
import errno
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from agent.queue.framing import (
    HEADER_SIZE,
    FrameKind,
    decode_ack_ranges,
    encode_ack_ranges,
    encode_frame,
    parse_frame,
    scan,
)
from roadpulse.queue import CommitResult, QueueStats, Record, RecordTooLargeError, StorageError, Tx

log = logging.getLogger(__name__)
SUFFIX = ".seg"
_DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
# Pending acknowledgements that justify a write of their own (about 16 KiB of ranges at worst).
_ACKS_ALONE = 1024


# Evicted records whose late acknowledgement (sent before, confirmed after) still takes them off
# the eviction count.
EVICTED_REMEMBERED = 4096


@dataclass(eq=False, slots=True)
class _Segment:
    number: int
    path: Path
    fd: int
    size: int
    unacked: set[int] = field(default_factory=set)
    max_id: int = -1


@dataclass(slots=True)
class _Meta:
    id: int
    segment: _Segment
    offset: int
    size: int
    weight: int
    ts_ms: int


@dataclass(slots=True)
class _Staged:
    id: int
    frame: bytes
    weight: int
    ts_ms: int


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class SegmentQueue:
    """The agent's store-and-forward queue. Use `SegmentQueue.open(dir, max_bytes=...)`."""

    def __init__(self, directory: Path, *, max_bytes: int, segment_bytes: int, fsync: bool,
                 max_staged_bytes: int) -> None:
        self._dir = directory
        self._max_bytes = max_bytes
        self._segment_bytes = segment_bytes
        self._fsync = fsync
        self._max_staged_bytes = max_staged_bytes
        self._segments: list[_Segment] = []
        self._meta: dict[int, _Meta] = {}
        self._weight = 0
        self._pending: list[int] = []
        self._out: set[int] = set()
        self._evicted_out: dict[int, _Meta] = {}
        # Staged ids evicted by a commit too big for the queue: reported as taken with the next one.
        self._evicted_staged: list[int] = []
        self._staged: list[_Staged] = []
        self._staged_bytes = 0
        self._acks: list[int] = []
        self._next_id = 0
        self._next_segment = 0
        # The segment appended to; None when the disk refused to create one.
        self._active: _Segment | None = None
        self._stats = QueueStats()

    # ---- opening and recovery ------------------------------------------------------------

    @classmethod
    def open(cls, directory: Path, *, max_bytes: int, segment_bytes: int | None = None,
             fsync: bool = True, max_staged_bytes: int | None = None) -> SegmentQueue:
        """Open (or create) the queue in `directory`, recovering whatever a crash left there."""
        if segment_bytes is None:
            # 16 segments: eviction frees at most 1/16 of the bound at a time.
            segment_bytes = max(4096, min(4 * 1024 * 1024, max_bytes // 16))
        queue = cls(directory, max_bytes=max_bytes, segment_bytes=segment_bytes, fsync=fsync,
                    max_staged_bytes=max_staged_bytes or max(segment_bytes, 1024 * 1024))
        directory.mkdir(parents=True, exist_ok=True)
        queue._recover()
        return queue

    def _recover(self) -> None:
        files = sorted((int(p.stem), p) for p in self._dir.glob("*" + SUFFIX) if p.stem.isdigit())
        acked: set[int] = set()
        for number, path in files:
            raw = path.read_bytes()
            result = scan(raw)
            if result.damaged_regions:
                self._stats.damaged_regions += result.damaged_regions
                self._stats.damaged_bytes += result.damaged_bytes
                log.warning("queue segment damaged; skipped", extra={
                    "segment": path.name, "regions": result.damaged_regions, "bytes": result.damaged_bytes})
            size = len(raw)
            if result.good_end < size and result.frames and result.frames[-1].offset < result.good_end:
                # A torn tail from a power cut: cut it off so the file ends on a whole frame.
                os.truncate(path, result.good_end)
                size = result.good_end
            segment = _Segment(number, path, os.open(path, os.O_RDONLY), size)
            self._segments.append(segment)
            for frame in result.frames:
                if frame.kind is FrameKind.START:
                    self._next_id = max(self._next_id, frame.id)
                elif frame.kind is FrameKind.ACK:
                    for first, last in decode_ack_ranges(frame.payload):
                        acked.update(range(first, last + 1))
                elif frame.kind is FrameKind.DATA:
                    self._next_id = max(self._next_id, frame.id + 1)
                    self._meta[frame.id] = _Meta(frame.id, segment, frame.offset, frame.size,
                                                 frame.weight, frame.ts_ms)
                    segment.unacked.add(frame.id)
                    segment.max_id = max(segment.max_id, frame.id)
        for record_id in acked & self._meta.keys():
            meta = self._meta.pop(record_id)
            meta.segment.unacked.discard(record_id)
        self._meta = dict(sorted(self._meta.items()))
        self._pending = list(self._meta)
        self._weight = sum(m.weight for m in self._meta.values())
        self._next_segment = (files[-1][0] + 1) if files else 0
        try:
            self._new_segment(self._next_segment)
        except OSError as exc:
            if exc.errno not in _DISK_FULL:
                raise
            # Start anyway: the first commit makes room (evicting our oldest data) or reports it.
            log.warning("queue disk full at start", extra={"error": str(exc)})
        self._drop_settled_head()

    def _new_segment(self, number: int) -> None:
        path = self._dir / f"{number:012d}{SUFFIX}"
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC, 0o644)
        start = encode_frame(FrameKind.START, self._next_id)
        try:
            os.write(fd, start)
            os.fsync(fd)
            _fsync_dir(self._dir)
        except OSError:
            os.close(fd)
            path.unlink(missing_ok=True)
            raise
        self._stats.bytes_written += len(start)
        self._stats.fsyncs += 2
        self._active = _Segment(number, path, fd, len(start))
        self._segments.append(self._active)
        self._next_segment = number + 1

    # ---- the interface ---------------------------------------------------------------------

    @property
    def next_id(self) -> int:
        return self._next_id

    def append(self, payload: bytes, *, weight: int = 1, ts_ms: int = 0) -> int:
        frame = encode_frame(FrameKind.DATA, self._next_id, payload, weight=weight, ts_ms=ts_ms)
        if len(frame) + 3 * HEADER_SIZE > self._max_bytes:
            raise RecordTooLargeError(f"record of {len(frame)} bytes exceeds the queue's bound")
        self._staged.append(_Staged(self._next_id, frame, weight, ts_ms))
        self._staged_bytes += len(frame)
        self._next_id += 1
        return self._next_id - 1

    def commit(self, *, settle: bool = False) -> CommitResult:
        # Acknowledgements alone are not worth a write on an SD card: they ride on the next data
        # commit. Losing them in a crash only means duplicates (same boot and seq) after restart.
        if not self._staged and (not self._acks or (not settle and len(self._acks) < _ACKS_ALONE)):
            return CommitResult()
        staged = self._staged
        ack_frame = encode_frame(FrameKind.ACK, 0, encode_ack_ranges(self._acks)) if self._acks else b""
        # One commit never holds more than the whole queue: a burst staged beyond it evicts its
        # own oldest records, counted like any eviction (they were taken, then the queue was full).
        room = self._max_bytes - 3 * HEADER_SIZE - len(ack_frame)
        keep = len(staged)
        size = sum(len(s.frame) for s in staged)
        while keep and size > room:
            keep -= 1
            size -= len(staged[len(staged) - keep - 1].frame)
        for item in staged[:len(staged) - keep]:
            self._stats.evicted_records += 1
            self._stats.evicted_weight += item.weight
            self._evicted_staged.append(item.id)
        written = self._staged = staged[len(staged) - keep:]
        self._staged_bytes = size
        chunks = [s.frame for s in written]
        if ack_frame:
            chunks.append(ack_frame)
        buf = b"".join(chunks)
        try:
            # Room for the START frame of the segment this commit may roll over to, too.
            self._make_room(len(buf) + HEADER_SIZE)
            offset = self._write(buf, sync=bool(written))
        except OSError as exc:
            if exc.errno not in _DISK_FULL:
                raise self._storage_failed(exc) from None
            # The disk is full (maybe not by us): give up our oldest data and try once more.
            try:
                self._free_space()
                offset = self._write(buf, sync=bool(written))
            except OSError as again:
                raise self._storage_failed(again) from None
        segment = self._active
        assert segment is not None, "a successful write leaves an active segment"
        for item in written:
            size = len(item.frame)
            self._meta[item.id] = _Meta(item.id, segment, offset, size, item.weight, item.ts_ms)
            self._pending.append(item.id)
            segment.unacked.add(item.id)
            segment.max_id = item.id
            self._weight += item.weight
            offset += size
        self._staged = []
        self._staged_bytes = 0
        self._acks = []
        self._stats.commits += 1
        taken, self._evicted_staged = [*self._evicted_staged, *(s.id for s in written)], []
        if segment.size >= self._segment_bytes:
            try:
                self._new_segment(self._next_segment)
            except OSError as exc:
                log.warning("cannot start a new queue segment", extra={"error": str(exc)})
        self._drop_settled_head()
        return CommitResult(committed=taken)

    def _write(self, buf: bytes, *, sync: bool) -> int:
        if self._active is None:
            self._new_segment(self._next_segment)
        segment = self._active
        assert segment is not None
        before = segment.size
        try:
            view = memoryview(buf)
            while view:
                written = os.write(segment.fd, view)
                view = view[written:]
            if sync and self._fsync:
                os.fsync(segment.fd)
                self._stats.fsyncs += 1
        except OSError:
            # Leave no partial frame behind: the next write must start on a frame boundary.
            with contextlib.suppress(OSError):
                os.ftruncate(segment.fd, before)
            raise
        segment.size += len(buf)
        self._stats.bytes_written += len(buf)
        return before

    def _storage_failed(self, exc: OSError) -> StorageError:
        self._stats.storage_errors += 1
        dropped: list[int] = []
        # Staged records are kept for the next commit, within a memory bound; beyond it the oldest go.
        while self._staged and self._staged_bytes > self._max_staged_bytes:
            item = self._staged.pop(0)
            self._staged_bytes -= len(item.frame)
            self._stats.dropped_records += 1
            self._stats.dropped_weight += item.weight
            dropped.append(item.id)
        return StorageError(errno.errorcode.get(exc.errno or 0, "EIO"), str(exc), dropped=dropped)

    def begin(self, n: int, *, start: int = 0, stop: int | None = None) -> Tx:
        lo = bisect.bisect_left(self._pending, start)
        hi = lo
        limit = len(self._pending)
        while hi < limit and hi - lo < n and (stop is None or self._pending[hi] < stop):
            hi += 1
        ids = self._pending[lo:hi]
        del self._pending[lo:hi]
        records: list[Record] = []
        for record_id in ids:
            meta = self._meta[record_id]
            record = self._read(meta)
            if record is None:
                continue
            self._out.add(record_id)
            records.append(record)
        return Tx(records)

    def _read(self, meta: _Meta) -> Record | None:
        try:
            raw = os.pread(meta.segment.fd, meta.size, meta.offset)
        except OSError as exc:
            raise StorageError("EIO", str(exc)) from None
        frame = parse_frame(raw, 0)
        if frame is None or frame.id != meta.id:
            # Rotted on the card since it was written: drop it and count it as damage.
            self._stats.damaged_regions += 1
            self._stats.damaged_bytes += meta.size
            self._forget(meta)
            return None
        return Record(meta.id, frame.payload, meta.weight, meta.ts_ms)

    def _forget(self, meta: _Meta) -> None:
        del self._meta[meta.id]
        meta.segment.unacked.discard(meta.id)
        self._weight -= meta.weight

    def end(self, tx: Tx, *, acked: bool) -> None:
        for record in tx.records:
            if record.id in self._out:
                self._out.discard(record.id)
                if acked:
                    self._forget(self._meta[record.id])
                    self._acks.append(record.id)
                else:
                    bisect.insort(self._pending, record.id)
            elif record.id in self._evicted_out and acked:
                # Evicted while in flight, then delivered after all: not a loss. Not acknowledged,
                # it stays remembered: it may have reached a collector that confirms it later.
                meta = self._evicted_out.pop(record.id)
                self._stats.evicted_records -= 1
                self._stats.evicted_weight -= meta.weight
        if acked:
            self._drop_settled_head()

    # ---- space -----------------------------------------------------------------------------

    def _disk_bytes(self) -> int:
        return sum(s.size for s in self._segments)

    def _free_space(self) -> None:
        """Make room on a full disk: evict the oldest segment, or restart a settled active one."""
        if self._segments and self._segments[0] is not self._active:
            self._evict(self._segments[0])
            return
        if self._active is not None and not self._active.unacked:
            self._remove(self._active)
            self._new_segment(self._next_segment)

    def _make_room(self, incoming: int) -> None:
        while self._disk_bytes() + incoming > self._max_bytes:
            if self._segments and self._segments[0] is not self._active:
                self._evict(self._segments[0])
            elif self._active is not None and self._active.size > HEADER_SIZE:
                self._new_segment(self._next_segment)
            else:
                return

    def _evict(self, segment: _Segment) -> None:
        cut = bisect.bisect_right(self._pending, segment.max_id)
        del self._pending[:cut]
        for record_id in sorted(segment.unacked):
            meta = self._meta.pop(record_id)
            self._weight -= meta.weight
            self._stats.evicted_records += 1
            self._stats.evicted_weight += meta.weight
            self._out.discard(record_id)
            # Remembered even when not out: it may have been sent before, and be confirmed late.
            self._evicted_out[record_id] = meta
            if len(self._evicted_out) > EVICTED_REMEMBERED:
                del self._evicted_out[next(iter(self._evicted_out))]
        segment.unacked.clear()
        # The owner logs the state change (full / not full); each eviction is a counter, not a log line.
        log.debug("evicted oldest segment", extra={"segment": segment.path.name})
        self._remove(segment)

    def _remove(self, segment: _Segment) -> None:
        if segment is self._active:
            self._active = None
        self._segments.remove(segment)
        os.close(segment.fd)
        segment.path.unlink(missing_ok=True)

    def _drop_settled_head(self) -> None:
        while self._segments and self._segments[0] is not self._active and not self._segments[0].unacked:
            self._remove(self._segments[0])

    # ---- reporting ---------------------------------------------------------------------------

    def stats(self) -> QueueStats:
        s = self._stats
        s.records = len(self._meta)
        s.weight = self._weight
        s.bytes = self._disk_bytes()
        s.staged_records = len(self._staged)
        oldest = next(iter(self._meta.values()), None)
        s.oldest_ts_ms = oldest.ts_ms if oldest else None
        s.oldest_id = oldest.id if oldest else None
        return QueueStats(**{k: getattr(s, k) for k in s.__dataclass_fields__})

    def close(self) -> None:
        for segment in self._segments:
            os.close(segment.fd)
        self._segments = []
        self._active = None
