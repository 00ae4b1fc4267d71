"""The one owner of the queue -> publisher hand-off: what is stored, and what goes out for it.

The intake stores sealed batches here (the birth of this boot goes to disk before its
first batch); the publisher takes records out in transactions and settles them with
`end(tx, acked=...)` when the broker answered. With `delivery = "broker"` a PUBACK settles
the record in the queue. With `delivery = "end-to-end"` (issue #10) a PUBACK only means "in
flight": `agent.confirmations.Unconfirmed` holds the record until a collector's confirmation
names it (`confirm`), and puts it back in line after a timeout or a reconnect. The
publisher's side of the hand-off is the same in both modes.

What goes out for a record is its stored bytes: a replay only gains the `rp` mark, spliced
into the stored map without touching its readings. A batch is decoded and encoded again only
when its timestamps must change (a clock step measured after it was sealed).
"""

from __future__ import annotations

import bisect
import dataclasses
import logging
import sys
import time

import msgpack

from agent.birth import BirthStore, HealthAliases, make_birth
from agent.catalog import Catalog
from agent.clock import ClockJudge, corrected
from agent.confirmations import ConfirmPolicy, Unconfirmed
from agent.queue import DurableQueue, Record, Tx
from agent.queue.batcher import Sealed
from agent.stats import AgentStats
from roadpulse.queue import CommitResult
from roadpulse.wire import (
    DataBatch,
    Death,
    TimeFlag,
    Topics,
    WireError,
    decode,
    encode_birth,
    encode_data,
    encode_death,
)
from roadpulse.wire.confirm import Confirmation
from roadpulse.wire.types import VERSION

log = logging.getLogger(__name__)
_REPLAY_MARK: bytes = msgpack.packb("rp") + msgpack.packb(True)


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


def mark_replayed(payload: bytes) -> bytes:
    """A stored data batch with `rp: true`, its other bytes as stored (the readings are not decoded).

    The mark goes just before `r`, which the encoder writes last. Raises WireError for a payload
    that is no protocol v1 data map, as decoding it would.
    """
    unpacker = msgpack.Unpacker(raw=False)
    unpacker.feed(payload)
    try:
        count = unpacker.read_map_header()
        header_end = unpacker.tell()
        insert_at = len(payload)
        version = kind = None
        for _ in range(count):
            key_at = unpacker.tell()
            key = unpacker.unpack()
            if key == "rp":
                return payload  # marked already
            if key == "r":
                insert_at = key_at
                break
            if key in ("v", "t"):
                value = unpacker.unpack()
                version, kind = (value, kind) if key == "v" else (version, value)
            else:
                unpacker.skip()
    except (msgpack.OutOfData, msgpack.UnpackException, ValueError) as exc:
        raise WireError("msgpack", str(exc)) from None
    if version != VERSION or kind != "data":
        raise WireError("not-data", f"v={version!r} t={kind!r}")
    header: bytes = msgpack.Packer().pack_map_header(count + 1)
    return header + payload[header_end:insert_at] + _REPLAY_MARK + payload[insert_at:]


class Outbox:
    """The durable queue of this agent with what its records need on the way out: births, seq, clock."""

    def __init__(self, queue: DurableQueue, births: BirthStore | None, *, catalog: Catalog,
                 health: HealthAliases, topics: Topics, boot: str, judge: ClockJudge, stats: AgentStats,
                 max_bytes: int, confirm: ConfirmPolicy | None = None) -> None:
        """`confirm`: end-to-end delivery with this policy; None: a PUBACK settles a record."""
        self.queue = queue
        self.births = births
        self.catalog = catalog
        self.health = health
        self.topics = topics
        self.boot = boot
        self.stats = stats
        self._judge = judge
        self._max_bytes = max_bytes
        self.seq = 0
        # Records from `first_id` on are this boot's; earlier ones were sealed under earlier boots.
        self.first_id = queue.next_id
        # (first record id, clock epoch), ascending: which epoch a record of this process was sealed in.
        self._epochs: list[tuple[int, int]] = []
        self._birth_stored = False
        self._birth_store_failing = False
        self._queue_full = False
        self.unconfirmed = Unconfirmed(queue, confirm, on_settled=lambda record: None) if confirm else None

    # ---- the intake's side

    def store(self, sealed: Sealed) -> int:
        """Stage one sealed batch in the queue (durable at the next commit); its record id."""
        if not self._birth_stored:
            self._store_birth()
        batch = DataBatch(self.topics.gateway, self.boot, self.seq, _wall_ms(), sealed.readings,
                          time_flags=sealed.flags)
        record_id = self.queue.append(encode_data(batch, self.catalog.decimals), weight=len(sealed.readings),
                                      ts_ms=min(r.ts_ms for r in sealed.readings))
        if not self._epochs or self._epochs[-1][1] != sealed.epoch:
            self._epochs.append((record_id, sealed.epoch))
        self.seq += 1
        return record_id

    def commit(self, *, settle: bool = False) -> CommitResult:
        """One group write of the queue; raises StorageError (agent.queue) when the disk refuses it."""
        return self.queue.commit(settle=settle)

    def _store_birth(self) -> None:
        """Persist this boot's birth before its first batch, so a replay after a restart can send it."""
        if self.births is None:
            return
        try:
            self.births.save(self.boot, self.first_id, self.birth())
        except OSError as exc:
            # The batch is stored all the same; a collector may ask for this birth in vain later.
            if not self._birth_store_failing:
                self._birth_store_failing = True
                log.error("cannot store the birth", extra={"event": "birth_store_failed", "error": str(exc)})
            return
        self._birth_stored = True

    def refresh(self) -> None:
        """Copy the queue's depth and disk figures into the stats; prune births no record needs."""
        q = self.queue.stats()
        s = self.stats
        s.queue_readings = q.weight
        s.queue_bytes = q.bytes
        if q.evicted_weight > s.readings_evicted and not self._queue_full:
            self._queue_full = True
            log.warning("queue full: evicting the oldest readings", extra={"event": "queue_full"})
        elif self._queue_full and q.bytes < self._max_bytes // 2:
            self._queue_full = False
            log.info("queue below half full again", extra={"event": "queue_ok"})
        s.readings_evicted = q.evicted_weight
        s.disk_bytes_written = q.bytes_written
        if self.unconfirmed is not None:
            u = self.unconfirmed
            u.prune(q.oldest_id)
            s.readings_confirmed = u.readings_confirmed
            s.messages_resent = u.resends
            s.confirmations = u.confirmations
            s.unconfirmed_messages = len(u)
        if self.births is not None:
            self.births.prune(oldest_id=q.oldest_id, current_boot=self.boot, current_first_id=self.first_id)

    # ---- the publisher's side (agent.publisher.Outbox)

    @property
    def next_id(self) -> int:
        return self.queue.next_id

    def begin(self, *, start: int = 0, stop: int | None = None) -> Tx:
        return self.queue.begin(1, start=start, stop=stop)

    def end(self, tx: Tx, *, acked: bool) -> None:
        if self.unconfirmed is not None and self.unconfirmed.end(tx, acked=acked):
            return  # held until confirmed (or settled now: it was confirmed before its PUBACK)
        self.queue.end(tx, acked=acked)
        if acked:
            self.refresh()

    # ---- end-to-end confirmations (agent.publisher.Confirmations)

    def confirm(self, confirmation: Confirmation) -> int:
        """A collector made these durable: settle them. Returns the records settled (or marked)."""
        assert self.unconfirmed is not None, "confirmations are only listened to in end-to-end mode"
        settled = self.unconfirmed.confirm(confirmation, time.monotonic())
        if settled:
            self.refresh()
        return settled

    def expire(self) -> int:
        assert self.unconfirmed is not None
        return self.unconfirmed.expire(time.monotonic())

    def requeue_all(self) -> int:
        assert self.unconfirmed is not None
        return self.unconfirmed.requeue_all()

    def can_send(self) -> bool:
        return self.unconfirmed is None or self.unconfirmed.can_send()

    @property
    def waiting(self) -> int:
        """Records sent but not yet confirmed."""
        return 0 if self.unconfirmed is None else len(self.unconfirmed)

    def payload(self, record: Record, *, replay: bool) -> bytes:
        """What to send for a record: the stored bytes, marked when replayed, re-encoded only if the
        clock was corrected since it was sealed. Raises WireError for a record no collector could read."""
        if self.unconfirmed is not None:
            # End-to-end: a record sent before (not confirmed in time, or before a reconnect) is a replay.
            replay = replay or self.unconfirmed.sent_before(record)
        payload = self._payload(record, replay=replay)
        if self.unconfirmed is not None:
            self.unconfirmed.sending(record, time.monotonic())
        return payload

    def _payload(self, record: Record, *, replay: bool) -> bytes:
        epoch = self._epoch_of(record.id)
        delta = self._judge.correction(epoch) if epoch is not None else None
        if not delta:
            return mark_replayed(record.payload) if replay else record.payload
        batch = decode(record.payload)
        if not isinstance(batch, DataBatch):
            return record.payload
        batch = corrected(batch, delta, self._judge, _wall_ms())
        if replay:
            batch = dataclasses.replace(batch, replay=True)
        # Decoded from the queue, its values are wire values (scaled ints already): no decimals again.
        return encode_data(batch)

    def birth(self) -> bytes:
        """This boot's birth, with the seq of the next batch and the clock's state now."""
        flags = TimeFlag.UNSYNCED if self._judge.unsynced else TimeFlag.NONE
        return encode_birth(make_birth(self.catalog, self.health, gateway=self.topics.gateway, boot=self.boot,
                                       next_seq=self.seq, ts_ms=_wall_ms(), time_flags=flags))

    def death(self, clean: bool) -> bytes:
        return encode_death(Death(self.topics.gateway, self.boot, _wall_ms(), clean))

    def boot_of(self, record: Record) -> str | None:
        """The earlier boot a queued record was sealed under; None for this boot's (or an unknown one)."""
        if record.id >= self.first_id or self.births is None:
            return None
        boot = self.births.boot_of(record.id)
        return boot if boot != self.boot else None

    def earlier_birth(self, boot: str) -> bytes | None:
        """The stored birth of an earlier boot, or None for this boot or one no longer (or never) stored."""
        if boot == self.boot or self.births is None:
            return None
        return self.births.load(boot)

    def _epoch_of(self, record_id: int) -> int | None:
        """The clock epoch a record was sealed in, or None for records of an earlier process."""
        index = bisect.bisect_right(self._epochs, (record_id, sys.maxsize)) - 1
        return self._epochs[index][1] if index >= 0 else None
