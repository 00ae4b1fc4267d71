"""The gateway's own CPU: a provisioned bundle installed offline into an arm64 Debian 12 root and
the agent run there under user-mode emulation (qemu-aarch64-static -L ROOT), over mutual TLS to a
private mosquitto with the ACL, readings stored by a collector in a private influxd.

No binfmt handler, no kernel setting: qemu runs the one Python process. The root is built by
scripts/arm64-root.sh from Debian's arm64 packages and cached in .cache/arm64 (gitignored).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from roadpulse.cli import main
from roadpulse.services import BrokerSecurity, Influxd, Mosquitto, count_readings
from tests.scenarios import one_station

from .test_install_bundle import INSTALLED, build_offline_bundle

REPO = Path(__file__).resolve().parents[2]
QEMU = "qemu-aarch64-static"

SCENARIO = one_station("arm64")


def _arm64_root() -> Path:
    if shutil.which(QEMU) is None:
        pytest.fail(f"{QEMU} is not installed: scripts/setup.sh installs qemu-user-static")
    done = subprocess.run(["bash", str(REPO / "scripts" / "arm64-root.sh"), str(REPO / ".cache" / "arm64")],
                          capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, done.stderr
    return Path(done.stdout.strip().splitlines()[-1])


def _wait(predicate: object, what: str, timeout: float, *procs: subprocess.Popen[bytes]) -> None:
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while not predicate():
        for proc in procs:
            assert proc.poll() is None, f"{proc.args} exited with {proc.returncode} before {what}"
        assert time.monotonic() < deadline, f"no {what} within {timeout} s"
        time.sleep(0.5)


@pytest.mark.slow
@pytest.mark.arm64
@pytest.mark.timeout(900)  # a cold root (download) and emulated pip: minutes on a loaded machine
def test_bundle_installs_offline_and_runs_on_arm64(tmp_path: Path, influxd: Influxd) -> None:
    root = _arm64_root()
    python = root / "usr" / "bin" / "python3.11"
    run = [QEMU, "-L", str(root)]
    # The operator's side: a CA, the broker's certificate, ACL and collector password.
    assert main(["provision", "ca", "Test CA", "-o", str(tmp_path / "ca")]) == 0
    broker_dir = tmp_path / "broker"
    assert main(["provision", "broker", "127.0.0.1", "--ca", str(tmp_path / "ca" / "ca.crt"),
                 "--collector", "collector-1", "-o", str(broker_dir)]) == 0
    broker = Mosquitto(tmp_path / "mosquitto", security=BrokerSecurity(
        broker_dir / "ca.crt", broker_dir / "broker.crt", broker_dir / "broker.key", broker_dir / "passwd",
        broker_dir / "acl"))
    broker.start()
    procs: list[subprocess.Popen[bytes]] = []
    logs = tmp_path / "logs"
    logs.mkdir()

    def start(name: str, argv: list[str], **kwargs: object) -> subprocess.Popen[bytes]:
        with (logs / f"{name}.log").open("wb") as out:
            proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, **kwargs)  # type: ignore[call-overload]
        procs.append(proc)
        return proc

    try:
        scenario = tmp_path / "scenario.toml"
        scenario.write_text(SCENARIO)
        sim = start("sim", [sys.executable, "-m", "roadpulse", "sim", "run", "-s", str(scenario)],
                    env={**os.environ, "PYTHONUNBUFFERED": "1"})
        _wait(lambda: "modbus-tcp" in (logs / "sim.log").read_text(), "simulated device", 30, sim)
        line = next(ln for ln in (logs / "sim.log").read_text().splitlines() if "modbus-tcp" in ln)
        host, port = line.split("\t")[2].rsplit(":", 1)
        devices = (f'[[devices]]\nid = "vds-1"\nprofile = "vds_modbus"\ninterval_s = 1.0\nunit = 1\n'
                   f'tcp = {{ host = "{host}", port = {port} }}\n')
        # The bundle, with the aarch64 wheelhouse, for the broker's mutual-TLS port.
        bundle = build_offline_bundle(tmp_path, "aarch64", devices, broker_url=broker.mtls_url)
        target = tmp_path / "gateway"
        env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
        env |= {"PYTHON": str(python), "RUN": " ".join(run), "MACHINE": "aarch64", "NO_SYSTEM": "1",
                "PREFIX": str(target / "opt"), "ETC": str(target / "etc"), "UNIT_DIR": str(target / "systemd"),
                "PIP_INDEX_URL": "http://127.0.0.1:9/nothing", "PIP_NO_CACHE_DIR": "1"}
        began = time.monotonic()
        done = subprocess.run(["sh", str(bundle / "install.sh")], env=env, capture_output=True, text=True,
                              timeout=900, check=False)
        print(f"install.sh under emulation: {time.monotonic() - began:.0f} s")
        assert done.returncode == 0, done.stdout + done.stderr
        assert "agent config OK: gateway gw-offline" in done.stdout
        listing = subprocess.run([*run, str(target / "opt" / "bin" / "python"), "-c", INSTALLED],
                                 capture_output=True, text=True, check=True, cwd=target).stdout.replace("-", "_")
        assert "pydantic_core" in listing
        assert "cryptography" not in listing
        config = target / "etc" / "agent.toml"
        config.write_text(config.read_text().replace('"/var/lib/roadpulse/agent"', f'"{target / "queue"}"'))
        # The collector on this machine, with its provisioned password over TLS.
        collector_toml = tmp_path / "collector.toml"
        collector_toml.write_text(
            f'[collector]\nclient_id = "collector-1"\ndata_dir = "{tmp_path / "collector"}"\n'
            f'[mqtt]\nurl = "{broker.url}"\nusername = "collector-1"\n'
            f'password_file = "{broker_dir / "collector-1.password"}"\n'
            f'tls = {{ ca_file = "{broker_dir / "ca.crt"}" }}\n'
            f'[influx]\nurl = "{influxd.url}"\n[http]\nlisten = "127.0.0.1:0"\n')
        collector = start("collector", [sys.executable, "-m", "roadpulse", "collector", "run", "-c",
                                        str(collector_toml)])
        agent = start("agent", [*run, str(target / "opt" / "bin" / "python"), "-m", "roadpulse", "agent", "run",
                                "-c", str(config)], env={**env, "PYTHONUNBUFFERED": "1"})
        began = time.monotonic()
        _wait(lambda: count_readings(influxd.url, "roadpulse") > 0, "readings in InfluxDB", 180, agent, collector)
        print(f"first readings stored {time.monotonic() - began:.0f} s after the emulated agent started")
        assert Path(f"/proc/{agent.pid}/exe").resolve().name == QEMU  # the agent really ran emulated
        tags = influxd.query('SHOW TAG VALUES WITH KEY = "gateway"', "roadpulse")
        assert {v[1] for r in tags["results"] for s in r.get("series", []) for v in s["values"]} == {"gw-offline"}
        assert '"link_up"' in (logs / "agent.log").read_text()
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        broker.stop()
