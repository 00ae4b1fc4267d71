"""A provisioned bundle installs offline with its own install.sh (here on this machine's CPU).

NO_SYSTEM=1 keeps the script to files (no user, no systemctl): the machine is not ours to change.
The arm64 run of the same bundle is tests/packaging/test_arm64.py.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from roadpulse.cli import main

from .test_wheel import build_wheel

INSTALLED = "import importlib.metadata as m; print(sorted(d.metadata['Name'].lower() for d in m.distributions()))"


def build_offline_bundle(tmp: Path, machine: str, devices: str, broker_url: str = "mqtts://127.0.0.1:8884") -> Path:
    """A pure wheel, a wheelhouse for `machine`, a CA (tmp/ca) and a cert bundle for gateway gw-offline."""
    wheel = build_wheel(tmp / "build", pure=True)
    assert main(["provision", "wheelhouse", machine, "--wheel", str(wheel), "-o", str(tmp / "wh")]) == 0
    if not (tmp / "ca" / "ca.crt").exists():  # the caller's CA, when it made one for its broker
        assert main(["provision", "ca", "Test CA", "-o", str(tmp / "ca")]) == 0
    (tmp / "devices.toml").write_text(devices)
    assert main(["provision", "gateway", "gw-offline", "--site", "test bench", "--ca", str(tmp / "ca" / "ca.crt"),
                 "--broker", broker_url, "--devices", str(tmp / "devices.toml"),
                 "--wheelhouse", f"{machine}={tmp / 'wh'}", "-o", str(tmp / "bundles")]) == 0
    return tmp / "bundles" / "gw-offline"


@pytest.mark.slow
def test_install_script_installs_offline_and_checks_the_config(tmp_path: Path) -> None:
    bundle = build_offline_bundle(tmp_path, platform.machine(),
                                  '[[devices]]\nid = "d1"\nprofile = "vds_modbus"\ntcp = { host = "127.0.0.1" }\n')
    target = tmp_path / "gateway"
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    # No index at all: pip must find everything in the bundle's wheelhouse.
    env |= {"PYTHON": shutil.which("python3") or sys.executable, "PREFIX": str(target / "opt"),
            "ETC": str(target / "etc"), "UNIT_DIR": str(target / "systemd"), "NO_SYSTEM": "1",
            "PIP_INDEX_URL": "http://127.0.0.1:9/nothing", "PIP_NO_CACHE_DIR": "1"}
    done = subprocess.run(["sh", str(bundle / "install.sh")], env=env, capture_output=True, text=True,
                          timeout=300, check=False, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "agent config OK: gateway gw-offline" in done.stdout
    assert (target / "etc" / "tls" / "gw-offline.key").exists()
    assert (target / "systemd" / "roadpulse-agent.service").exists()
    listing = subprocess.run([str(target / "opt" / "bin" / "python"), "-c", INSTALLED], capture_output=True,
                             text=True, check=True, cwd=target).stdout
    assert "pymodbus" in listing
    assert "cryptography" not in listing
