"""Section 6: the agent's footprint on a gateway.

A real agent (`python -m roadpulse agent run -c FILE`) polls 100 sensors (seven simulated
Modbus TCP devices from `roadpulse sim run`: 2 detector stations, 2 road weather stations,
1 bridge, 2 hydrology stations; every device each second) and publishes to the private
broker. Measured from outside: time from exec to its first publish, RSS, CPU and bytes
written (/proc) per reading published. The durable queue's bytes per reading on its own
(simulated time, outage included) and wire bytes per reading come from bench/disk_writes.py
and bench/wire_size.py.

Under qemu-aarch64-static (optional): the same encode loop run natively and in an arm64
root's python, reported as a ratio; the root is the one the field scripts build.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from bench.procs import cpu_seconds, status_kib, write_bytes
from bench.stack import PYTHON, ROOT, BenchError, env
from roadpulse.services import Mosquitto, popen_bound
from roadpulse.wire import DataBatch, decode

GATEWAY = "bench-gw-100"
DEVICES = [("vds-a", "traffic", "vds_modbus"), ("vds-b", "traffic", "vds_modbus"), ("rws-a", "weather", "rws_modbus"),
           ("rws-b", "weather", "rws_modbus"), ("bridge-a", "bridge", "bridge_modbus"),
           ("hydro-a", "hydro", "hydro_modbus"), ("hydro-b", "hydro", "hydro_modbus")]  # 28+28+12+12+10+5+5 = 100


def _scenario(path: Path) -> None:
    lines = ['name = "bench-100"', 'description = "100 sensors on Modbus TCP"', "seed = 13",
             "start = 2026-03-02T06:50:00+08:00", "time_scale = 1.0", "", "[road]", 'name = "bench-road"',
             "length_km = 10.0", "lanes = 4", "aadt = 52000", "elevation_start_m = 400.0",
             "elevation_end_m = 420.0", ""]
    for i, (dev, kind, profile) in enumerate(DEVICES):
        lines += ["[[devices]]", f'id = "{dev}"', f'kind = "{kind}"', f'profile = "{profile}"',
                  'protocol = "modbus-tcp"', f"km = {1.0 + i}", "unit = 1", "interval_s = 30.0", ""]
    path.write_text("\n".join(lines))


def _agent_toml(work: Path, endpoints: dict[str, str], mqtt_url: str) -> str:
    lines = ["[agent]", f'gateway_id = "{GATEWAY}"', f'data_dir = "{work / "agent-data"}"', "",
             "[mqtt]", f'url = "{mqtt_url}"', "",
             # No collector confirms here (a bare watcher counts): the footprint of PUBACK delivery.
             "[publish]", 'delivery = "broker"', ""]
    for dev, _kind, profile in DEVICES:
        host, port = endpoints[dev].rsplit(":", 1)
        lines += ["[[devices]]", f'id = "{dev}"', f'profile = "{profile}"', "interval_s = 1.0", "unit = 1",
                  f'tcp = {{ host = "{host}", port = {port} }}', ""]
    return "\n".join(lines)


def _start_sim(work: Path, seconds: float) -> tuple[subprocess.Popen[bytes], dict[str, str]]:
    scenario = work / "bench-100.toml"
    _scenario(scenario)
    proc = popen_bound([PYTHON, "-m", "roadpulse", "sim", "run", "-s", str(scenario), "--duration",
                             f"{seconds:g}"], cwd=ROOT, env=env(), stdout=subprocess.PIPE,
                            stderr=(work / "sim.log").open("ab"), stdin=subprocess.DEVNULL, start_new_session=True)
    assert proc.stdout is not None
    endpoints: dict[str, str] = {}
    while len(endpoints) < len(DEVICES):
        line = proc.stdout.readline().decode()
        if not line:
            raise BenchError(f"sim run exited with {proc.wait()}; see {work / 'sim.log'}")
        parts = line.rstrip("\n").split("\t")
        if not line.startswith("#") and len(parts) >= 3:
            endpoints[parts[0]] = parts[2]
    return proc, endpoints


def agent_footprint(work: Path, broker: Mosquitto, seconds: float) -> dict[str, Any]:
    work.mkdir(parents=True, exist_ok=True)
    sim, endpoints = _start_sim(work, seconds + 60)
    config = work / "agent.toml"
    config.write_text(_agent_toml(work, endpoints, broker.url))
    arrivals: list[tuple[float, str, int]] = []  # (monotonic, kind, readings)
    url = urlparse(broker.url)
    sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-agent-watch")
    subscribed = threading.Event()

    def on_message(_c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        kind = msg.topic.rsplit("/", 1)[-1]
        n = 0
        if kind == "data":
            message = decode(bytes(msg.payload))
            n = len(message.readings) if isinstance(message, DataBatch) else 0
        arrivals.append((time.monotonic(), kind, n))

    sub.on_message = on_message
    sub.on_subscribe = lambda *_a: subscribed.set()
    sub.on_connect = lambda c, *_a: c.subscribe(f"rp/v1/{GATEWAY}/#", qos=1)
    sub.connect(url.hostname or "127.0.0.1", url.port or 1883)
    sub.loop_start()
    agent = None
    try:
        if not subscribed.wait(10):
            raise BenchError("agent watcher: no SUBACK")
        started = time.monotonic()
        agent = popen_bound([PYTHON, "-m", "roadpulse", "agent", "run", "-c", str(config)], cwd=ROOT,
                                 env=env(), stdout=(work / "agent.log").open("ab"), stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = started + 30
        while not any(kind == "data" for _t, kind, _n in arrivals):
            if agent.poll() is not None or time.monotonic() > deadline:
                raise BenchError(f"agent published no data; see {work / 'agent.log'}")
            time.sleep(0.01)
        first_any = min(t for t, _k, _n in arrivals) - started
        first_data = min(t for t, k, _n in arrivals if k == "data") - started
        time.sleep(min(2.0, seconds))  # past start-up: imports, first connections
        t0, cpu0, io0 = time.monotonic(), cpu_seconds(agent.pid), write_bytes(agent.pid)
        time.sleep(seconds)
        t1, cpu1, io1 = time.monotonic(), cpu_seconds(agent.pid), write_bytes(agent.pid)
        rss, hwm = status_kib(agent.pid, "VmRSS"), status_kib(agent.pid, "VmHWM")
        readings = sum(n for t, k, n in arrivals if k == "data" and t0 <= t < t1)
    finally:
        if agent is not None and agent.poll() is None:
            agent.terminate()
            agent.wait(30)
        sub.loop_stop()
        sub.disconnect()
        sim.terminate()
        sim.wait(30)
    if not readings:
        raise BenchError("agent published nothing in the measuring window")
    return {"sensors": 100, "seconds": round(t1 - t0, 2), "readings": readings, "readings_per_s": readings / (t1 - t0),
            "rss_mb": rss / 1024, "peak_rss_mb": hwm / 1024, "cpu_us_per_reading": (cpu1 - cpu0) / readings * 1e6,
            "first_publish_s": first_any, "first_data_s": first_data,
            "process_write_bytes_per_reading": (io1 - io0) / readings}


def queue_and_wire(quick: bool) -> dict[str, Any]:
    """bench/disk_writes.py (4 stations, 20-min outage) and bench/wire_size.py (1 station), in process."""
    import tempfile

    from bench.disk_writes import run as disk_run
    from bench.wire_size import report as wire_report

    hours = 0.5 if quick else 2.0
    with tempfile.TemporaryDirectory(prefix="rp-bench-queue-", dir="/var/tmp") as tmp:
        disk = disk_run(4, hours, 10.0 if quick else 20.0, Path(tmp) / "q")
    wire = wire_report(1, 120)
    wire4 = wire_report(4, 120)
    payload = wire4["roadpulse_payload_B_per_reading"]
    return {"disk": disk, "wire": wire, "disk_vs_payload": disk["bytes_written_per_reading"] / payload,
            "kernel_vs_payload": disk["kernel_write_bytes_per_reading"] / payload, "payload_4_stations": payload}


ENCODE_LOOP = """
import sys, time
sys.path.insert(0, {root!r})
from bench.wire_size import make_readings, roadpulse_messages
polls, metrics = make_readings(1, 240)
dec = {{m.alias: m.decimals for m in metrics if m.decimals is not None}}
best = 1e9
for _ in range(3):
    t = time.process_time(); roadpulse_messages(polls, 200, 16384, 1, dec); best = min(best, time.process_time() - t)
print(best / sum(map(len, polls)) * 1e6)
"""


def arm64_root() -> Path | None:
    """The arm64 root the field scripts build, if there is one (env ROADPULSE_ARM64_ROOT, else .cache/)."""
    named = os.environ.get("ROADPULSE_ARM64_ROOT")
    candidates = [Path(named)] if named else sorted((ROOT / ".cache").glob("*arm64*")) + sorted(
        (ROOT / ".cache").glob("*aarch64*"))
    for path in candidates:
        if (path / "usr" / "bin" / "python3").exists():
            return path
    return None


def emulated(quick: bool) -> dict[str, Any]:
    qemu = shutil.which("qemu-aarch64-static")
    root = arm64_root()
    if qemu is None or root is None:
        why = "qemu-aarch64-static not installed" if qemu is None else (
            "no arm64 root (set ROADPULSE_ARM64_ROOT or build one into .cache/ with the field scripts)")
        return {"skipped": why}
    code = ENCODE_LOOP.format(root=str(ROOT))
    native = float(subprocess.run([PYTHON, "-c", code], capture_output=True, text=True, check=True,
                                  env=env()).stdout)
    arm = subprocess.run([qemu, "-L", str(root), str(root / "usr/bin/python3"), "-c", code], check=False,
                         capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    if arm.returncode != 0:
        return {"skipped": f"python3 of the arm64 root failed: {arm.stderr.strip()[-200:]}"}
    return {"root": root.name, "native_us_per_reading": native, "ratio_to_native": float(arm.stdout) / native}
