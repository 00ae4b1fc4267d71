"""The real agent and collector through the secured broker, and secrets kept out of everything shown.

The agent (a `roadpulse agent run` process) uses mutual TLS: its identity is its certificate's CN.
The collector uses TLS with a username and a password file. Readings reach InfluxDB; a forged
birth, published by one gateway for another, is dead-lettered by the collector.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from collector.config import load_collector_config
from collector.run import Collector
from roadpulse.cli import build_parser
from roadpulse.services import Influxd, Mosquitto, count_readings
from roadpulse.wire import Topics, encode_birth
from tests.collector.conftest import running, wait_for
from tests.collector.traffic import make_birth
from tests.scenarios import one_station

from .conftest import PASSWORDS, Pki, connect

pytestmark = pytest.mark.slow

SCENARIO = one_station("tls-test")


def _collector_config(tmp_path: Path, pki: Pki, broker: Mosquitto, influxd: Influxd) -> Path:
    (tmp_path / "collector-password").write_text(PASSWORDS["collector-1"] + "\n")
    path = tmp_path / "collector.toml"
    path.write_text(
        f'[collector]\nclient_id = "collector-1"\ndata_dir = "{tmp_path / "collector"}"\n'
        f'[mqtt]\nurl = "{broker.url}"\nusername = "collector-1"\npassword_file = "collector-password"\n'
        f'tls = {{ ca_file = "{pki.path("ca.crt")}" }}\n'
        f'[influx]\nurl = "{influxd.url}"\n[http]\nlisten = "127.0.0.1:0"\n'
    )
    return path


def _agent_config(tmp_path: Path, pki: Pki, broker: Mosquitto, device: str) -> Path:
    host, port = device.rsplit(":", 1)
    path = tmp_path / "agent.toml"
    path.write_text(
        f'[agent]\ngateway_id = "gw-a"\ndata_dir = "{tmp_path / "agent"}"\n'
        f'[mqtt]\nurl = "{broker.mtls_url}"\nreconnect_max_s = 1.0\n'
        f'tls = {{ ca_file = "{pki.path("ca.crt")}", cert_file = "{pki.path("gw-a.crt")}", '
        f'key_file = "{pki.path("gw-a.key")}" }}\n[publish]\nmax_age_s = 0.2\n'
        f'[[devices]]\nid = "vds-1"\nprofile = "vds_modbus"\ninterval_s = 0.5\nunit = 1\n'
        f'tcp = {{ host = "{host}", port = {port} }}\n'
    )
    return path


def _help_texts() -> str:
    parser = build_parser()
    texts = [parser.format_help()]
    stack = [parser]
    while stack:
        for action in stack.pop()._actions:
            if isinstance(action, argparse._SubParsersAction):
                for choice in action.choices.values():
                    texts.append(choice.format_help())
                    stack.append(choice)
    return "\n".join(texts)


def test_agent_over_mutual_tls_to_collector_over_password_tls(
    tmp_path: Path, pki: Pki, secure_broker: Mosquitto, influxd: Influxd, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    scenario = tmp_path / "scenario.toml"
    scenario.write_text(SCENARIO)
    sim = subprocess.Popen([sys.executable, "-m", "roadpulse", "sim", "run", "-s", str(scenario)],
                           stdout=subprocess.PIPE, text=True)
    agent_log = tmp_path / "agent.log"
    agent: subprocess.Popen[bytes] | None = None
    try:
        assert sim.stdout is not None
        sim.stdout.readline()
        device = sim.stdout.readline().split("\t")[2]
        with agent_log.open("wb") as out:
            agent = subprocess.Popen(
                [sys.executable, "-m", "roadpulse", "agent", "run", "-c",
                 str(_agent_config(tmp_path, pki, secure_broker, device))],
                stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        collector = Collector(load_collector_config(_collector_config(tmp_path, pki, secure_broker, influxd)))

        async def scenario_run() -> str:
            async with running(collector):
                await wait_for(lambda: count_readings(influxd.url, "roadpulse") > 0, 30, "readings of gw-a")
                # gw-b, on its own topic, with a birth that claims to be gw-a's: refused by the collector.
                forger = connect(secure_broker.mtls_port, ca=pki.path("ca.crt"), cert=pki.path("gw-b.crt"),
                                 key=pki.path("gw-b.key"))
                try:
                    birth = encode_birth(make_birth("gw-a", "0123456789abcdef"))
                    assert forger.publish(Topics("gw-b").birth, birth).value < 128
                finally:
                    forger.close()
                await wait_for(lambda: collector.stats.dead_letters >= 1, 10, "the forged birth dead-lettered")
                url = f"http://127.0.0.1:{collector.http_port}/metrics"
                return await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=5).read().decode())

        metrics = asyncio.run(scenario_run())
        tags = influxd.query('SHOW TAG VALUES WITH KEY = "gateway"', "roadpulse")
        gateways = {v[1] for r in tags["results"] for s in r.get("series", []) for v in s["values"]}
        assert gateways == {"gw-a"}
    finally:
        for proc in (agent, sim):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                proc.wait(15)
    dead = "".join(p.read_text() for p in (tmp_path / "collector" / "deadletters").glob("*.jsonl"))
    assert "gateway-mismatch" in dead
    shown = {"logs": caplog.text, "agent log": agent_log.read_text(), "metrics": metrics,
             "dead letters": dead, "--help": _help_texts()}
    for where, text in shown.items():
        for secret in PASSWORDS.values():
            assert secret not in text, f"a password appears in the {where}"
    assert "link_up" in shown["agent log"]


def test_agent_and_collector_verify_the_broker_by_default(
    tmp_path: Path, pki: Pki, secure_broker: Mosquitto, caplog: pytest.LogCaptureFixture
) -> None:
    """A broker certificate from a CA the client was not given is refused: with the wrong ca_file
    (agent), and with none at all, i.e. the system's CAs (collector)."""
    agent_toml = tmp_path / "agent.toml"
    agent_toml.write_text(
        f'[agent]\ngateway_id = "gw-a"\ndata_dir = "{tmp_path / "agent"}"\n'
        f'[mqtt]\nurl = "{secure_broker.mtls_url}"\nreconnect_max_s = 1.0\n'
        f'tls = {{ ca_file = "{pki.path("other-ca.crt")}", cert_file = "{pki.path("gw-a.crt")}", '
        f'key_file = "{pki.path("gw-a.key")}" }}\n'
        '[[devices]]\nid = "d1"\nprofile = "vds_modbus"\ntcp = { host = "127.0.0.1", port = 9 }\n')
    log = tmp_path / "agent.log"
    with log.open("wb") as out:
        agent = subprocess.Popen([sys.executable, "-m", "roadpulse", "agent", "run", "-c", str(agent_toml)],
                                 stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        deadline = time.monotonic() + 20
        while "certificate verify failed" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "certificate verify failed" in log.read_text()
        assert '"link_up"' not in log.read_text()
    finally:
        agent.terminate()
        agent.wait(15)
    (tmp_path / "pw").write_text(PASSWORDS["collector-1"])
    collector_toml = tmp_path / "collector.toml"
    collector_toml.write_text(
        f'[collector]\nclient_id = "collector-1"\ndata_dir = "{tmp_path / "collector"}"\n'
        f'[mqtt]\nurl = "{secure_broker.url}"\nusername = "collector-1"\npassword_file = "pw"\n'
        '[influx]\nurl = "http://127.0.0.1:9"\n[http]\nlisten = "127.0.0.1:0"\n')
    collector = Collector(load_collector_config(collector_toml))

    async def attempt() -> None:
        stop = asyncio.Event()
        async with asyncio.TaskGroup() as tg:
            tg.create_task(collector.run(stop), name="collector")
            await asyncio.sleep(3)
            stop.set()

    caplog.set_level(logging.INFO)
    asyncio.run(attempt())
    assert not collector.stats.mqtt_connected
    errors = [str(getattr(record, "error", "")) for record in caplog.records]
    assert any("certificate verify failed" in error for error in errors), errors
