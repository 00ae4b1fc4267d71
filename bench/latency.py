"""Section 4: sensor timestamp -> queryable in InfluxDB, under a background g60 load.

A probe gateway publishes one reading every `every` s, stamped with the wall clock when it
is sent (the sensor's timestamp), through the same broker and collector as the load. A
poller asks InfluxDB every 20 ms which probe readings it can answer; a probe's latency is
the first answer that holds it minus its timestamp.
"""

from __future__ import annotations

import math
import statistics
import threading
import time
from typing import Any
from urllib.parse import urlparse

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from bench.stack import BenchError, finish_load
from bench.system import Stack
from roadpulse.services import influx_query
from roadpulse.wire import Birth, DataBatch, MetricDef, Reading, Topics, encode_birth, encode_data

PROBE = "latprobe-gw"


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]



def latency(stack: Stack, rate: float, duration: float, every: float = 0.1) -> dict[str, Any]:
    prefix, db = "blat/v1", "latency"
    collector = stack.collector("latency-collector", db, prefix).start()
    topics = Topics(PROBE, prefix)
    url = urlparse(stack.broker.url)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-latency-probe")
    client.connect(url.hostname or "127.0.0.1", url.port or 1883)
    client.loop_start()
    boot = "0" * 16
    metric = MetricDef(0, "probe", "latprobe", "v", "", "i")
    birth = Birth(PROBE, boot, 0, int(time.time() * 1000), "bench", "bench",
                  [{"id": "probe", "profile": "bench", "driver": "bench", "tags": {}}], [metric])
    client.publish(topics.birth, encode_birth(birth), qos=1, retain=True).wait_for_publish(10)
    time.sleep(0.5)
    sent: dict[int, float] = {}  # probe value -> its timestamp (s)
    seen: dict[int, float] = {}
    stop = threading.Event()
    first_ms = int(time.time() * 1000)

    def poll() -> None:
        while not stop.is_set() or len(seen) < len(sent):
            try:
                body = influx_query(stack.influx.url, f'SELECT "v" FROM "latprobe" WHERE time >= {first_ms}ms', db)
            except OSError:
                body = {}
            now = time.time()
            for result in body.get("results", []):
                for series in result.get("series", []) or []:
                    for _ts, value in series["values"]:
                        seen.setdefault(int(value), now)
            if stop.is_set() and time.time() > deadline:
                return
            time.sleep(0.02)

    deadline = float("inf")
    poller = threading.Thread(target=poll, name="latency-poller")
    poller.start()
    load_proc = None
    try:
        load = stack.load(rate, duration, prefix, max_gateways=400, gateway_prefix="latgw")
        summary = stack.work / "load-latency.json"
        load_proc = load.start(stack.broker.url, summary)
        time.sleep(min(1.0, duration / 4))  # let the load reach its rate
        began = time.monotonic()
        seq = 1
        while time.monotonic() - began < duration * 0.8:
            ts_ms = int(time.time() * 1000)
            sent[seq] = ts_ms / 1000
            client.publish(topics.data, encode_data(DataBatch(PROBE, boot, seq, ts_ms, [Reading(0, ts_ms, seq)])),
                           qos=1)
            seq += 1
            time.sleep(every)
        report = finish_load(load_proc, summary, allow_unacked=True)
        load_proc = None
    finally:
        deadline = time.time() + 15
        stop.set()
        poller.join()
        client.loop_stop()
        client.disconnect()
        if load_proc is not None:
            load_proc.kill()
            load_proc.wait()
        collector.stop()
    if not sent:
        raise BenchError("no latency probe was sent")
    lat = [seen[k] - sent[k] for k in sent if k in seen]
    return {"asked_per_s": rate, "offered_per_s": report["readings_acked"] / max(report["publish_elapsed_s"], 1e-3),
            "unacked_messages": report["messages_sent"] - report["messages_acked"], "probes": len(sent),
            "lost": len(sent) - len(lat), "p50_s": _percentile(lat, 0.5) if lat else float("nan"),
            "p99_s": _percentile(lat, 0.99) if lat else float("nan"),
            "mean_s": statistics.fmean(lat) if lat else float("nan")}
