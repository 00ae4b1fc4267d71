"""The agent's own drivers read every simulated device of the full road, and agree with the truth file.

This couples two halves written apart: the simulator encodes with the profiles,
the agent decodes with them. A disagreement is a bug in one of the codecs.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from agent.catalog import DeviceEntry
from agent.config import Bus as BusConfig
from agent.config import Device, SerialLink, TcpLink
from firmware_sim.clock import ManualClock
from firmware_sim.runner import Endpoint, Simulator
from firmware_sim.scenario import load_scenario
from firmware_sim.truth import read_truth
from roadpulse.profiles import load_profile
from roadpulse.wire import Quality

pytestmark = pytest.mark.slow
G60 = Path(__file__).resolve().parents[2] / "config" / "scenarios" / "g60-mountain.toml"


def _source(ep: Endpoint, buses: dict[str, Any]) -> Any:
    from agent.sources import create_source
    from agent.sources.modbus.bus import SerialBus

    profile = load_profile(ep.profile)
    if ep.protocol == "modbus-tcp":
        host, port = ep.address.rsplit(":", 1)
        device = Device(
            id=ep.device_id,
            profile=ep.profile,
            unit=ep.unit or 1,
            timeout_s=1.0,
            tcp=TcpLink(host=host, port=int(port)),
        )
        return create_source(DeviceEntry(device, profile, {}))
    if ep.protocol == "modbus-rtu":
        if ep.address not in buses:
            link = SerialLink(port=ep.address, baudrate=ep.baudrate)
            buses[ep.address] = SerialBus(BusConfig(id="rtu", serial=link, pause_ms=0, timeout_s=1.0))
        device = Device(id=ep.device_id, profile=ep.profile, unit=ep.unit or 1, bus="rtu", timeout_s=1.0)
        return create_source(DeviceEntry(device, profile, {}), bus=buses[ep.address])
    device = Device(
        id=ep.device_id, profile=ep.profile, timeout_s=2.0, serial=SerialLink(port=ep.address, baudrate=ep.baudrate)
    )
    return create_source(DeviceEntry(device, profile, {}))


def test_agent_drivers_read_every_device_as_served(tmp_path: Path) -> None:
    scenario = load_scenario(G60).model_copy(update={"faults": [], "random_faults": None})
    truth_path = tmp_path / "truth.jsonl"
    got: dict[str, list[Any]] = {}

    async def main() -> None:
        buses: dict[str, Any] = {}
        async with Simulator(scenario, truth_path=truth_path, clock=ManualClock(time_scale=5.0, t=95.0)) as sim:
            for ep in sim.endpoints:
                source = _source(ep, buses)
                try:
                    await source.connect()
                    if ep.profile == "wind_nmea":
                        await asyncio.sleep(1.0)  # free-running: collect a full cycle of sentences
                    got[ep.device_id] = await source.read()
                finally:
                    await source.close()
            for bus in buses.values():
                bus.close()

    asyncio.run(main())
    truth: dict[tuple[str, str], dict[str, Any]] = {}
    for row in read_truth(truth_path):
        truth[(row["device_id"], row["point"])] = row  # the last one served is what the agent read
    assert len(got) == 18
    compared = 0
    for device_id, readings in got.items():
        for reading in readings:
            row = truth[(device_id, reading.name)]
            if row["invalid"]:
                # An empty NMEA field comes back as reason "parse" today; a sentinel or '#' as "invalid".
                assert reading.quality == Quality.BAD, (device_id, reading)
                assert reading.reason in ("invalid", "parse"), (device_id, reading)
                continue
            assert reading.quality == Quality.GOOD, (device_id, reading)
            # The truth holds the value as decoded from the wire: equal, not merely close.
            assert type(reading.value) is type(row["value"]), (device_id, reading, row)
            if isinstance(row["value"], float):
                assert reading.value == pytest.approx(row["value"], rel=1e-9, abs=0.0), (device_id, reading.name)
            else:
                assert reading.value == row["value"], (device_id, reading.name)
            compared += 1
    assert compared > 300
