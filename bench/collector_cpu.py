#!/usr/bin/env python3
"""CPU per reading of the collector, end to end, every durability feature on.

Real mosquitto and influxd (private, on free ports). The collector runs as a subprocess
(`python -m collector.run`): persistent session, manual acks after the write, gzip, birth
persistence, seq tracking, self-metrics, spool ready. Two runs:

1. backlog: N messages are queued in the broker for the collector's session while it is
   down, then it starts and drains them as fast as it can (an overload of "infinite" x);
2. live overload: two publishers send as fast as paho can while the collector runs; the
   ratio of offered to sustained rate is printed.

CPU is the collector process's user+system time (/proc/<pid>/stat) minus that of an idle
start-up, divided by the readings stored. Every run also checks that InfluxDB holds every
reading (zero loss under overload: backpressure via unacked messages, not drops).

Usage: bench/collector_cpu.py [--messages 4000] [--per-message 50]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from roadpulse.services import Influxd, Mosquitto, count_readings, free_port  # noqa: E402
from tests.collector.traffic import Publisher, boot_id, make_batch, make_birth  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def metric(port: int, name: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        for line in resp.read().decode().splitlines():
            if line.startswith((f"roadpulse_collector_{name}{{", f"roadpulse_collector_{name}_total{{")):
                return float(line.rsplit(" ", 1)[1])
    raise KeyError(name)


def write_config(work: Path, mqtt_url: str, influx_url: str, http_port: int, *, receive_maximum: int,
                 use_gzip: bool) -> Path:
    path = work / "collector.toml"
    path.write_text(f"""
[collector]
client_id = "bench"
data_dir = "data"
[mqtt]
url = "{mqtt_url}"
receive_maximum = {receive_maximum}
[influx]
url = "{influx_url}"
gzip = {"true" if use_gzip else "false"}
batch_max_lines = 10000
batch_max_age_s = 1.0
[spool]
max_bytes = 1073741824
[http]
listen = "127.0.0.1:{http_port}"
""")
    return path


def start(config: Path, log: Path, http_port: int) -> subprocess.Popen[bytes]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    with log.open("ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "collector.run", str(config)], cwd=ROOT, env=env,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if metric(http_port, "mqtt_connected") >= 0:
                return proc
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"collector did not start; see {log}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.wait(30)


def wait_written(port: int, target: int, timeout: float = 300) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if metric(port, "readings_written") >= target:
            return time.monotonic()
        time.sleep(0.02)
    raise RuntimeError("collector did not write everything in time")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=4000)
    parser.add_argument("--per-message", type=int, default=50)
    parser.add_argument("--receive-maximum", type=int, default=1000)
    parser.add_argument("--per-poll", type=int, default=1,
                        help="readings sharing one timestamp (1 = worst case: every reading its own time)")
    parser.add_argument("--no-gzip", action="store_true", help="plain bodies (a collector next to InfluxDB)")
    args = parser.parse_args()
    total = args.messages * args.per_message
    with tempfile.TemporaryDirectory(prefix="rp-bench-") as tmp:
        work = Path(tmp)
        with Mosquitto(work / "mosquitto") as broker, Influxd(work / "influxd") as influx:
            influx.create_database("roadpulse")
            http_port = free_port()
            config = write_config(work, broker.url, influx.url, http_port,
                                  receive_maximum=args.receive_maximum, use_gzip=not args.no_gzip)
            birth = make_birth("gw-bench", boot_id(), metrics=50)
            publisher = Publisher(broker.url, client_id="bench-publisher")
            publisher.birth(birth)
            batches = [make_batch(birth, s, args.per_message, per_poll=args.per_poll)
                       for s in range(2 * args.messages)]

            # Idle start-up cost, and the persistent session gets created.
            proc = start(config, work / "collector.log", http_port)
            time.sleep(1.0)
            idle_cpu = cpu_seconds(proc.pid)
            stop(proc)

            # 1. backlog held by the broker while the collector is down.
            publisher.data(batches[: args.messages])
            proc = start(config, work / "collector.log", http_port)
            began = time.monotonic()
            done = wait_written(http_port, total)
            cpu = cpu_seconds(proc.pid) - idle_cpu
            backlog = (cpu, done - began)

            # 2. live: publish the second half as fast as paho can while the collector runs.
            # Two publishing clients, to offer well over what one collector sustains.
            second = Publisher(broker.url, client_id="bench-publisher-2")
            live_batches = batches[args.messages :]
            cpu_before = cpu_seconds(proc.pid)
            began = time.monotonic()
            feeders = [threading.Thread(target=p.data, args=(live_batches[i::2],), name=f"feeder-{i}")
                       for i, p in enumerate((publisher, second))]
            for feeder in feeders:
                feeder.start()
            for feeder in feeders:
                feeder.join()
            published = time.monotonic()
            second.close()
            done = wait_written(http_port, 2 * total)
            live = (cpu_seconds(proc.pid) - cpu_before, done - began, published - began)
            stop(proc)
            publisher.close()
            stored = count_readings(influx.url, "roadpulse")

    print(f"readings per run: {total} ({args.messages} messages x {args.per_message}), "
          f"{args.per_poll} per timestamp, gzip {'off' if args.no_gzip else 'on'}, "
          f"receive maximum {args.receive_maximum}")
    print(f"backlog drain: {backlog[0] / total * 1e6:.2f} µs CPU per reading, "
          f"{total / backlog[1]:,.0f} readings/s")
    offered, sustained = total / live[2], total / live[1]
    print(f"live overload: {live[0] / total * 1e6:.2f} µs CPU per reading, publishers offered "
          f"{offered:,.0f} readings/s, collector sustained {sustained:,.0f} readings/s "
          f"(overload x{offered / sustained:.1f})")
    print(f"stored in InfluxDB: {stored} of {2 * total} -> {'no loss' if stored == 2 * total else 'LOSS'}")
    return 0 if stored == 2 * total else 1


if __name__ == "__main__":
    sys.exit(main())
