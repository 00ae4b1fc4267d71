"""`roadpulse roadstate run`: MQTT readings in, road_state and incident points out, nothing lost on restart.

Why a separate service and not a collector stage: the collector's job is to store every
reading fast and its hot path is tuned for that; road state needs per-road memory
(detector histories, open incidents) and a few milliseconds per interval of arithmetic.
As its own MQTT client with its own persistent session it can neither slow the
collector nor lose the collector's data, and it can be stopped, upgraded or scaled
apart from it.

Why nothing is lost or duplicated: messages are acknowledged to the broker (manual
PUBACK) only after (1) the intervals they closed are written to InfluxDB and (2) a
checkpoint holding everything the service remembers (open bins, detector state, open
incidents, births) has been renamed into place. A crash before the ack makes the
broker redeliver; redelivered readings land in the same bins (latest-per-field, so
idempotent) or in intervals already closed (counted as late and skipped), and any
point written again has the same series and timestamp, so InfluxDB overwrites it.

The MQTT client's network loop runs in paho's thread and only hands messages over a
queue; everything else happens in one thread, in order.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import urlparse

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from roadpulse.backoff import Backoff
from roadpulse.wire import Birth, DataBatch, WireError, decode, parse_topic
from roadstate.assembler import Assembler, Key
from roadstate.config import RoadstateConfig, load_config
from roadstate.engine import RoadEngine, RoadParams
from roadstate.influx import InfluxWriter, WriteRejectedError, WriteRetryableError, incident_line, road_state_line
from roadstate.state import segments_of

log = logging.getLogger("roadstate")
CHECKPOINT = "checkpoint.json"
MAX_WAITING = 10_000  # data messages held for a birth that has not come yet


@dataclass(frozen=True, slots=True)
class Inbound:
    mid: int
    qos: int
    topic: str
    payload: bytes


class RoadstateService:
    def __init__(self, config: RoadstateConfig) -> None:
        self.config = config
        svc = config.roadstate
        self.data_dir = svc.data_dir
        self.assembler = Assembler(svc.interval_s, svc.lateness_s, svc.measurement)
        self.engines: dict[Key, RoadEngine] = {}
        self.writer = InfluxWriter(config.influxdb.url, config.influxdb.database, config.influxdb.timeout_s)
        self.inbox: queue.Queue[Inbound] = queue.Queue()
        self.unacked: list[Inbound] = []
        self.waiting: dict[str, list[Inbound]] = {}
        self.stop_event = threading.Event()
        self.stats = {"messages": 0, "malformed": 0, "points_written": 0, "points_rejected": 0,
                      "incidents": 0, "intervals_closed": 0}
        self._engine_state: dict[str, Any] = {}
        self._load_checkpoint()

    # --- state ---------------------------------------------------------------------------
    def _load_checkpoint(self) -> None:
        path = self.data_dir / CHECKPOINT
        if not path.exists():
            return
        state = json.loads(path.read_text(encoding="utf-8"))
        self.assembler.restore(state["assembler"])
        self._engine_state = state.get("engines", {})
        self.stats.update(state.get("stats", {}))
        for key in self.assembler.stations:
            self._engine(key)
        log.info("roadstate resumed from checkpoint",
                 extra={"roads": len(self.engines), "closed": self.stats["intervals_closed"]})

    def _write_checkpoint(self) -> None:
        for key, engine in self.engines.items():
            self._engine_state[f"{key[0]}|{key[1]}"] = engine.snapshot()
        state = {"assembler": self.assembler.snapshot(), "engines": self._engine_state, "stats": self.stats}
        self.data_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.data_dir / (CHECKPOINT + ".tmp")
        with tmp.open("w", encoding="utf-8") as fh:
            json.dump(state, fh, separators=(",", ":"))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.data_dir / CHECKPOINT)

    def _engine(self, key: Key) -> RoadEngine:
        """The road direction's engine, rebuilt (state carried over) when a station joins."""
        stations = self.assembler.stations.get(key, {})
        engine = self.engines.get(key)
        if engine is not None and len(engine.stations) == len(stations):
            return engine
        road = self.config.road(*key)
        svc = self.config.roadstate
        params = RoadParams(road.free_flow_kmh, road.capacity_veh_h_lane, road.effective_length_m, svc.interval_s)
        segments = segments_of(key[0], key[1], list(stations.items()), increasing=road.km_increasing)
        fresh = RoadEngine(segments, params, svc.algorithms, stations=stations)
        saved = engine.snapshot() if engine is not None else self._engine_state.get(f"{key[0]}|{key[1]}")
        if saved:
            fresh.restore(saved)
        self.engines[key] = fresh
        log.info("road segments", extra={"road": key[0], "direction": key[1], "segments": len(segments)})
        return fresh

    # --- messages ------------------------------------------------------------------------
    def handle(self, msg: Inbound) -> None:
        self.stats["messages"] += 1
        parsed = parse_topic(msg.topic, self.config.mqtt.prefix)
        if parsed is None:
            self.unacked.append(msg)
            return
        gateway, kind = parsed
        try:
            decoded = decode(msg.payload)
        except WireError as exc:
            self.stats["malformed"] += 1
            log.warning("malformed message set aside", extra={"topic": msg.topic, "reason": exc.reason})
            self._set_aside(msg, exc.reason)
            self.unacked.append(msg)
            return
        if kind == "birth" and isinstance(decoded, Birth):
            for station in self.assembler.on_birth(decoded):
                log.info("detector station found", extra={"station": station})
            self.unacked.append(msg)
            for waited in self.waiting.pop(gateway, []):
                self.handle(waited)
        elif kind == "data" and isinstance(decoded, DataBatch):
            if not self.assembler.knows(gateway):
                held = self.waiting.setdefault(gateway, [])
                if len(held) < MAX_WAITING:
                    held.append(msg)  # not acknowledged: redelivered if we stop before its birth comes
                return
            self.assembler.add(decoded)
            self.unacked.append(msg)
        else:
            self.unacked.append(msg)

    def _set_aside(self, msg: Inbound, reason: str) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with (self.data_dir / "malformed.jsonl").open("a", encoding="utf-8") as fh:
            fh.write(json.dumps({"topic": msg.topic, "reason": reason, "payload": msg.payload.hex()}) + "\n")

    def close_intervals(self) -> list[str]:
        lines: list[str] = []
        for key in list(self.assembler.stations):
            engine = self._engine(key)
            for index in self.assembler.closable(key):
                t_ms, stations = self.assembler.take(key, index)
                out = engine.step(t_ms, stations)
                self.stats["intervals_closed"] += 1
                lines += [road_state_line(row) for row in out.segments]
                for event in out.incidents:
                    lines.append(incident_line(event))
                    if event.end_ms is None:
                        self.stats["incidents"] += 1
                        log.warning("incident", extra={"id": event.id, "kp": event.kp,
                                                       "confidence": event.confidence})
                    else:
                        log.info("incident cleared", extra={"id": event.id})
        return lines

    def flush(self, client: mqtt.Client | None) -> None:
        """Close what can be closed, write it, checkpoint, then acknowledge: in that order."""
        lines = self.close_intervals()
        backoff = Backoff(cap=10.0)
        while lines:
            try:
                self.writer.write(lines)
                self.stats["points_written"] += len(lines)
                break
            except WriteRejectedError as exc:
                self.stats["points_rejected"] += len(lines)
                log.error("InfluxDB rejected road-state points", extra={"error": str(exc), "points": len(lines)})
                break
            except WriteRetryableError as exc:
                delay = backoff.next()
                log.warning("InfluxDB write failed, retrying", extra={"error": str(exc), "in_s": round(delay, 1)})
                if self.stop_event.wait(delay):
                    return  # stopping: nothing acknowledged, the checkpoint not advanced
        self._write_checkpoint()
        if client is not None:
            for msg in self.unacked:
                if msg.qos:
                    client.ack(msg.mid, msg.qos)
        self.unacked.clear()

    # --- run ------------------------------------------------------------------------------
    def run(self) -> None:
        mq = self.config.mqtt
        url = urlparse(mq.url)
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=mq.client_id, clean_session=False,
                             manual_ack=True)
        filters = [(f"{mq.prefix}/+/birth", 1), (f"{mq.prefix}/+/data", 1)]

        def on_connect(c: mqtt.Client, _u: object, _f: object, rc: Any, _p: object = None) -> None:
            log.info("connected to broker", extra={"rc": str(rc)})
            c.subscribe(filters)

        def on_subscribe(_c: mqtt.Client, _u: object, _mid: int, codes: Any, _p: object = None) -> None:
            log.info("subscribed", extra={"filters": [f for f, _ in filters], "codes": [str(c) for c in codes]})

        def on_disconnect(_c: mqtt.Client, _u: object, _f: object, rc: Any, _p: object = None) -> None:
            log.warning("disconnected from broker", extra={"rc": str(rc)})

        def on_message(_c: mqtt.Client, _u: object, m: mqtt.MQTTMessage) -> None:
            self.inbox.put(Inbound(m.mid, m.qos, m.topic, bytes(m.payload)))

        client.on_connect = on_connect
        client.on_disconnect = on_disconnect
        client.on_subscribe = on_subscribe
        client.on_message = on_message
        client.reconnect_delay_set(1, 30)
        client.connect_async(url.hostname or "127.0.0.1", url.port or 1883, mq.keepalive_s)
        client.loop_start()
        log.info("roadstate running", extra={"client_id": mq.client_id, "algorithms": self.config.roadstate.algorithms})
        last_flush = time.monotonic()
        try:
            while not self.stop_event.is_set():
                with contextlib.suppress(queue.Empty):
                    self.handle(self.inbox.get(timeout=0.2))
                # The broker lets ~100 messages wait for their acks (max_inflight_messages): flush
                # before that fills, when caught up, or at the latest every flush_s.
                since = time.monotonic() - last_flush
                due = since >= self.config.roadstate.flush_s or (self.inbox.empty() and since >= 0.1)
                if self.unacked and (due or len(self.unacked) >= 80):
                    self.flush(client)
                    last_flush = time.monotonic()
            self.flush(client)
        finally:
            client.disconnect()
            client.loop_stop()
            log.info("roadstate stopped", extra=dict(self.stats))


def run_from_cli(path: Path) -> int:
    service = RoadstateService(load_config(path))

    def stop(_sig: int, _frame: FrameType | None) -> None:
        service.stop_event.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    service.run()
    return 0
