"""The pieces every section drives: a collector, `sim load` runs, and counts read back from InfluxDB.

Only public entry points: `python -m roadpulse collector run -c FILE`, `python -m roadpulse
sim load ...`, the collector's /healthz and /metrics, and `roadpulse.services` for the
private mosquitto and influxd. The collector's config has every durability feature on
(persistent session, acks after the durable write, gzip, spool with fsync).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from roadpulse.services import count_readings, free_port, influx_query, popen_bound

ROOT = Path(__file__).resolve().parent.parent
# Readings per message and messages per second per gateway as the agent seals the g60
# scenario's traffic (bench/mix.py computes them from the scenario; these are the defaults).
PYTHON = sys.executable


class BenchError(RuntimeError):
    """A phase could not run (a service did not start, data did not arrive in time)."""


def env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))


def create_db(influx_url: str, db: str) -> None:
    influx_query(influx_url, f'CREATE DATABASE "{db}"', method="POST")


def stored(influx_url: str, db: str) -> int:
    return count_readings(influx_url, db)


def wait_stored(influx_url: str, db: str, target: int, timeout: float, poll: float = 0.5) -> tuple[int, float]:
    """Poll InfluxDB until `target` readings are queryable; (count, monotonic time seen)."""
    deadline = time.monotonic() + timeout
    count = 0
    while True:
        with contextlib.suppress(OSError, urllib.error.URLError):  # influxd restarting: keep the last count
            count = stored(influx_url, db)
        now = time.monotonic()
        if count >= target or now > deadline:
            return count, now
        time.sleep(poll)


@dataclass
class Collector:
    """A collector subprocess with its own config, data folder and HTTP port."""

    work: Path
    mqtt_url: str
    influx_url: str
    db: str
    prefix: str
    client_id: str
    self_metrics_s: float = 10.0
    proc: subprocess.Popen[bytes] | None = None
    http_port: int = 0

    def config(self) -> Path:
        self.work.mkdir(parents=True, exist_ok=True)
        self.http_port = self.http_port or free_port()
        path = self.work / "collector.toml"
        path.write_text(f"""[collector]
client_id = "{self.client_id}"
data_dir = "data"
self_metrics_interval_s = {self.self_metrics_s}
[mqtt]
url = "{self.mqtt_url}"
topic_prefix = "{self.prefix}"
[influx]
url = "{self.influx_url}"
database = "{self.db}"
gzip = true
[spool]
max_bytes = 1073741824
[http]
listen = "127.0.0.1:{self.http_port}"
""")
        return path

    def start(self, timeout: float = 30.0) -> Collector:
        config = self.config()
        with (self.work / "collector.log").open("ab") as log:
            self.proc = popen_bound([PYTHON, "-m", "roadpulse", "collector", "run", "-c", str(config)],
                                         cwd=ROOT, env=env(), stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"collector exited with {self.proc.returncode}; see {self.work / 'collector.log'}")
            if self.healthy():
                return self
            time.sleep(0.05)
        raise BenchError(f"collector not healthy after {timeout} s; see {self.work / 'collector.log'}")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/healthz", timeout=2) as resp:
                return bool(json.loads(resp.read()).get("ok"))
        except (OSError, ValueError):
            return False

    def metric(self, name: str) -> float:
        """A counter or gauge of /metrics (`roadpulse_collector_<name>`, with or without `_total`)."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/metrics", timeout=5) as resp:
            for line in resp.read().decode().splitlines():
                if line.startswith((f"roadpulse_collector_{name}{{", f"roadpulse_collector_{name}_total{{",
                                    f"roadpulse_collector_{name} ", f"roadpulse_collector_{name}_total ")):
                    return float(line.rsplit(" ", 1)[1])
        raise KeyError(name)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


@dataclass(frozen=True)
class Load:
    """One `sim load` run: gateways x sensors readings per message, `rate` messages/s per gateway."""

    gateways: int
    sensors: int
    rate: float
    duration: float
    prefix: str
    gateway_prefix: str = "loadgw"
    seed: int = 0

    @property
    def offered(self) -> float:
        return self.gateways * self.sensors * self.rate

    def command(self, mqtt_url: str, summary: Path, out: Path | None = None) -> list[str]:
        cmd = [PYTHON, "-m", "roadpulse", "sim", "load", "--mqtt-url", mqtt_url, "--gateways", str(self.gateways),
               "--sensors", str(self.sensors), "--rate", f"{self.rate:g}", "--duration", f"{self.duration:g}",
               "--prefix", self.prefix, "--gateway-prefix", self.gateway_prefix, "--seed", str(self.seed),
               "--summary", str(summary)]
        if out is not None:
            cmd += ["--out", str(out)]
        return cmd

    def start(self, mqtt_url: str, summary: Path, out: Path | None = None) -> subprocess.Popen[bytes]:
        return popen_bound(self.command(mqtt_url, summary, out), cwd=ROOT, env=env(),
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                start_new_session=True)


def acked_readings(report: dict[str, Any]) -> int:
    """Readings in data messages the broker acknowledged.

    A connection's PUBACKs come in order and each gateway's death is the last thing it
    publishes, so while more messages than deaths are unacknowledged the deaths are among
    them: acknowledged data = acknowledged - births (all sent first), deaths otherwise.
    """
    unacked = int(report["messages_sent"]) - int(report["messages_acked"])
    deaths = int(report["gateways"])
    data = int(report["messages_acked"]) - int(report["births"]) - (0 if unacked >= deaths else deaths - unacked)
    return max(0, data) * int(report["sensors"])


def finish_load(proc: subprocess.Popen[bytes], summary: Path, timeout: float = 600, *,
                allow_unacked: bool = False) -> dict[str, Any]:
    """Wait for a `sim load` run and return its summary; every message must have been acknowledged.

    With `allow_unacked` (overload), messages the broker had not acknowledged when `sim load`
    gave up are the publisher's own backlog, never accepted: the summary gets `readings_acked`.
    """
    _, err = proc.communicate(timeout=timeout)
    if not summary.exists():
        raise BenchError(f"sim load wrote no summary (exit {proc.returncode}): {err.decode(errors='replace')[-500:]}")
    report: dict[str, Any] = json.loads(summary.read_text())
    report.pop("per_gateway", None)
    report["readings_acked"] = acked_readings(report)
    if proc.returncode != 0 and not allow_unacked:
        raise BenchError(f"sim load: {report['messages_sent'] - report['messages_acked']} messages unacknowledged")
    return report


def run_load(load: Load, mqtt_url: str, summary: Path, out: Path | None = None) -> dict[str, Any]:
    return finish_load(load.start(mqtt_url, summary, out), summary)
