"""The road-state service end to end: private mosquitto and influxd, a section with an incident
published as a gateway would, the service SIGKILLed halfway and restarted.

Asserted: every closable interval of every segment is in InfluxDB exactly once (no gap, no
extra), its values equal what the pure engine computes from the same bins without any restart,
and the incident is written once, with the same id as the uninterrupted run's.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from bench.roadstate.evaluate import lane_bins
from firmware_sim.scenario import Incident, Road
from firmware_sim.section import SectionRun, simulate
from firmware_sim.section_feed import section_messages
from roadpulse.services import Influxd, Mosquitto
from roadstate.engine import RoadEngine, RoadParams
from roadstate.state import segments_of

ROOT = Path(__file__).resolve().parents[2]
CST = timezone(timedelta(hours=8))
STATIONS = [2.0, 4.0, 6.0, 8.0, 10.0, 12.0]


def _section() -> SectionRun:
    road = Road(length_km=14, lanes=3, aadt=60_000, capacity_drop=0.08,
                incidents=[Incident(at_km=9.0, start_s=1500, duration_s=1200, capacity_fraction=0.3)])
    return simulate("it", road, STATIONS, seed=5, start=datetime(2026, 3, 2, 7, 30, tzinfo=CST), duration_s=4200)


def _expected(run: SectionRun) -> tuple[dict[tuple[str, int], tuple[float, str]], set[str]]:
    """What the engine computes from the same bins in one uninterrupted pass, stations named as the service does."""
    stations = [(f"gw-sec/{sid}", km) for sid, km in run.stations]
    engine = RoadEngine(segments_of("G60", "N", stations), RoadParams(interval_s=run.interval_s), ["roadpulse"])
    states: dict[tuple[str, int], tuple[float, str]] = {}
    incidents: set[str] = set()
    closable = len(run.intervals) - 3  # the last intervals wait for data 60 s past their end
    for row in run.intervals[:closable]:
        t_ms = round(row[0].t * 1000)
        out = engine.step(t_ms, {f"gw-sec/{s.station}": lane_bins(s.lanes) for s in row})
        for r in out.segments:
            states[(r.segment.name, t_ms)] = (round(r.state.density, 3), r.state.los)
        incidents |= {e.id for e in out.incidents}
    return states, incidents


def _publish(url: str, messages: list[tuple[str, bytes, bool]]) -> None:
    u = urlparse(url)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="section-feed")
    client.max_inflight_messages_set(100)
    client.connect(u.hostname or "127.0.0.1", u.port or 1883)
    client.loop_start()
    try:
        infos = [client.publish(topic, payload, qos=1, retain=retain) for topic, payload, retain in messages]
        for info in infos:
            info.wait_for_publish(timeout=20)
    finally:
        client.disconnect()
        client.loop_stop()


def _start(config: Path, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "roadpulse", "roadstate", "run", "-c", str(config)],
                            cwd=ROOT, stdout=log.open("ab"), stderr=subprocess.STDOUT)


def _subscribed(proc: subprocess.Popen[bytes], log: Path, times: int) -> None:
    """The first start creates the persistent session: publishing before it would go nowhere."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if log.read_text().count('"subscribed"') >= times:
            return
        assert proc.poll() is None, log.read_text()[-3000:]
        time.sleep(0.05)
    pytest.fail(f"the service did not subscribe; log:\n{log.read_text()[-3000:]}")


def _points(influxd: Influxd, q: str) -> list[list[Any]]:
    body = influxd.query(q, "roadpulse")
    series = body["results"][0].get("series") or []
    return [[s.get("tags", {}), *v] for s in series for v in s["values"]]


def _count(influxd: Influxd) -> int:
    rows = _points(influxd, "SELECT count(los_index) FROM road_state")
    return int(rows[0][2]) if rows else 0


def _wait_for(influxd: Influxd, at_least: int, proc: subprocess.Popen[bytes], log: Path, timeout: float = 40) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _count(influxd) >= at_least:
            return
        assert proc.poll() is None, log.read_text()[-3000:]
        time.sleep(0.2)
    pytest.fail(f"only {_count(influxd)} of {at_least} road_state points; log:\n{log.read_text()[-3000:]}")


@pytest.mark.slow
def test_restart_loses_nothing_and_duplicates_nothing(mosquitto: Mosquitto, influxd: Influxd, tmp_path: Path) -> None:
    run = _section()
    expected, incidents = _expected(run)
    assert len(incidents) == 1, "the scenario's incident must be detected by the pure engine"
    messages = section_messages(run, gateway="gw-sec", road="G60", direction="N")
    config = tmp_path / "roadstate.toml"
    config.write_text(
        f'[mqtt]\nurl = "{mosquitto.url}"\nclient_id = "roadstate-it"\n'
        f'[influxdb]\nurl = "{influxd.url}"\ndatabase = "roadpulse"\n'
        f'[roadstate]\ndata_dir = "{tmp_path / "state"}"\n'
        '[[roads]]\nroad = "G60"\ndirection = "N"\n',
        encoding="utf-8",
    )
    log = tmp_path / "roadstate.log"
    proc = _start(config, log)
    try:
        _subscribed(proc, log, 1)
        half = len(messages) // 2
        feed = threading.Thread(target=_publish, args=(mosquitto.url, messages[:half]), name="feed")
        feed.start()
        _wait_for(influxd, len(expected) // 5, proc, log)
        os.kill(proc.pid, signal.SIGKILL)  # mid-stream: unacknowledged messages wait at the broker
        proc.wait(timeout=10)
        feed.join(timeout=30)
        _publish(mosquitto.url, messages[half:])
        proc = _start(config, log)
        _wait_for(influxd, len(expected), proc, log)
        time.sleep(1.0)  # anything extra would arrive now
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)
    rows = _points(influxd, 'SELECT density, los FROM road_state GROUP BY "segment"')
    stored = {(tags["segment"], int(t)): (round(d, 3), los) for tags, t, d, los in rows}
    assert len(rows) == len(expected)
    assert stored == expected
    written = _points(influxd, 'SELECT "id", active FROM incident GROUP BY "segment", "algorithm"')
    assert {row[2] for row in written} == incidents
    assert proc.returncode == 0, log.read_text()[-3000:]
