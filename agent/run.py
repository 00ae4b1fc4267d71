"""The agent: poll devices, persist readings, publish them, report on itself.

One TaskGroup holds every long-running piece, each a named task: a poll task per
device (agent.schedule.poll_forever), the commit task (group commit of the durable
queue, one fsync per interval), the publisher (MQTT session, live-first delivery and
replay, command listener) and the health task. Stopping cancels the polls, seals and
commits what was taken, lets the publisher send what is live, publish a clean death
and disconnect.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import dataclasses
import logging
import secrets
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from agent.birth import BirthStore, HealthAliases, health_aliases, make_birth
from agent.catalog import Catalog, DeviceEntry, build_catalog
from agent.clock import ClockJudge, corrected, kernel_clock_synchronised, split_at_jump
from agent.config import AgentConfig, load_agent_config
from agent.health import ProcessSampler, health_readings, latency_summary
from agent.publisher import Publisher, PublishStats
from agent.queue import DurableQueue, Record, SegmentQueue, StorageError
from agent.queue.batcher import Batcher, Sealed
from agent.schedule import DeviceStats, poll_forever
from agent.sources.base import Source
from roadpulse.wire import DataBatch, Death, Reading, TimeFlag, Topics, decode, encode_birth, encode_data, encode_death

log = logging.getLogger(__name__)
OnTaken = Callable[[list[Reading]], None]
# After stop: time for the publisher to send live records, publish the clean death and disconnect.
SHUTDOWN_GRACE_S = 15.0
SourceFactory = Callable[[DeviceEntry], Source]


@dataclass(slots=True)
class AgentStats:
    readings_taken: int = 0
    readings_acked: int = 0
    messages_published: int = 0
    queue_readings: int = 0
    queue_bytes: int = 0
    readings_evicted: int = 0
    # Readings never persisted because the disk refused them for too long (never counted as taken).
    readings_dropped: int = 0
    reconnects: int = 0
    storage_errors: int = 0
    health_published: int = 0
    disk_bytes_written: int = 0
    devices: dict[str, DeviceStats] = field(default_factory=dict)


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


def _mono_ms() -> int:
    return time.monotonic_ns() // 1_000_000


class Agent:
    def __init__(self, config: AgentConfig, config_path: Path | None = None, *,
                 on_taken: OnTaken | None = None, source_factory: SourceFactory | None = None) -> None:
        self.config = config
        self.catalog: Catalog = build_catalog(config, config_path)
        self.stats = AgentStats()
        self.boot = secrets.token_hex(8)
        self.topics = Topics(config.agent.gateway_id, config.mqtt.topic_prefix)
        data_dir = config.agent.data_dir
        if config_path is not None and not data_dir.is_absolute():
            data_dir = config_path.parent / data_dir
        self.data_dir = data_dir
        self.health: HealthAliases = health_aliases(self.catalog)
        self._on_taken = on_taken
        self._source_factory = source_factory
        self._judge = ClockJudge()
        publish = config.publish
        # A sealed batch must fit the queue with room to spare.
        self._batcher = Batcher(publish.max_readings, min(publish.max_bytes, config.queue.max_bytes // 4),
                                publish.max_age_s)
        self._seq = 0
        self._health_seq = 0
        # Readings staged in the queue, reported to on_taken once their commit is durable.
        self._staged: dict[int, list[Reading]] = {}
        # (first record id, clock epoch), ascending: which epoch a record of this process was sealed in.
        self._epochs: list[tuple[int, int]] = []
        self._queue: DurableQueue | None = None
        # Births of this and earlier boots on disk; records from `_first_id` on are this boot's.
        self._births: BirthStore | None = None
        self._first_id = 0
        self._birth_stored = False
        self._birth_store_failing = False
        self._publisher: Publisher | None = None
        self.publish_stats = PublishStats()
        self._storage_failing = False
        self._queue_full = False

    # ---- taking readings --------------------------------------------------------------------

    async def _emit(self, readings: list[Reading]) -> None:
        self.take(readings)

    def take(self, readings: list[Reading]) -> None:
        """Stage readings from a poll; they count as taken once committed to the queue."""
        now = _wall_ms()
        was_unsynced = self._judge.unsynced
        kernel = kernel_clock_synchronised() if self.config.agent.clock_sync_check == "kernel" else None
        jump = self._judge.observe(now, _mono_ms(), kernel)
        if jump is not None:
            log.warning("wall clock stepped", extra={"event": "clock_step", "delta_ms": jump.delta_ms})
            before, readings = split_at_jump(readings, jump, now)
            self._seal_all()
            base = TimeFlag.UNSYNCED if was_unsynced else TimeFlag.NONE
            self._stage_groups(before, jump.old_epoch, now - jump.delta_ms, base)
            self._seal_all()
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

    def _seal_all(self) -> None:
        sealed = self._batcher.seal()
        if sealed is not None:
            self._store(sealed)

    def _store(self, sealed: Sealed) -> None:
        assert self._queue is not None, "readings are only taken while run() holds the queue"
        if not self._birth_stored:
            self._store_birth()
        batch = DataBatch(self.topics.gateway, self.boot, self._seq, _wall_ms(), sealed.readings,
                          time_flags=sealed.flags)
        record_id = self._queue.append(encode_data(batch, self.catalog.decimals), weight=len(sealed.readings),
                                       ts_ms=min(r.ts_ms for r in sealed.readings))
        self._staged[record_id] = sealed.readings
        if not self._epochs or self._epochs[-1][1] != sealed.epoch:
            self._epochs.append((record_id, sealed.epoch))
        self._seq += 1

    def _store_birth(self) -> None:
        """Persist this boot's birth before its first batch, so a replay after a restart can send it."""
        if self._births is None:
            return
        try:
            self._births.save(self.boot, self._first_id, self._birth_payload())
        except OSError as exc:
            # The batch is stored all the same; a collector may ask for this birth in vain later.
            if not self._birth_store_failing:
                self._birth_store_failing = True
                log.error("cannot store the birth", extra={"event": "birth_store_failed", "error": str(exc)})
            return
        self._birth_stored = True

    # ---- committing ---------------------------------------------------------------------------

    def commit(self) -> None:
        """Seal batches that reached their age, write and fsync the queue once, report what was taken."""
        assert self._queue is not None
        sealed = self._batcher.seal_due(time.monotonic())
        if sealed is not None:
            self._store(sealed)
        try:
            result = self._queue.commit()
        except StorageError as err:
            self.stats.storage_errors += 1
            for record_id in err.dropped:
                self.stats.readings_dropped += len(self._staged.pop(record_id, []))
            if not self._storage_failing:
                self._storage_failing = True
                log.error("queue cannot write to disk", extra={"event": "storage_down", "reason": err.reason})
            self._refresh_stats()
            return
        if self._storage_failing:
            self._storage_failing = False
            log.info("queue writes again", extra={"event": "storage_up"})
        for record_id in result.committed:
            readings = self._staged.pop(record_id, None)
            if readings is None:
                continue
            self.stats.readings_taken += len(readings)
            if self._on_taken is not None:
                self._on_taken(readings)
        self._refresh_stats()
        if result.committed and self._publisher is not None:
            self._publisher.notify()

    def _refresh_stats(self) -> None:
        assert self._queue is not None
        q = self._queue.stats()
        s = self.stats
        s.queue_readings = q.weight
        s.queue_bytes = q.bytes
        if q.evicted_weight > s.readings_evicted and not self._queue_full:
            self._queue_full = True
            log.warning("queue full: evicting the oldest readings", extra={"event": "queue_full"})
        elif self._queue_full and q.bytes < self.config.queue.max_bytes // 2:
            self._queue_full = False
            log.info("queue below half full again", extra={"event": "queue_ok"})
        s.readings_evicted = q.evicted_weight
        if self._births is not None:
            self._births.prune(oldest_id=q.oldest_id, current_boot=self.boot, current_first_id=self._first_id)
        s.disk_bytes_written = q.bytes_written
        p = self.publish_stats
        s.readings_acked = p.readings_acked
        s.messages_published = p.messages_published
        s.reconnects = p.reconnects

    async def _commit_forever(self) -> None:
        interval = self.config.queue.commit_interval_s
        while True:
            await asyncio.sleep(interval)
            self.commit()

    # ---- what the publisher sends -------------------------------------------------------------

    def _birth_payload(self) -> bytes:
        flags = TimeFlag.UNSYNCED if self._judge.unsynced else TimeFlag.NONE
        return encode_birth(make_birth(self.catalog, self.health, gateway=self.topics.gateway, boot=self.boot,
                                       next_seq=self._seq, ts_ms=_wall_ms(), time_flags=flags))

    def _death_payload(self, clean: bool) -> bytes:
        return encode_death(Death(self.topics.gateway, self.boot, _wall_ms(), clean))

    def _prepare(self, record: Record, replay: bool) -> bytes:
        """The payload to send for a queued record: as stored, unless replayed or its clock was corrected."""
        epoch = self._epoch_of(record.id)
        delta = self._judge.correction(epoch) if epoch is not None else None
        if not replay and not delta:
            return record.payload
        batch = decode(record.payload)
        if not isinstance(batch, DataBatch):
            return record.payload
        if delta:
            batch = corrected(batch, delta, self._judge, _wall_ms())
        if replay:
            batch = dataclasses.replace(batch, replay=True)
        # Decoded from the queue, its values are wire values (scaled ints already): no decimals again.
        return encode_data(batch)

    def _boot_of(self, record: Record) -> str | None:
        """The earlier boot a queued record was sealed under; None for this boot's (or an unknown one)."""
        if record.id >= self._first_id or self._births is None:
            return None
        boot = self._births.boot_of(record.id)
        return boot if boot != self.boot else None

    def _earlier_birth(self, boot: str) -> bytes | None:
        """The stored birth of an earlier boot, or None for this boot or one no longer (or never) stored."""
        if boot == self.boot or self._births is None:
            return None
        return self._births.load(boot)

    def _epoch_of(self, record_id: int) -> int | None:
        """The clock epoch a record was sealed in, or None for records of an earlier process."""
        index = bisect.bisect_right(self._epochs, (record_id, sys.maxsize)) - 1
        return self._epochs[index][1] if index >= 0 else None

    def _acked(self, record: Record) -> None:
        self._refresh_stats()

    # ---- health ---------------------------------------------------------------------------------

    def health_payload(self, sampler: ProcessSampler) -> bytes:
        assert self._queue is not None
        self._refresh_stats()
        q = self._queue.stats()
        now = _wall_ms()
        mean, peak = latency_summary(self.publish_stats.latency_ms)
        self.publish_stats.latency_ms.clear()
        s = self.stats
        values: dict[str, int | float] = {
            "queue_readings": s.queue_readings, "queue_bytes": s.queue_bytes,
            "oldest_unsent_age_s": round((now - q.oldest_ts_ms) / 1000, 3) if q.oldest_ts_ms else 0.0,
            "readings_taken": s.readings_taken, "readings_acked": s.readings_acked,
            "readings_evicted": s.readings_evicted, "readings_dropped": s.readings_dropped,
            "messages_published": s.messages_published, "publish_latency_ms": mean,
            "publish_latency_max_ms": peak, "reconnects": s.reconnects, "storage_errors": s.storage_errors,
            "queue_damaged_bytes": q.damaged_bytes, "disk_bytes_written": q.bytes_written,
            "clock_flags": int(TimeFlag.UNSYNCED if self._judge.unsynced else 0),
            "clock_jumps": self._judge.jumps, **sampler.sample(),
        }
        devices = {
            dev: {"polls": d.polls, "poll_errors": d.errors, "poll_overruns": d.overruns}
            for dev, d in s.devices.items()
        }
        batch = DataBatch(self.topics.gateway, self.boot, self._health_seq, now,
                          health_readings(self.health, values, devices, now), kind="health")
        self._health_seq += 1
        return encode_data(batch, {m.alias: m.decimals for m in self.health.metrics if m.decimals is not None})

    async def _health_forever(self) -> None:
        sampler = ProcessSampler(self.data_dir)
        while True:
            await asyncio.sleep(self.config.agent.health_interval_s)
            assert self._publisher is not None
            if await self._publisher.publish_health(self.topics.health, self.health_payload(sampler)):
                self.stats.health_published += 1

    # ---- the run loop --------------------------------------------------------------------------

    def _make_sources(self) -> tuple[dict[str, Source], list[Callable[[], None]]]:
        closers: list[Callable[[], None]] = []
        if self._source_factory is not None:
            return {e.device.id: self._source_factory(e) for e in self.catalog.devices}, closers
        from agent.bus import build_buses
        from agent.sources import create_source

        buses = build_buses(self.config)
        closers.extend(bus.close for bus in buses.values())
        sources = {
            e.device.id: create_source(e, bus=buses[e.device.bus] if e.device.bus else None)
            for e in self.catalog.devices
        }
        return sources, closers

    async def run(self, stop: asyncio.Event) -> None:
        """Run until `stop` is set; return after a clean shutdown (queue committed, death sent)."""
        sources, closers = self._make_sources()
        try:
            queue = SegmentQueue.open(self.data_dir / "queue", max_bytes=self.config.queue.max_bytes)
        except BaseException:
            await self._close_sources(sources, closers)
            raise
        try:
            self._births = BirthStore.open(self.data_dir / "births")
        except BaseException:
            queue.close()
            await self._close_sources(sources, closers)
            raise
        self._queue = queue
        self._first_id = queue.next_id
        self._refresh_stats()
        publisher_stop = asyncio.Event()
        publisher = self._publisher = Publisher(
            self.config.mqtt, self.topics, queue, birth=self._birth_payload, death=self._death_payload,
            prepare=self._prepare, on_acked=self._acked,
            replay_per_s=self.config.publish.replay_messages_per_s, stats=self.publish_stats,
            boot_of=self._boot_of, earlier_birth=self._earlier_birth,
        )
        log.info("agent starting", extra={"event": "start", "gateway": self.topics.gateway, "boot": self.boot,
                                          "queued_readings": queue.stats().weight,
                                          "earlier_boots": len(self._births.boots)})
        try:
            async with asyncio.TaskGroup() as tg:
                sender = tg.create_task(publisher.run(publisher_stop), name="publisher")
                workers = [tg.create_task(self._commit_forever(), name="commit"),
                           tg.create_task(self._health_forever(), name="health")]
                for entry in self.catalog.devices:
                    stats = self.stats.devices.setdefault(entry.device.id, DeviceStats())
                    workers.append(tg.create_task(
                        poll_forever(entry, sources[entry.device.id], self._emit, bus_lock=None, stats=stats),
                        name=f"poll[{entry.device.id}]"))
                await stop.wait()
                for task in workers:
                    task.cancel()
                await asyncio.wait(workers)
                self._seal_all()
                self.commit()
                publisher_stop.set()
                publisher.notify()
                # A connect attempt on a dead 4G link can hang for a while: do not wait for it forever.
                _done, pending = await asyncio.wait([sender], timeout=SHUTDOWN_GRACE_S)
                if pending:
                    sender.cancel()
        finally:
            await self._close_sources(sources, closers)
            with contextlib.suppress(StorageError):
                queue.commit(settle=True)  # the acks of the last deliveries
            self._refresh_stats()
            queue.close()
            self._queue = None
            log.info("agent stopped", extra={"event": "stop", "taken": self.stats.readings_taken,
                                             "acked": self.stats.readings_acked})

    async def _close_sources(self, sources: dict[str, Source], closers: list[Callable[[], None]]) -> None:
        # Best effort at shutdown: a driver failing to close must not keep the queue from closing.
        for source in sources.values():
            with contextlib.suppress(Exception):
                await source.close()
        for close in closers:
            with contextlib.suppress(Exception):
                close()


def run_from_cli(config_path: Path) -> int:
    """`roadpulse agent run -c FILE`: run until SIGINT/SIGTERM. 0 after a clean stop, 2 for a bad config."""
    from roadpulse.configfile import ConfigError
    from roadpulse.lifecycle import run_until_stopped

    try:
        config = load_agent_config(config_path)
        agent = Agent(config, config_path)
    except (ConfigError, FileNotFoundError) as err:
        print(err, file=sys.stderr)
        return 2
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    # A file-size limit (RLIMIT_FSIZE) must surface as EFBIG from write(), not kill the agent.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

    return run_until_stopped(agent.run)  # SIGTERM: graceful stop, bounded (roadpulse.lifecycle)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: python -m agent.run CONFIG.toml", file=sys.stderr)
        sys.exit(2)
    sys.exit(run_from_cli(Path(sys.argv[1])))
