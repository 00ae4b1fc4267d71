"""Wheels for an offline install on the gateway's own CPU: `pip download` for another platform.

Only binary wheels (`--only-binary=:all:`): nothing is compiled on site, and a dependency
without a wheel for that CPU is an error here, on the operator's machine, not on the pole.
roadpulse's own wheel must be pure (build it with ROADPULSE_PURE=1): the agent does not use
the collector's C loop.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

# Debian 12 has glibc 2.36: any manylinux wheel up to 2_36 runs there.
_GLIBC = ("2_36", "2_35", "2_34", "2_31", "2_28", "2_24", "2_17")
PLATFORMS = {
    machine: [f"manylinux_{v}_{machine}" for v in _GLIBC] + [f"manylinux2014_{machine}"]
    for machine in ("aarch64", "armv7l", "x86_64")
}


# Dependencies with no wheel for some CPUs but a pure-Python build of their own: built here once,
# as a py3-none-any wheel, with the switch each one documents.
PURE_FALLBACKS = {"msgpack": ("msgpack>=1.0,<2", "MSGPACK_PUREPYTHON")}


class WheelhouseError(Exception):
    """pip could not find binary wheels for everything."""


def download_wheelhouse(machine: str, wheel: Path, out: Path, python_version: str = "3.11") -> list[Path]:
    """The agent extra's wheels (and pip's own, to install with) for `machine` into `out`."""
    if not wheel.name.endswith("-none-any.whl"):
        raise WheelhouseError(f"{wheel.name} is not a pure wheel: build one with ROADPULSE_PURE=1 pip wheel .")
    out.mkdir(parents=True, exist_ok=True)
    abi = "cp" + python_version.replace(".", "")
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
               "--only-binary=:all:", "--implementation", "cp", "--python-version", python_version,
               "--abi", abi, "--abi", "abi3", "--abi", "none"]
    for platform in PLATFORMS[machine] + ["any"]:
        command += ["--platform", platform]
    command += ["--find-links", str(out), "--dest", str(out), f"roadpulse[agent] @ {wheel.resolve().as_uri()}", "pip"]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    missing = [name for name in PURE_FALLBACKS if f"requirement {name}" in done.stderr]
    if done.returncode != 0 and missing:
        # e.g. msgpack publishes no armv7l wheels: use its pure-Python build (slower, same results).
        for name in missing:
            _pure_wheel(*PURE_FALLBACKS[name], out)
        done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise WheelhouseError(f"pip download for {machine} failed:\n{done.stderr.strip()}")
    return sorted(out.glob("*.whl"))


def _pure_wheel(requirement: str, switch: str, out: Path) -> None:
    name = re.split(r"[<>=!~ ]", requirement, maxsplit=1)[0]
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check", "--no-deps",
         "--no-binary", name, "--wheel-dir", str(out), requirement],
        capture_output=True, text=True, check=False, env={**os.environ, switch: "1"})
    if done.returncode != 0:
        raise WheelhouseError(f"building a pure-Python wheel of {name} failed:\n{done.stderr.strip()}")
