"""Sections 1-3 of the bench: whole-system cost with baselines, limits, overload and drain.

All phases share one private mosquitto and one influxd (`Stack`); each phase has its own
topic prefix and database, so the counts read back from InfluxDB are the phase's own.
"""

from __future__ import annotations

import gzip
import http.client
import json
import math
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from bench.mix import Mix
from bench.procs import CpuWindow, cpu_seconds, per_reading_us
from bench.stack import (
    PYTHON,
    ROOT,
    BenchError,
    Collector,
    Load,
    create_db,
    env,
    finish_load,
    run_load,
    stored,
    wait_stored,
)
from roadpulse.services import Influxd, Mosquitto


@dataclass
class Stack:
    work: Path
    broker: Mosquitto
    influx: Influxd
    mix: Mix
    quick: bool

    def pids(self, **more: int) -> dict[str, int]:
        assert self.broker.pid is not None
        assert self.influx.pid is not None
        return {**more, "mosquitto": self.broker.pid, "influxd": self.influx.pid}

    def load(self, rate: float, duration: float, prefix: str, max_gateways: int = 400, **kw: Any) -> Load:
        """`rate` readings/s in g60-sized messages: as many g60 gateways as fit, then faster ones."""
        per_gateway = self.mix.per_message * self.mix.messages_per_s
        gateways = max(1, min(max_gateways, math.ceil(rate / per_gateway)))
        return Load(gateways, self.mix.per_message, rate / (gateways * self.mix.per_message), duration, prefix, **kw)

    def collector(self, name: str, db: str, prefix: str) -> Collector:
        create_db(self.influx.url, db)
        return Collector(self.work / name, self.broker.url, self.influx.url, db, prefix, f"bench-{name}")


def start_baseline(stack: Stack, kind: str, prefix: str, *, db: str = "", expect: int = 0,
                   client_id: str = "") -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    """Start a bench.baselines program and wait for its `ready` line."""
    cmd = [PYTHON, "-m", "bench.baselines", kind, "--mqtt-url", stack.broker.url, "--prefix", prefix,
           "--influx-url", stack.influx.url, "--db", db, "--expect", str(expect),
           "--client-id", client_id or f"bench-{kind}"]
    log = (stack.work / f"{kind}.log").open("ab")
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env(), stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL,
                            start_new_session=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        raise BenchError(f"baseline {kind} exited with {proc.wait()}; see {stack.work / f'{kind}.log'}")
    info: dict[str, Any] = json.loads(line)["ready"]
    return proc, info


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def pipeline_cost(stack: Stack, kind: str, rate: float, duration: float, tag: str = "") -> dict[str, Any]:
    """CPU per reading of one pipeline + broker + influxd on the same g60 load, and what was lost."""
    db, prefix = f"sys_{kind}{tag}", f"bsys{kind}{tag}/v1"
    create_db(stack.influx.url, db)
    info: dict[str, Any] = {}
    collector = None
    if kind == "collector":
        collector = stack.collector("sys-collector", db, prefix).start()
        pid = collector.pid
    else:
        proc, info = start_baseline(stack, kind, prefix, db=db)
        pid = proc.pid
    try:
        # Idle first: what the processes cost per second with no traffic, so the fixed part of the
        # figure below can be told from the part that grows with readings.
        idle_s = 1.0 if stack.quick else 5.0
        window = CpuWindow(stack.pids(**{kind: pid})).open()
        time.sleep(idle_s)
        idle = window.close()
        window = CpuWindow(stack.pids(**{kind: pid})).open()
        began = time.monotonic()
        report = run_load(stack.load(rate, duration, prefix, gateway_prefix=f"{kind}{tag}gw"), stack.broker.url,
                          stack.work / f"load-{kind}{tag}.json")
        sent = int(report["readings_sent"])
        count, seen = wait_stored(stack.influx.url, db, sent, timeout=60 if stack.quick else 180,
                                  poll=0.1 if stack.quick else 0.5)
        cpu = window.close()
        seconds = time.monotonic() - began
    finally:
        if collector is not None:
            collector.stop()
        else:
            stop(proc)
    return {"readings": sent, "stored": count, "lost": sent - count, "offered_per_s": round(sent / duration),
            "seconds": round(seen - began, 2), "cpu_us": per_reading_us(cpu, sent),
            "idle_cpu_per_s": {name: value / idle_s for name, value in idle.items()},
            "marginal_us": per_reading_us({name: max(0.0, value - idle[name] / idle_s * seconds)
                                           for name, value in cpu.items()}, sent), **info}


def whole_system(stack: Stack, rate: float, duration: float, sustained: float) -> dict[str, Any]:
    """The three pipelines at `rate`; the collector once more at the sustained load (fixed costs spread wider)."""
    phases = {kind: pipeline_cost(stack, kind, rate, duration) for kind in ("collector", "naive", "client")}
    phases["collector_at_sustained"] = pipeline_cost(stack, "collector", 0.9 * sustained, duration, tag="max")
    ours = phases["collector"]["cpu_us"]["total"]
    return {"rate": rate, "duration_s": duration, **phases,
            "ratio_vs_naive": ours / phases["naive"]["cpu_us"]["total"],
            "ratio_vs_client": ours / phases["client"]["cpu_us"]["total"]}


# ---- limits ---------------------------------------------------------------------------------------------------


def _lines_from(out: Path) -> tuple[list[str], int]:
    """The line protocol the collector writes for `sim load` traffic (docs/data-model.md: one
    line per series and time, so a device's ten sensors of one message are one line), and
    the readings in it."""
    lines = []
    readings = 0
    with out.open() as f:
        for row in map(json.loads, f):
            if row["kind"] != "data":
                continue
            gw, ts = row["gateway"], row["ts_ms"]
            devices: dict[int, list[str]] = {}
            for alias, value in row["readings"]:
                devices.setdefault(alias // 10, []).append(f"s{alias % 10}={float(value)!r}")
                readings += 1
            lines += [f"loadtest,device={gw}-dev{dev},gateway={gw} {','.join(fields)} {ts}"
                      for dev, fields in devices.items()]
    return lines, readings


def raw_ingest(stack: Stack, built: tuple[list[str], int], db: str, batch: int = 10_000,
               posters: int = 2) -> dict[str, Any]:
    """Post pre-built, pre-gzipped bodies of `batch` lines straight to /write from `posters`
    connections; `built` is (lines, the readings they hold)."""
    lines, readings = built
    create_db(stack.influx.url, db)
    bodies = [gzip.compress("\n".join(lines[i:i + batch]).encode(), 1) for i in range(0, len(lines), batch)]
    url = urlparse(stack.influx.url)
    errors: list[str] = []

    def post(part: list[bytes]) -> None:
        conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port or 8086, timeout=60)
        for body in part:
            conn.request("POST", f"/write?db={db}&precision=ms", body,
                         {"Content-Encoding": "gzip", "Content-Type": "text/plain"})
            resp = conn.getresponse()
            resp.read()
            if resp.status != 204:
                errors.append(f"HTTP {resp.status}")
        conn.close()

    assert stack.influx.pid is not None
    before = cpu_seconds(stack.influx.pid)
    began = time.monotonic()
    threads = [threading.Thread(target=post, args=(bodies[i::posters],), name=f"raw-{i}") for i in range(posters)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.monotonic() - began
    influx_cpu = cpu_seconds(stack.influx.pid) - before
    if errors:
        raise BenchError(f"raw ingest refused: {errors[:3]}")
    return {"readings": readings, "per_s": readings / seconds, "influxd_us": influx_cpu / readings * 1e6,
            "stored": stored(stack.influx.url, db)}


def _written(collector: Collector, db: str) -> int:
    try:
        return int(collector.metric("readings_written"))
    except (KeyError, OSError):
        return stored(collector.influx_url, db)


def collector_drain(collector: Collector, total: int, timeout: float) -> tuple[float, float]:
    """(readings/s from the first write to the last, monotonic end) for a backlog the broker holds."""
    first_at, first_count = 0.0, 0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        count = _written(collector, collector.db)
        now = time.monotonic()
        if count and not first_at:
            first_at, first_count = now, count
        if count >= total:
            return (count - first_count) / max(now - first_at, 1e-3), now
        time.sleep(0.05)
    raise BenchError(f"collector drained {count} of {total} in {timeout} s")


def limits(stack: Stack, readings: int) -> dict[str, Any]:
    """Broker alone, raw ingest and the collector, each on the same backlog of g60-sized messages."""
    prefix, db = "blimit/v1", "limit_collector"
    per = stack.mix.per_message
    messages = readings // per
    gateways = 100
    load = Load(gateways, per, 50.0, messages / (gateways * 50.0), prefix, "limgw")
    # Persistent sessions first, so the broker keeps the backlog for both.
    counter, _ = start_baseline(stack, "count", prefix, expect=10**12, client_id="bench-limit-count")
    stop(counter)
    collector = stack.collector("limit-collector", db, prefix)
    collector.start()
    collector.stop()
    out = stack.work / "limit-out.jsonl"
    report = run_load(load, stack.broker.url, stack.work / "load-limit.json", out)
    data_messages = int(report["data_messages"])
    sent = int(report["readings_sent"])
    counter, _ = start_baseline(stack, "count", prefix, expect=data_messages, client_id="bench-limit-count")
    assert counter.stdout is not None
    done = json.loads(counter.stdout.readline())
    stop(counter)
    broker_rate = done["messages"] * per / max(done["last"] - done["first"], 1e-3)
    collector.start()
    try:
        collector_rate, _ = collector_drain(collector, sent, 120 if stack.quick else 300)
    finally:
        collector.stop()
    collector_stored = stored(stack.influx.url, db)
    raw = raw_ingest(stack, _lines_from(out), "limit_raw")
    lower = min(broker_rate, raw["per_s"])
    return {"readings": sent, "publisher_per_s": float(report["readings_per_s"]),
            "broker_only_per_s": broker_rate, "raw_ingest_per_s": raw["per_s"],
            "raw_influxd_us": raw["influxd_us"], "raw_stored": raw["stored"],
            "collector_per_s": collector_rate, "collector_stored": collector_stored,
            "lost": (sent - collector_stored) + (raw["readings"] - raw["stored"]),
            "fraction_of_lower": collector_rate / lower}


# ---- overload and drain ---------------------------------------------------------------------------------------


def overload(stack: Stack, sustained: float, duration: float, factor: float = 2.0) -> dict[str, Any]:
    """`factor` x the sustained rate for `duration` s from two `sim load` processes; all must be stored."""
    prefix, db = "bover/v1", "overload"
    collector = stack.collector("overload-collector", db, prefix).start()
    try:
        loads = [stack.load(factor * sustained / 2, duration, prefix, max_gateways=200, gateway_prefix=f"ovgw{i}",
                            seed=i) for i in range(2)]
        procs = [(ld.start(stack.broker.url, stack.work / f"load-over-{i}.json"), stack.work / f"load-over-{i}.json")
                 for i, ld in enumerate(loads)]
        # What the collector writes while the publishers push: the live sustained rate (past a ramp).
        began = time.monotonic()
        ramp = min(5.0, duration / 4)
        time.sleep(ramp)
        w0, t0 = _written(collector, db), time.monotonic()
        time.sleep(max(0.1, began + duration - time.monotonic()))
        w1, t1 = _written(collector, db), time.monotonic()
        live = (w1 - w0) / (t1 - t0)
        reports = [finish_load(p, s, allow_unacked=True) for p, s in procs]
        sent = sum(int(r["readings_sent"]) for r in reports)
        acked = sum(int(r["readings_acked"]) for r in reports)
        elapsed = max(float(r["publish_elapsed_s"]) for r in reports)
        count, _ = wait_stored(stack.influx.url, db, acked, timeout=120 if stack.quick else 400)
        if count < sent:  # messages in flight when the publisher gave up may still arrive
            count, _ = wait_stored(stack.influx.url, db, sent, timeout=5)
    finally:
        collector.stop()
    offered = acked / max(elapsed, 1e-3)
    return {"asked_factor": factor, "asked_per_s": factor * sustained, "offered_per_s": offered,
            "offered_factor": offered / sustained, "live_sustained_per_s": live, "seconds": duration, "published": sent,
            "readings": acked, "stored": count, "lost": max(0, acked - count)}


def outage_drain(stack: Stack, rate: float, outage: float) -> dict[str, Any]:
    """InfluxDB down for `outage` s while the g60 load runs at `rate`; then the drain rate vs `rate`."""
    prefix, db = "bdrain/v1", "drain"
    collector = stack.collector("drain-collector", db, prefix).start()
    try:
        stack.influx.stop()
        try:
            report = run_load(stack.load(rate, outage, prefix, gateway_prefix="drgw"), stack.broker.url,
                              stack.work / "load-drain.json")
        finally:
            stack.influx.start()
        restarted = time.monotonic()
        sent = int(report["readings_sent"])
        try:
            spooled = int(collector.metric("readings_spooled"))
        except (KeyError, OSError):
            spooled = -1
        count, done = wait_stored(stack.influx.url, db, sent, timeout=120 if stack.quick else 400, poll=0.2)
    finally:
        collector.stop()
    drain = sent / max(done - restarted, 1e-3)
    return {"outage_s": outage, "live_per_s": rate, "readings": sent, "spooled": spooled, "stored": count,
            "lost": sent - count, "drain_s": done - restarted, "drain_per_s": drain, "multiple": drain / rate}
