"""The `sim run` and `sim load` commands end to end: real ptys, sockets and a private Mosquitto."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from firmware_sim.truth import read_truth
from roadpulse.wire import Birth, DataBatch, Death, decode

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def test_sim_run_prints_every_device_and_writes_truth(tmp_path: Path) -> None:
    truth = tmp_path / "truth.jsonl"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "firmware_sim",
            "sim",
            "run",
            "-s",
            str(ROOT / "config/scenarios/g60-mountain.toml"),
            "--truth",
            str(truth),
            "--duration",
            "1.5",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    rows = [line.split("\t") for line in proc.stdout.splitlines() if not line.startswith("#")]
    assert len(rows) == 18
    protocols = {r[1] for r in rows}
    assert protocols == {"modbus-tcp", "modbus-rtu", "ascii"}
    for device_id, protocol, address, unit, _baud, profile in rows:
        assert device_id
        assert profile.startswith("profile=")
        if protocol == "modbus-tcp":
            assert address.startswith("127.0.0.1:")
        else:
            assert address.startswith("/dev/pts/")
        assert unit.startswith("unit=")
    # The free-running NMEA talker emitted while nobody listened; it is in the truth file.
    assert any(r["device_id"] == "wind-k12" for r in read_truth(truth))


def test_sim_run_rejects_a_bad_scenario(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\nseed = "one"\n')
    proc = subprocess.run(
        [sys.executable, "-m", "firmware_sim", "sim", "run", "-s", str(bad), "--duration", "1"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 2
    assert "bad.toml: seed:" in proc.stderr


def _subscribe(url: str, prefix: str, got: list[tuple[str, bytes, bool]], ready: threading.Event) -> Any:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    host, port = url.removeprefix("mqtt://").split(":")
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="sim-load-test-sub")
    client.on_connect = lambda c, *_: c.subscribe(f"{prefix}/#", qos=1)
    client.on_subscribe = lambda *_: ready.set()
    client.on_message = lambda _c, _u, m: got.append((m.topic, bytes(m.payload), bool(m.retain)))
    client.connect(host, int(port))
    client.loop_start()
    return client


def test_load_mode_publishes_exactly_what_it_reports(mosquitto: Any, tmp_path: Path) -> None:
    got: list[tuple[str, bytes, bool]] = []
    ready = threading.Event()
    client = _subscribe(mosquitto.url, "rp/v1", got, ready)
    try:
        assert ready.wait(5)
        out, summary = tmp_path / "sent.jsonl", tmp_path / "summary.json"
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "firmware_sim",
                "sim",
                "load",
                "--mqtt-url",
                mosquitto.url,
                "--gateways",
                "5",
                "--sensors",
                "12",
                "--rate",
                "4",
                "--duration",
                "1.0",
                "--out",
                str(out),
                "--summary",
                str(summary),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        report = json.loads(summary.read_text())
        deadline = time.monotonic() + 5
        while len(got) < report["messages_sent"] and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        client.loop_stop()
        client.disconnect()
    assert report["messages_acked"] == report["messages_sent"] == len(got)
    assert report["births"] == 5
    assert report["data_messages"] == pytest.approx(5 * 4, abs=5)
    assert report["readings_sent"] == report["data_messages"] * 12
    sent = [json.loads(line) for line in out.read_text().splitlines()]
    decoded = [(topic, decode(payload)) for topic, payload, _ in got]
    births = [m for _, m in decoded if isinstance(m, Birth)]
    data = [m for _, m in decoded if isinstance(m, DataBatch)]
    deaths = [m for _, m in decoded if isinstance(m, Death)]
    assert len(births) == 5
    assert all(len(b.metrics) == 12 for b in births)
    assert len(deaths) == 5
    assert all(d.clean for d in deaths)
    # Each gateway's birth arrives before its data.
    first_seen: dict[tuple[str, str], int] = {}
    for index, (_, message) in enumerate(decoded):
        first_seen.setdefault((message.gateway, type(message).__name__), index)  # type: ignore[union-attr]
    for birth in births:
        assert first_seen[(birth.gateway, "Birth")] < first_seen.get((birth.gateway, "DataBatch"), 10**9)
    # What arrived is exactly what the --out file says was sent.
    sent_data = {
        (m["gateway"], m["seq"]): [[a, pytest.approx(v, abs=1e-4)] for a, v in m["readings"]]
        for m in sent
        if m["kind"] == "data"
    }
    arrived = {(m.gateway, m.seq): [[r.alias, r.value] for r in m.readings] for m in data}
    assert set(arrived) == set(sent_data)
    for key, readings in arrived.items():
        assert readings == sent_data[key]
    assert all(topic.endswith("/data") for topic, m in decoded if isinstance(m, DataBatch))
