"""The wheel as a new user installs it: a fresh virtualenv outside the checkout, run from another folder.

One module-scoped venv holds only `roadpulse[agent]` first (the gateway's install), then the
`all` extra is added for the demo, so the wheel is built and the venv made once.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from roadpulse.services import Mosquitto
from tests.scenarios import one_station

REPO = Path(__file__).resolve().parents[2]
# What `roadpulse[agent]` may pull in: the agent's own needs and pip's seed packages, nothing else.
AGENT_DISTRIBUTIONS = {
    "roadpulse", "msgpack", "pydantic", "pydantic-core", "annotated-types", "typing-extensions",
    "typing-inspection", "aiomqtt", "paho-mqtt", "pyserial", "pymodbus", "pip", "setuptools",
}


def _run(cmd: list[str], cwd: Path, timeout: float = 300, env: dict[str, str] | None = None) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")} | (env or {})
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    assert done.returncode == 0, f"{cmd} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def build_wheel(out: Path, *, pure: bool = False) -> Path:
    """Build from a copy of the working tree, so a stale build/ folder cannot leak into the wheel.
    `pure`: without the collector's C loop (py3-none-any), as gateways of any CPU install it."""
    source = out / "src"
    shutil.copytree(REPO, source, symlinks=True,
                    ignore=shutil.ignore_patterns(".git", ".venv", ".cache", "build", "dist", "*.egg-info",
                                                  "__pycache__", "*.so", ".mypy_cache", ".ruff_cache",
                                                  ".pytest_cache", ".hypothesis"))
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out / "dist"), str(source)], out,
         env={"ROADPULSE_PURE": "1"} if pure else None)
    (wheel,) = (out / "dist").glob("roadpulse-*.whl")
    return wheel


@pytest.fixture(scope="module")
def wheel_venv(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(venv, wheel): a virtualenv outside the checkout with only roadpulse[agent] installed."""
    base = tmp_path_factory.mktemp("wheel")
    wheel = build_wheel(base)
    venv = base / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], base)
    _run([str(venv / "bin" / "pip"), "install", "-q", f"{wheel}[agent]"], base)
    return venv, wheel


def _installed(venv: Path) -> set[str]:
    listing = json.loads(_run([str(venv / "bin" / "pip"), "list", "--format", "json"], venv))
    return {item["name"].lower().replace("_", "-") for item in listing}


AGENT_SCENARIO = one_station("wheel-test")


@pytest.mark.slow
def test_agent_extra_alone_runs_the_agent(wheel_venv: tuple[Path, Path], tmp_path: Path) -> None:
    venv, _ = wheel_venv
    assert _installed(venv) <= AGENT_DISTRIBUTIONS, _installed(venv) - AGENT_DISTRIBUTIONS
    refused = subprocess.run([str(venv / "bin" / "roadpulse"), "provision", "ca", "x", "-o", str(tmp_path / "ca")],
                             capture_output=True, text=True, check=False)
    assert refused.returncode == 2
    assert "pip install 'roadpulse[provision]'" in refused.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    broker = Mosquitto(tmp_path / "mosquitto")
    broker.start()
    scenario = tmp_path / "scenario.toml"
    scenario.write_text(AGENT_SCENARIO)
    # The simulated device comes from the checkout's environment; the agent from the wheel's.
    sim = subprocess.Popen([sys.executable, "-m", "roadpulse", "sim", "run", "-s", str(scenario)],
                           stdout=subprocess.PIPE, text=True)
    agent: subprocess.Popen[str] | None = None
    got: list[str] = []
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="wheel-test-watch")
    try:
        assert sim.stdout is not None
        sim.stdout.readline()  # the scenario header
        address = sim.stdout.readline().split("\t")[2]
        host, port = address.rsplit(":", 1)
        config = elsewhere / "agent.toml"
        config.write_text(
            f'[agent]\ngateway_id = "wheel-gw"\ndata_dir = "{tmp_path / "queue"}"\n'
            f'[mqtt]\nurl = "{broker.url}"\n[publish]\nmax_age_s = 0.2\n'
            f'[[devices]]\nid = "vds-1"\nprofile = "vds_modbus"\ninterval_s = 0.5\nunit = 1\n'
            f'tcp = {{ host = "{host}", port = {port} }}\n'
        )
        client.on_message = lambda _c, _u, msg: got.append(msg.topic)
        client.connect(broker.host, broker.port)
        client.subscribe("rp/v1/wheel-gw/#", qos=1)
        client.loop_start()
        agent = subprocess.Popen([str(venv / "bin" / "roadpulse"), "agent", "run", "-c", str(config)],
                                 cwd=elsewhere, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and "rp/v1/wheel-gw/data" not in got:
            assert agent.poll() is None, agent.stdout.read() if agent.stdout else ""
            time.sleep(0.2)
        assert "rp/v1/wheel-gw/birth" in got
        assert "rp/v1/wheel-gw/data" in got
    finally:
        client.loop_stop()
        for proc in (agent, sim):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                proc.wait(10)
        broker.stop()


@pytest.mark.slow
def test_installed_demo_runs_outside_the_checkout(wheel_venv: tuple[Path, Path], tmp_path: Path) -> None:
    venv, wheel = wheel_venv
    _run([str(venv / "bin" / "pip"), "install", "-q", f"{wheel}[all]"], tmp_path)
    summary = tmp_path / "summary.json"
    out = _run([str(venv / "bin" / "roadpulse"), "demo", "--duration", "10", "--summary-json", str(summary)],
               tmp_path, timeout=120)
    result = json.loads(summary.read_text())
    assert result["sent"] > 0, out
    assert result["stored"] == result["sent"], out
