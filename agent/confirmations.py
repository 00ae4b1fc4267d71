"""What the broker has acknowledged but no collector has confirmed yet (issue #10, end-to-end delivery).

With `delivery = "end-to-end"` a PUBACK only means "in flight": the record stays out of the
queue's line (still on disk, still counted by `queue.max_bytes` and by evictions) until a
confirmation names its `(boot, seq)`. Then it is settled in the queue, whose ACK frames ride on
the next group commit: confirmation state is written in batches, never per message.

What is not confirmed within the timeout goes back in line and is sent again, marked as
replay, in two cases only: nothing at all was confirmed for a timeout (the collectors or the
broker lost it; the timeout then doubles up to its cap, so a collector that is down is not
flooded), or a later seq of the same boot was confirmed (a hole: e.g. a share stranded with a
dead collector). A collector that is merely behind confirms in order, so its backlog is not
sent twice on top of the load that made it late. After a reconnect everything unconfirmed
goes back.
No I/O: the caller passes the time; the queue is the one the outbox owns.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from agent.queue import DurableQueue, Record, Tx
from roadpulse.wire.confirm import Confirmation, peek_data_id

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Out:
    tx: Tx
    sent_at: float
    acked: bool = False  # PUBACK arrived: waiting only for the confirmation
    confirmed: bool = False  # confirmed before its PUBACK (a fast collector): settle on end()


@dataclass(frozen=True, slots=True)
class ConfirmPolicy:
    timeout_s: float = 20.0
    timeout_max_s: float = 300.0
    warn_s: float = 600.0
    # Records awaiting confirmation at once; their bytes stay in memory until settled.
    window: int = 1000


class Unconfirmed:
    """Records out of the queue's line, keyed by (boot, seq), from `payload` until confirmed."""

    def __init__(self, queue: DurableQueue, policy: ConfirmPolicy, *,
                 on_settled: Callable[[Record], None]) -> None:
        self._queue = queue
        self.policy = policy
        self._on_settled = on_settled
        self._out: dict[tuple[str, str], _Out] = {}  # (boot, seq as str) -> state; str keys keep it flat
        self._key_of: dict[int, tuple[str, str]] = {}  # record id -> key
        self._sent_before: set[int] = set()  # ids sent at least once by this process: resends are replays
        # Sent, then put back in line (timeout, reconnect, failed publish): a confirmation may still
        # come for them, and one the queue evicted meanwhile is then no loss (its eviction uncounted).
        self._released: dict[tuple[str, str], Record] = {}
        self.timeout_s = policy.timeout_s
        self._last_confirmation: float | None = None
        self._highest: dict[str, int] = {}  # boot -> highest seq confirmed
        self._first_wait: float | None = None
        self._warned = False
        self.confirmations = 0
        self.resends = 0
        self.readings_confirmed = 0

    def __len__(self) -> int:
        return len(self._out)

    def can_send(self) -> bool:
        return len(self._out) < self.policy.window

    def sent_before(self, record: Record) -> bool:
        return record.id in self._sent_before

    def sending(self, record: Record, now: float) -> None:
        """The publisher is about to send `record` (its payload is made): hold it from now on."""
        self.resends += record.id in self._sent_before
        found = peek_data_id(record.payload)
        if found is None:
            return  # not a data batch that names itself: the queue settles it on PUBACK
        key = (found[1], str(found[2]))
        previous = self._out.get(key)
        if previous is not None and previous.tx.records[0].id != record.id:
            return
        self._released.pop(key, None)
        self._out[key] = _Out(Tx([record]), now)
        self._key_of[record.id] = key
        self._sent_before.add(record.id)
        if self._first_wait is None:
            self._first_wait = now

    def end(self, tx: Tx, *, acked: bool) -> bool:
        """The publisher settles a tx. Returns True when this took it over (the queue must not see it)."""
        record = tx.records[0]
        key = self._key_of.get(record.id)
        if key is None:
            return False
        state = self._out[key]
        if state.confirmed:
            self._settle(key)  # durable at a collector, whatever the broker said
            return True
        if acked:
            state.acked = True
            return True
        # Not acknowledged by the broker: back in line now.
        self._release(key, to_queue=False)
        return False

    def confirm(self, confirmation: Confirmation, now: float) -> int:
        """Settle every held record the confirmation names; returns how many."""
        self.confirmations += 1
        self._last_confirmation = now
        self.timeout_s = self.policy.timeout_s
        if self._warned:
            self._warned = False
            log.info("end-to-end confirmations arrive again", extra={"event": "confirmations_ok"})
        settled = 0
        for boot, ranges in confirmation.acks.items():
            if ranges:
                self._highest[boot] = max(self._highest.get(boot, -1), ranges[-1][1])
            for first, last in ranges:
                if last - first < len(self._out) + len(self._released):
                    keys = [(boot, str(seq)) for seq in range(first, last + 1)]
                else:  # a wide range: look at what we hold instead
                    keys = [k for k in [*self._out, *self._released] if k[0] == boot and first <= int(k[1]) <= last]
                for key in keys:
                    state = self._out.get(key)
                    if state is None:
                        if (released := self._released.pop(key, None)) is not None:
                            self._queue.end(Tx([released]), acked=True)  # evicted since: not a loss
                        continue
                    if state.acked:
                        self._settle(key)
                    else:
                        state.confirmed = True  # its PUBACK is still on the way
                    settled += 1
        return settled

    def _settle(self, key: tuple[str, str]) -> None:
        state = self._forget(key)
        self._sent_before.discard(state.tx.records[0].id)
        self._queue.end(state.tx, acked=True)
        self.readings_confirmed += state.tx.weight
        self._on_settled(state.tx.records[0])

    def _forget(self, key: tuple[str, str]) -> _Out:
        state = self._out.pop(key)
        self._key_of.pop(state.tx.records[0].id, None)
        if not self._out:
            self._first_wait = None
        return state

    def expire(self, now: float) -> int:
        """Put back in line what waited longer than the timeout; back off while nothing is confirmed."""
        late = [k for k, s in self._out.items() if s.acked and now - s.sent_at >= self.timeout_s]
        silent = self._last_confirmation is None or now - self._last_confirmation >= self.timeout_s
        if not silent:  # confirmations flow: resend only holes below what was confirmed since
            late = [k for k in late if int(k[1]) < self._highest.get(k[0], -1)]
        for key in late:
            self._release(key)
        if late and silent:
            self.timeout_s = min(self.policy.timeout_max_s, self.timeout_s * 2)
        waiting_since = self._first_wait if self._last_confirmation is None else self._last_confirmation
        if (not self._warned and self._out and waiting_since is not None
                and now - waiting_since >= self.policy.warn_s):
            self._warned = True
            log.warning("no end-to-end confirmation for a long time: is the collector older than "
                        "confirmations? Then set [publish] delivery = \"broker\"",
                        extra={"event": "no_confirmations", "seconds": round(now - waiting_since),
                               "unconfirmed": len(self._out)})
        return len(late)

    def requeue_all(self) -> int:
        """A new connection: what was in flight or PUBACKed on the old one goes back in line."""
        keys = [k for k, s in self._out.items() if not s.confirmed]
        for key in keys:
            self._release(key)
        return len(keys)

    def _release(self, key: tuple[str, str], *, to_queue: bool = True) -> None:
        """Back in line (the caller's publisher ends the tx itself when not `to_queue`), remembered."""
        state = self._forget(key)
        if to_queue:
            self._queue.end(state.tx, acked=False)
        record = state.tx.records[0]
        self._released[key] = Record(record.id, b"", record.weight, record.ts_ms)  # its bytes are on disk
        if len(self._released) > 2 * self.policy.window:
            del self._released[next(iter(self._released))]

    def prune(self, oldest_id: int | None) -> None:
        """Forget resend marks of records no longer queued (evicted), so the set stays bounded."""
        if len(self._sent_before) > 2 * self.policy.window + 1024:
            floor = oldest_id if oldest_id is not None else 1 << 62
            self._sent_before = {i for i in self._sent_before if i >= floor}
