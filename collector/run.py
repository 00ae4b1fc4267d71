"""The collector process: wiring of MQTT in, decoding, batching, InfluxDB/spool out, self-metrics.

`Collector.run(stop)` holds every task in one TaskGroup. Shutdown order matters for
at-least-once: stop taking messages, seal the open batch, let the sink write or spool
every sealed batch and ack it, then disconnect (unacked messages stay with the broker).
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from pathlib import Path

import paho.mqtt.client as paho

from collector.acks import AckLedger, Ticket
from collector.births import BirthStore
from collector.config import CollectorConfig, load_collector_config
from collector.confirm import Confirmer
from collector.deadletter import DeadLetters
from collector.decode import DecodeLimits, Decoder
from collector.ingest import Batch, Ingest, IngestLimits
from collector.metrics import Stats, self_metrics_line, serve_http
from collector.mqtt import MqttLink
from collector.output.influxdb import InfluxOutput
from collector.output.influxdb.compile import NATIVE
from collector.output.influxdb.writer import target_from_config
from collector.output.victoriametrics import VictoriaMetricsOutput
from collector.seqtrack import SeqTracker
from collector.sink import Sink
from collector.spool import Spool
from roadpulse.configfile import ConfigError
from roadpulse.wire import Command, Topics, WireError, encode_command

log = logging.getLogger("collector")

SHUTDOWN_DRAIN_S = 15.0


class Collector:
    """Construction only builds objects and reads local state (births, spool); it connects to nothing."""

    def __init__(self, config: CollectorConfig) -> None:
        self.config = config
        data_dir = config.collector.data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        self.stats = Stats()
        self.http_port: int | None = None
        self._ledger = AckLedger()
        bounds = config.limits
        self._decoder = Decoder(DecodeLimits(
            birth_max_bytes=bounds.birth_max_bytes, birth_max_metrics=bounds.birth_max_metrics,
            births_per_gateway=bounds.births_per_gateway, message_max_readings=bounds.message_max_readings,
            max_gateways=bounds.max_gateways, max_known_metrics=bounds.max_known_metrics))
        self._births = BirthStore(data_dir / "births", bounds.births_per_gateway)
        for birth in self._births.load():
            try:
                self._decoder.learn(birth)
            except (WireError, ValueError) as exc:  # kept before a bound or a name rule refused it
                log.warning("stored birth not loaded", extra={"gateway": birth.gateway, "error": str(exc)})
        self._dead = DeadLetters(data_dir / "deadletters")
        self._spool = Spool(data_dir / "spool", config.spool.max_bytes)
        self._seqs = SeqTracker(grace_s=config.collector.gap_grace_s,
                                count_gaps=config.mqtt.share_group is None)
        self._link = MqttLink(config.mqtt, config.collector.client_id, self._on_message, self._on_connected,
                              on_publish=self._on_publish)
        target = target_from_config(config.influx)
        output = VictoriaMetricsOutput if config.influx.server == "victoriametrics" else InfluxOutput
        self._sink = Sink(live=output(target), replay=output(target), spool=self._spool, dead=self._dead,
                          stats=self.stats, ledger=self._ledger, ack=self._ack, use_gzip=config.influx.gzip)
        limits = IngestLimits(
            batch_max_lines=config.influx.batch_max_lines,
            batch_max_age_s=config.influx.batch_max_age_s,
            batch_max_messages=max(1, config.mqtt.receive_maximum // 2),
            park_timeout_s=config.collector.park_timeout_s,
            decode_max_s=config.limits.decode_max_ms / 1000,
        )
        self._ingest = Ingest(config.mqtt.topic_prefix, limits, decoder=self._decoder, births=self._births,
                              dead=self._dead, seqs=self._seqs, ledger=self._ledger, stats=self.stats,
                              request_rebirth=self._request_rebirth, seal=self._seal)
        self._replay_mark = (time.monotonic(), 0)
        # end-to-end confirmations: noted by the ingest, released by the sink, sent by a task.
        self.confirmer = Confirmer(config.mqtt.topic_prefix, self._link.publish, lambda: self._link.ready)
        self._ingest.confirm = self.confirmer
        self._sink.on_durable = self.confirmer.settled

    # ---- callbacks on the loop thread ----

    def _on_message(self, message: paho.MQTTMessage) -> None:
        self._ingest.on_message(message)

    def _on_publish(self, topic: bytes, qos: int, mid: int, payload: bytes) -> None:
        self._ingest.on_publish(topic, qos, mid, payload, retain=self._link.retained)

    def _on_connected(self, session_present: bool) -> None:
        self._ledger.new_connection()

    def _seal(self, batch: Batch) -> None:
        self._sink.queue.put_nowait(batch)

    def _ack(self, tickets: list[Ticket]) -> None:
        """PUBACK what the ledger released, in order, in one write; QoS 0 needs none."""
        generation = self._ledger.generation
        self._link.ack_many([t.mid for t in tickets if t.qos and t.generation == generation])

    def _request_rebirth(self, gateway: str, boot: str, why: str) -> None:
        command = Command("rebirth", int(time.time() * 1000), why, boot=boot)
        self._link.publish(Topics(gateway, self.config.mqtt.topic_prefix).cmd, encode_command(command))

    # ---- tasks ----

    async def _ticker(self) -> None:
        """Batch age, park timeouts, gap expiry, self-metrics: one timer rather than many."""
        interval = min(0.25, self.config.collector.park_timeout_s / 4, self.config.influx.batch_max_age_s / 4)
        next_metrics = time.monotonic() + self.config.collector.self_metrics_interval_s
        while True:
            await asyncio.sleep(interval)
            now = time.monotonic()
            self._ingest.tick(now)
            self.stats.gaps = self._seqs.gaps
            self._seqs.expire(now)
            self.stats.parked = self._ingest.parked
            self.stats.mqtt_connected = self._link.ready
            self.stats.oldest_unacked_s = self._ledger.oldest_age(now)
            self.stats.births_evicted = self._decoder.births_evicted
            self.stats.dead_letters = self._dead.count
            if now >= next_metrics:
                next_metrics = now + self.config.collector.self_metrics_interval_s
                self._write_self_metrics(now)

    def _write_self_metrics(self, now: float) -> None:
        self._sink.update_spool_stats()
        mark_time, mark_count = self._replay_mark
        if now > mark_time:
            self.stats.replay_rate = (self.stats.readings_replayed - mark_count) / (now - mark_time)
        self._replay_mark = (now, self.stats.readings_replayed)
        self._ingest.add_lines(self_metrics_line(self.stats, self.config.collector.client_id,
                                                 int(time.time() * 1000)))
        self._ingest.add_lines(self.confirmer.metrics_lines(self.config.collector.client_id,
                                                           int(time.time() * 1000)))

    async def _quiet(self, gap_s: float, limit_s: float) -> None:
        """Wait until no message arrived for `gap_s` (messages already on their way get processed)."""
        deadline = time.monotonic() + limit_s
        last = -1
        while time.monotonic() < deadline and last != self.stats.messages_in:
            last = self.stats.messages_in
            await asyncio.sleep(gap_s)

    def healthy(self) -> bool:
        """Connected, room to spool, and no message waiting for its ack too long (a stalled
        ack stops the broker's deliveries after its in-flight window)."""
        return (self._link.ready and not self.stats.spool_full
                and self._ledger.oldest_age(time.monotonic()) <= self.config.collector.unacked_max_age_s)

    async def run(self, stop: asyncio.Event) -> None:
        """Run until `stop` is set, then shut down cleanly (flush, ack what is durable, disconnect)."""
        log.info("collector starting", extra={"client_id": self.config.collector.client_id,
                                              "spooled_batches": self._spool.stats().records,
                                              "hot_loop": "c" if NATIVE else "python"})
        if not NATIVE:
            log.warning("collector._fastlines is not built: readings are formatted in Python, at about "
                        "twice the CPU; install a C compiler and the Python headers, then reinstall")
        try:
            async with asyncio.TaskGroup() as tg:
                link = tg.create_task(self._link.run(), name="collector.mqtt")
                live = tg.create_task(self._sink.run_live(), name="collector.sink.live")
                replay = tg.create_task(self._sink.run_replay(), name="collector.sink.replay")
                ticker = tg.create_task(self._ticker(), name="collector.ticker")
                confirm = tg.create_task(self.confirmer.run(), name="collector.confirm")
                background = [live, replay, ticker, confirm]
                if self.config.http.listen:
                    started: asyncio.Future[int] = asyncio.get_running_loop().create_future()
                    background.append(tg.create_task(
                        serve_http(self.config.http.listen, lambda: self.stats,
                                   self.config.collector.client_id, self.healthy, started),
                        name="collector.http"))
                    self.http_port = await started
                await stop.wait()
                log.info("collector stopping")
                await self._link.leave_share()
                await self._quiet(0.3, limit_s=2.0)
                self._ingest.closed = True
                self._ingest.seal()
                await self._sink.drain(SHUTDOWN_DRAIN_S)
                self.confirmer.flush(float("inf"))  # confirm what the drain made durable
                self._link.request_stop()
                await link
                await self._link.disconnect()
                for task in background:
                    task.cancel()
        finally:
            self._dead.close()
            self._spool.close()
        log.info("collector stopped", extra={"readings_written": self.stats.readings_written})


_STANDARD_ATTRS = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class KeyValueFormatter(logging.Formatter):
    """Plain stdlib logging that still shows the `extra=` fields: `event key=value ...`."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        extras = [f"{k}={v!r}" for k, v in vars(record).items() if k not in _STANDARD_ATTRS]
        return f"{text} {' '.join(extras)}" if extras else text


def run_from_cli(config_path: Path) -> int:
    """Load the config, run until SIGINT/SIGTERM. Exit codes: 0 clean, 2 bad config."""
    if not logging.getLogger().handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(KeyValueFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
        logging.basicConfig(level=logging.INFO, handlers=[handler])
    try:
        config = load_collector_config(config_path)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2

    from roadpulse.lifecycle import run_until_stopped

    # SIGTERM: graceful stop, bounded (roadpulse.lifecycle).
    return run_until_stopped(lambda stop: Collector(config).run(stop))


if __name__ == "__main__":
    sys.exit(run_from_cli(Path(sys.argv[1])))
