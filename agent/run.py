"""The agent: poll devices, persist readings, publish them, report on itself.

One TaskGroup holds every long-running piece, each a named task: a poll task per
device (agent.schedule.poll_forever), the commit task (group commit of the durable
queue, one fsync per interval), the publisher (MQTT session, live-first delivery and
replay, command listener) and the health task. Stopping cancels the polls, seals and
commits what was taken, lets the publisher send what is live, publish a clean death
and disconnect.

Readings go in through agent.intake, are stored and handed to the publisher by
agent.outbox, and everything is counted in one agent.stats.AgentStats.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import signal
import sys
import time
from pathlib import Path

from agent.birth import BirthStore, HealthAliases, health_aliases
from agent.catalog import Catalog, build_catalog
from agent.clock import ClockJudge
from agent.config import AgentConfig, load_agent_config
from agent.confirmations import ConfirmPolicy
from agent.health import ProcessSampler, delivery_values, health_readings, latency_summary
from agent.intake import Intake, OnTaken
from agent.outbox import Outbox
from agent.publisher import Publisher
from agent.queue import DurableQueue, SegmentQueue, StorageError
from agent.queue.batcher import Batcher
from agent.schedule import DeviceStats, poll_forever
from agent.sources import SourceFactory, Sources, open_sources
from agent.stats import AgentStats
from roadpulse.wire import DataBatch, Reading, TimeFlag, Topics, encode_data

log = logging.getLogger(__name__)
# After stop: time for the publisher to send live records, publish the clean death and disconnect.
SHUTDOWN_GRACE_S = 15.0


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


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
        self._health_seq = 0
        # Set by `attach` (run() does it with the queue on disk): the queue's two sides.
        self.outbox: Outbox | None = None
        self.intake: Intake | None = None
        self._publisher: Publisher | None = None

    def attach(self, queue: DurableQueue, births: BirthStore | None = None) -> Intake:
        """Take readings into `queue` from now on; the publisher sends out of it."""
        publish = self.config.publish
        confirm = ConfirmPolicy(publish.confirm_timeout_s, publish.confirm_timeout_max_s, publish.confirm_warn_s,
                                publish.unconfirmed_max) if publish.delivery == "end-to-end" else None
        self.outbox = Outbox(queue, births, catalog=self.catalog, health=self.health, topics=self.topics,
                             boot=self.boot, judge=self._judge, stats=self.stats,
                             max_bytes=self.config.queue.max_bytes, confirm=confirm)
        # A sealed batch must fit the queue with room to spare.
        batcher = Batcher(publish.max_readings, min(publish.max_bytes, self.config.queue.max_bytes // 4),
                          publish.max_age_s)
        self.intake = Intake(self.outbox, batcher, self._judge, self.stats,
                             ask_kernel=self.config.agent.clock_sync_check == "kernel", on_taken=self._on_taken)
        return self.intake

    async def _emit(self, readings: list[Reading]) -> None:
        assert self.intake is not None, "readings are only taken while run() holds the queue"
        self.intake.take(readings)

    async def _commit_forever(self, intake: Intake, publisher: Publisher) -> None:
        interval = self.config.queue.commit_interval_s
        while True:
            await asyncio.sleep(interval)
            if intake.commit():
                publisher.notify()

    # ---- health ---------------------------------------------------------------------------------

    def health_payload(self, sampler: ProcessSampler) -> bytes:
        assert self.outbox is not None, "health is reported while run() holds the queue"
        self.outbox.refresh()
        q = self.outbox.queue.stats()
        now = _wall_ms()
        mean, peak = latency_summary(self.stats.latency_ms)
        self.stats.latency_ms.clear()
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
            "clock_jumps": self._judge.jumps, **delivery_values(s), **sampler.sample(),
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
        interval = self.config.agent.health_interval_s
        loop = asyncio.get_running_loop()
        due = loop.time() + interval
        while True:
            # On a fixed schedule, not `interval` after the last PUBACK: on a slow link the round
            # trip would stretch every interval (the health rules count reports per interval).
            await asyncio.sleep(max(0.0, due - loop.time()))
            due = max(due + interval, loop.time())  # behind (a long PUBACK): the next one goes at once, no burst
            assert self._publisher is not None
            if await self._publisher.publish_health(self.topics.health, self.health_payload(sampler)):
                self.stats.health_published += 1

    # ---- the run loop --------------------------------------------------------------------------

    def _make_sources(self) -> Sources:
        if self._source_factory is not None:
            return Sources({e.device.id: self._source_factory(e) for e in self.catalog.devices}, [])
        return open_sources(self.catalog.devices, self.config)

    async def run(self, stop: asyncio.Event) -> None:
        """Run until `stop` is set; return after a clean shutdown (queue committed, death sent)."""
        sources = self._make_sources()
        try:
            queue = SegmentQueue.open(self.data_dir / "queue", max_bytes=self.config.queue.max_bytes)
        except BaseException:
            await sources.close()
            raise
        try:
            births = BirthStore.open(self.data_dir / "births")
        except BaseException:
            queue.close()
            await sources.close()
            raise
        intake = self.attach(queue, births)
        assert self.outbox is not None
        self.outbox.refresh()
        publisher_stop = asyncio.Event()
        publisher = self._publisher = Publisher(
            self.config.mqtt, self.topics, self.outbox,
            replay_per_s=self.config.publish.replay_messages_per_s, stats=self.stats,
            confirmations=self.outbox if self.outbox.unconfirmed is not None else None,
        )
        log.info("agent starting", extra={"event": "start", "gateway": self.topics.gateway, "boot": self.boot,
                                          "queued_readings": queue.stats().weight,
                                          "earlier_boots": len(births.boots)})
        try:
            async with asyncio.TaskGroup() as tg:
                sender = tg.create_task(publisher.run(publisher_stop), name="publisher")
                workers = [tg.create_task(self._commit_forever(intake, publisher), name="commit"),
                           tg.create_task(self._health_forever(), name="health")]
                for entry in self.catalog.devices:
                    stats = self.stats.devices.setdefault(entry.device.id, DeviceStats())
                    workers.append(tg.create_task(
                        poll_forever(entry, sources.by_device[entry.device.id], self._emit, stats=stats),
                        name=f"poll[{entry.device.id}]"))
                await stop.wait()
                for task in workers:
                    task.cancel()
                await asyncio.wait(workers)
                intake.seal_all()
                intake.commit()
                publisher_stop.set()
                publisher.notify()
                # A connect attempt on a dead 4G link can hang for a while: do not wait for it forever.
                _done, pending = await asyncio.wait([sender], timeout=SHUTDOWN_GRACE_S)
                if pending:
                    sender.cancel()
        finally:
            await sources.close()
            with contextlib.suppress(StorageError):
                queue.commit(settle=True)  # the acks of the last deliveries
            self.outbox.refresh()
            queue.close()
            log.info("agent stopped", extra={"event": "stop", "taken": self.stats.readings_taken,
                                             "acked": self.stats.readings_acked})


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
