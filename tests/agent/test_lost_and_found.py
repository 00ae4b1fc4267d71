"""USB-serial adapters unplugged and plugged back, as udev does it: the symlink goes, then comes back.

Each link is logged once when lost and once when back, and the devices read
again without a restart.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

import pytest
from known_registers import PROFILES
from modbus_peers import FakeSlave, RtuPeer

from agent.catalog import DeviceEntry
from agent.config import Bus, Device, SerialLink
from agent.sources import create_source
from agent.sources.base import DeviceError, LinkError, Source
from agent.sources.modbus.bus import SerialBus
from roadpulse.backoff import Backoff
from roadpulse.profiles import ModbusProfile, SerialProfile, load_profile

pytestmark = pytest.mark.slow


async def _read_until_ok(source: Source, seconds: float) -> int:
    """Poll like the scheduler would; return how many polls failed with LinkError first."""
    failures = 0
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while loop.time() < deadline:
        try:
            await source.read()
            return failures
        except LinkError:
            failures += 1
            await asyncio.sleep(0.05)
    pytest.fail("the link did not come back")


def _events(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [str(getattr(r, "event", "")) for r in caplog.records if getattr(r, "event", None)]


def test_rtu_bus_adapter_unplugged_and_back(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    link_path = tmp_path / "ttyUSB0"

    async def main() -> None:
        slaves = {1: FakeSlave(inputs={11: 500, 32: 100})}
        peer = RtuPeer(slaves)
        link_path.symlink_to(peer.path)
        bus = SerialBus(Bus(id="b", serial=SerialLink(port=str(link_path)), timeout_s=0.2, retries=0))
        bus.link._backoff = Backoff(base=0.1, cap=0.2)  # test speed; production starts at 1 s
        profile = load_profile("small_rtu", [PROFILES])
        assert isinstance(profile, ModbusProfile)
        entry = DeviceEntry(Device(id="wx", profile="small_rtu", bus="b", unit=1), profile, {})
        source = create_source(entry, bus=bus)
        try:
            await source.read()
            peer.unplug()
            link_path.unlink()
            with pytest.raises(LinkError):
                await source.read()
            for _ in range(3):
                with pytest.raises(LinkError):
                    await source.read()
                await asyncio.sleep(0.1)
            peer.close()
            replugged = RtuPeer(slaves)
            link_path.symlink_to(replugged.path)
            try:
                await _read_until_ok(source, 5.0)
            finally:
                bus.close()
                replugged.close()
        finally:
            bus.close()
            peer.close()

    asyncio.run(main())
    assert _events(caplog) == ["link_down", "link_up"]


def test_ascii_adapter_unplugged_and_back(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    link_path = tmp_path / "ttyUSB1"

    async def main() -> None:
        profile = load_profile("nmea_wind", [PROFILES])
        assert isinstance(profile, SerialProfile)
        device = Device(id="wind", profile="nmea_wind", serial=SerialLink(port=str(link_path)), timeout_s=0.3)
        source = create_source(DeviceEntry(device, profile, {}))
        source._backoff = Backoff(base=0.1, cap=0.2)  # type: ignore[attr-defined]
        loop = asyncio.get_running_loop()

        def talk(master: int) -> asyncio.Event:
            """A free-running sensor: one sentence every 50 ms until the returned event is set."""
            stop = asyncio.Event()

            def send() -> None:
                if stop.is_set():
                    return
                os.write(master, b"$IIMWV,271.0,R,000.2,N,A*3B\r\n")
                loop.call_later(0.05, send)

            loop.call_soon(send)
            return stop

        master, slave = os.openpty()
        link_path.symlink_to(os.ttyname(slave))
        stop_talking = talk(master)
        await source.read()
        stop_talking.set()
        os.close(master)
        os.close(slave)
        link_path.unlink()
        with pytest.raises(DeviceError):
            await source.read()
        with pytest.raises(LinkError):
            await source.read()
        master, slave = os.openpty()
        link_path.symlink_to(os.ttyname(slave))
        stop_talking = talk(master)
        try:
            await _read_until_ok(source, 5.0)
        finally:
            stop_talking.set()
            await source.close()
            os.close(master)
            os.close(slave)

    asyncio.run(main())
    assert _events(caplog) == ["link_down", "link_up"]
