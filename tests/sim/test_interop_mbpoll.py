"""Debian's mbpoll, a Modbus master no one here wrote, reads the simulated registers as the truth file says."""

from __future__ import annotations

import asyncio
import re
import shutil
from pathlib import Path

import pytest

from firmware_sim.clock import ManualClock
from firmware_sim.runner import Simulator
from firmware_sim.scenario import Scenario
from firmware_sim.truth import read_truth

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("mbpoll") is None, reason="mbpoll is not installed (apt install mbpoll)"),
]
_LINE = re.compile(r"^\[(\d+)\]:\s+(-?\d+)", re.MULTILINE)


async def mbpoll(*args: str) -> dict[int, int]:
    """Run one mbpoll poll and return {address: unsigned 16-bit value}."""
    proc = await asyncio.create_subprocess_exec(
        "mbpoll", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), 15)
    assert proc.returncode == 0, (out + err).decode()
    return {int(a): int(v) & 0xFFFF for a, v in _LINE.findall(out.decode())}


def _scenario(make_scenario: object) -> Scenario:
    assert callable(make_scenario)
    result = make_scenario()
    assert isinstance(result, Scenario)
    return result


def _truth_raw(path: Path, device: str) -> dict[str, object]:
    return {row["point"]: row["raw"] for row in read_truth(path) if row["device_id"] == device}


def test_mbpoll_reads_tcp_and_rtu_registers_as_served(make_scenario: object, tmp_path: Path) -> None:
    truth = tmp_path / "truth.jsonl"

    async def scenario() -> None:
        async with Simulator(_scenario(make_scenario), truth_path=truth, clock=ManualClock(t=45.0)) as sim:
            tcp = sim.endpoint("vds1")
            host, port = tcp.address.rsplit(":", 1)
            # -0: 0-based addresses as in the profile; -t 3: input registers; -1: poll once.
            lanes = await mbpoll(
                "-m", "tcp", "-a", str(tcp.unit), "-0", "-r", "0", "-c", "40", "-t", "3", "-1", "-p", port, host
            )
            rtu = sim.endpoint("rws1")
            weather = await mbpoll(
                "-m",
                "rtu",
                "-b",
                "19200",
                "-P",
                "none",
                "-a",
                str(rtu.unit),
                "-0",
                "-r",
                "0",
                "-c",
                "14",
                "-t",
                "3",
                "-1",
                "-o",
                "1",
                rtu.address,
            )
            hydro = await mbpoll(
                "-m",
                "rtu",
                "-b",
                "19200",
                "-P",
                "none",
                "-a",
                str(sim.endpoint("hyd1").unit),
                "-0",
                "-r",
                "0",
                "-c",
                "7",
                "-t",
                "3",
                "-1",
                "-o",
                "1",
                rtu.address,
            )
        served = _truth_raw(truth, "vds1")
        assert lanes[0] == served["interval_s"] == 20
        for lane in range(1, 5):
            base = 10 + 8 * (lane - 1)
            assert lanes[base] == served[f"lane{lane}_volume"]
            assert lanes[base + 1] == served[f"lane{lane}_occupancy"]
            assert lanes[base + 2] == served[f"lane{lane}_speed"]
            assert lanes[base + 3] + lanes[base + 4] + lanes[base + 5] == lanes[base]
        assert lanes[3] << 16 | lanes[4] == served["device_clock"]
        assert lanes[6] << 16 | lanes[5] == served["uptime_s"]  # CDAB: low word first
        rws = _truth_raw(truth, "rws1")
        assert weather[0] == int(rws["air_temp"]) & 0xFFFF  # type: ignore[call-overload]
        assert weather[3] == rws["rh"]
        assert weather[9] == rws["surface_state"]
        assert weather[10] << 16 | weather[11] == rws["visibility"]
        hyd = _truth_raw(truth, "hyd1")
        assert hydro[0] << 16 | hydro[1] == hyd["rain_tips"]
        assert hydro[3] == hyd["water_level"]

    asyncio.run(scenario())
