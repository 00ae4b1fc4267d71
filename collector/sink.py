"""Where sealed batches become durable: written to the output, or spooled to disk, then acked.

Typed against collector/output/base.py's `Output` (InfluxDB, VictoriaMetrics, ...). One
place decides what each write error means:
- WriteRejected: the data is wrong; dead-letter the lines, ack (retrying cannot help);
- refusals in a write's result (a 413 split, a partial write: the output works out which
  lines were refused): dead-lettered once the batch has settled, the rest counts as written;
- WriteThrottled / WriteRetryable: InfluxDB is unavailable; spool the batch (durable), ack,
  and let the replay task retry the spool after Retry-After or a jittered backoff.
While InfluxDB is down, live batches go straight to the spool. When the spool is full, the
live writer keeps the batch and retries: its tickets stay unsettled, the broker's in-flight
window fills, and the broker holds further messages (max_queued_messages 0).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from collector.acks import AckLedger, Ticket
from collector.body import body_text, encode_body
from collector.deadletter import DeadLetters
from collector.ingest import Batch
from collector.metrics import OWN_MEASUREMENTS, Stats
from collector.output.base import Output, Refusal, WriteResult
from collector.output.errors import WriteError, WriteRejected, WriteRetryable, WriteThrottled
from collector.output.influxdb.partial import readings_in
from collector.spool import Spool, SpoolFullError
from roadpulse.backoff import Backoff
from roadpulse.queue import StorageError

log = logging.getLogger(__name__)


class Sink:
    def __init__(self, *, live: Output, replay: Output, spool: Spool, dead: DeadLetters,
                 stats: Stats, ledger: AckLedger, ack: Callable[[list[Ticket]], None], use_gzip: bool) -> None:
        """`ack` gets the tickets the ledger releases, in arrival order, all at once."""
        self._live = live
        self._replay = replay
        self._spool = spool
        self._dead = dead
        self._stats = stats
        self._ledger = ledger
        self._ack = ack
        self._gzip = use_gzip
        self._down_until = 0.0  # monotonic; > now means "do not try InfluxDB yet"
        self._down = False
        self._spool_changed = asyncio.Event()
        self._backoff = Backoff(base=0.2, cap=15.0)
        self._refusal_logged = -1e9  # monotonic time of the last warning about refused lines
        self.queue: asyncio.Queue[Batch] = asyncio.Queue()
        self.on_durable: Callable[[list[Ticket]], None] = lambda tickets: None  # set by the collector
        if spool.stats().records:
            self._spool_changed.set()
        self.update_spool_stats()

    # ---- state ----

    def _mark_down(self, error: WriteError) -> None:
        delay = error.retry_after if isinstance(error, WriteThrottled) else self._backoff.next()
        self._down_until = time.monotonic() + delay
        self._stats.write_errors += 1
        if not self._down:
            self._down = True
            self._stats.influx_up = False
            log.warning("influxdb unavailable; spooling", extra={"error": str(error)[:200]})

    def _mark_up(self) -> None:
        self._backoff.reset()
        self._down_until = 0.0
        if self._down:
            self._down = False
            self._stats.influx_up = True
            log.info("influxdb available again")

    def update_spool_stats(self) -> None:
        s = self._spool.stats()
        self._stats.spool_depth = s.records
        self._stats.spool_readings = s.weight
        self._stats.spool_bytes = s.bytes
        self._stats.spool_age_s = (time.time() * 1000 - s.oldest_ts_ms) / 1000 if s.oldest_ts_ms else 0.0

    def _settle(self, tickets: list[Ticket]) -> None:
        self._dead.sync()  # dead letters recorded before this batch was sealed are durable first
        self.on_durable(tickets)  # written, spooled or dead-lettered: confirm (collector.confirm)
        ready = self._ledger.settle(tickets)
        if ready:
            self._ack(ready)
        self._stats.acks_pending = self._ledger.pending

    # ---- writes ----

    def _count_writes(self, result: WriteResult) -> None:
        for elapsed in result.seconds:
            self._stats.write_seconds_total += elapsed
            self._stats.last_write_seconds = elapsed
            self._stats.write_latency.observe(elapsed)
            self._stats.batches_written += 1

    def _dead_letter(self, refusals: list[Refusal]) -> int:
        """Dead-letter what InfluxDB refused of a settled batch; returns the readings among it."""
        if not refusals:
            return 0
        readings = 0
        for refusal in refusals:
            self._dead.add(refusal.reason, detail=refusal.detail[:500], lines="\n".join(refusal.lines))
            self._stats.dead_letters += 1
            readings += _readings_in(refusal.lines)
        self._stats.readings_rejected += readings
        now = time.monotonic()
        if now - self._refusal_logged >= 60.0:  # a type conflict refuses every batch until fixed
            self._refusal_logged = now
            log.warning("influxdb refused lines; dead-lettered (warned at most once a minute)",
                        extra={"reasons": sorted({r.reason for r in refusals}),
                               "lines": sum(len(r.lines) for r in refusals), "error": refusals[0].detail[:200]})
        return readings

    async def run_live(self) -> None:
        """Consume sealed batches in order; every batch ends written, spooled or dead-lettered."""
        while True:
            batch = await self.queue.get()
            try:
                await self._handle(batch)
            finally:
                self.queue.task_done()

    async def _handle(self, batch: Batch) -> None:
        if not batch.lines:
            self._settle(batch.tickets)
            return
        text = "\n".join(batch.chunks)
        self._stats.last_batch_lines = batch.lines
        self._stats.batch_lines_max = max(self._stats.batch_lines_max, batch.lines)
        self._stats.batch_size.observe(batch.lines)
        while True:
            if time.monotonic() >= self._down_until:
                try:
                    result = await self._live.write(text)
                except WriteRejected as exc:
                    self._dead_letter([Refusal("influx-rejected", str(exc), text.split("\n"))])
                    break
                except (WriteThrottled, WriteRetryable) as exc:
                    self._mark_down(exc)
                else:
                    self._count_writes(result)
                    self._mark_up()
                    self._stats.readings_written += batch.readings - self._dead_letter(result.refusals)
                    break
            if await self._to_spool(text, batch.readings):
                break
            await self._wait_for_room()
        self._settle(batch.tickets)

    async def _to_spool(self, text: str, readings: int) -> bool:
        body = await asyncio.to_thread(encode_body, text, self._gzip)
        try:
            self._spool.append(body, weight=readings)
            await asyncio.to_thread(self._spool.commit)
        except SpoolFullError:
            if not self._stats.spool_full:
                self._stats.spool_full = True
                log.warning("spool full; holding acks so the broker keeps the messages")
            return False
        except StorageError as exc:
            # The disk refused: like a full spool, the batch stays with us, unacked.
            if not self._stats.spool_full:
                self._stats.spool_full = True
                log.error("spool cannot write; holding acks", extra={"error": str(exc)})
            return False
        self._stats.readings_spooled += readings
        self._stats.spool_full = False
        self.update_spool_stats()
        self._spool_changed.set()
        return True

    async def _wait_for_room(self) -> None:
        delay = max(0.05, min(1.0, self._down_until - time.monotonic()))
        await asyncio.sleep(delay)

    async def run_replay(self) -> None:
        """Write spooled batches back, oldest first, while live data keeps flowing."""
        while True:
            await self._spool_changed.wait()
            wait = self._down_until - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            tx = await asyncio.to_thread(self._spool.begin, 1)
            if not tx:
                self._spool_changed.clear()
                continue
            record = tx.records[0]
            if not await self._replay_record(record.payload, record.weight):
                self._spool.end(tx, acked=False)
                continue
            self._dead.sync()
            await asyncio.to_thread(self._spool.end, tx, acked=True)
            self.update_spool_stats()

    async def _replay_record(self, payload: bytes, readings: int) -> bool:
        """One spooled batch to the output. False: InfluxDB is unavailable, keep it for later.
        True: it is settled, i.e. written, partly written (the refused lines dead-lettered)
        or refused whole (dead-lettered)."""
        try:
            result = await self._replay.write(payload)
        except WriteRejected as exc:
            self._dead_letter([Refusal("influx-rejected", str(exc), body_text(payload).split("\n"))])
            return True
        except (WriteThrottled, WriteRetryable) as exc:
            self._mark_down(exc)
            return False
        self._count_writes(result)
        written = readings - self._dead_letter(result.refusals)
        self._stats.readings_written += written
        self._stats.readings_replayed += written
        self._mark_up()
        return True

    async def drain(self, limit_s: float) -> bool:
        """At shutdown: wait until every sealed batch is written or spooled (and acked)."""
        try:
            await asyncio.wait_for(self.queue.join(), limit_s)
        except TimeoutError:
            log.warning("shutdown: batches still pending; they stay unacked and will be redelivered")
            return False
        return True


def _readings_in(lines: list[str]) -> int:
    """The readings in refused lines (a line holds those of one series and time), leaving out
    agent health and our own metrics, which are not readings."""
    return sum(readings_in(line) for line in lines if line and not line.startswith(OWN_MEASUREMENTS))
