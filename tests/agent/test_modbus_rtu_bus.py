"""Modbus RTU on a real pseudo-terminal: several slaves on one bus, silence, exceptions, garbage, unplug."""

from __future__ import annotations

import asyncio
import time

import pytest
from known_registers import PROFILES
from modbus_peers import FakeSlave, RtuPeer

from agent.bus import SerialBus
from agent.catalog import DeviceEntry
from agent.config import Bus, Device, SerialLink
from agent.profiles import ModbusProfile, load_profile
from agent.sources import create_source
from agent.sources.base import DeviceError, LinkError, Source, SourceReading
from roadpulse.wire import Quality

pytestmark = pytest.mark.slow

TIMEOUT = 0.3


def _bus(path: str, pause_ms: int = 20) -> SerialBus:
    return SerialBus(Bus(id="line1", serial=SerialLink(port=path, baudrate=19200), pause_ms=pause_ms,
                         timeout_s=TIMEOUT, retries=0))


def _entry(unit: int) -> DeviceEntry:
    profile = load_profile("small_rtu", [PROFILES])
    assert isinstance(profile, ModbusProfile)
    device = Device(id=f"wx{unit}", profile="small_rtu", bus="line1", unit=unit, interval_s=1.0)
    return DeviceEntry(device, profile, {"humidity": 0, "air_temp": 1})


def _weather(rh: int, temp: int) -> FakeSlave:
    inputs = dict.fromkeys(range(11, 33), 0)
    inputs[11], inputs[32] = rh, temp & 0xFFFF
    return FakeSlave(inputs=inputs)


async def _read(source: Source) -> list[SourceReading] | DeviceError:
    try:
        return await source.read()
    except DeviceError as err:
        return err


def test_slaves_fail_alone_and_never_share_the_line() -> None:
    async def main() -> None:
        peer = RtuPeer({1: _weather(503, -25), 2: FakeSlave(silent=True), 3: FakeSlave(exception=2),
                        4: _weather(32767, 32767)}, reply_delay=0.01)
        bus = _bus(peer.path)
        sources = {u: create_source(_entry(u), bus=bus) for u in (1, 2, 3, 4)}
        try:
            latencies: list[float] = []
            for _ in range(3):
                async with asyncio.TaskGroup() as tg:
                    tasks = {u: tg.create_task(_read(s), name=f"poll[wx{u}]") for u, s in sources.items()}
                    started = time.monotonic()
                results = {u: t.result() for u, t in tasks.items()}
                latencies.append(time.monotonic() - started)
                good = results[1]
                assert isinstance(good, list)
                assert [(r.value, r.quality) for r in good] == [(pytest.approx(50.3), Quality.GOOD),
                                                               (pytest.approx(-2.5), Quality.GOOD)]
                assert isinstance(results[2], DeviceError)
                bad = results[3]
                assert isinstance(bad, list)
                assert {(r.quality, r.reason) for r in bad} == {(Quality.BAD, "exception:02")}
                sentinel = results[4]
                assert isinstance(sentinel, list)
                assert [r.reason for r in sentinel] == ["", "invalid"]  # 32767 is a valid humidity raw
            assert peer.overlaps == 0
            gaps = [b - a for a, b in zip(peer.request_times, peer.request_times[1:], strict=False)]
            assert min(gaps) >= 0.02 * 0.9  # the pause between requests
            # The silent slave costs one timeout the first time, then is backed off.
            assert peer.slaves[2].requests == 1
            assert max(latencies) < TIMEOUT + 0.5
        finally:
            for source in sources.values():
                await source.close()
            bus.close()
            peer.close()

    asyncio.run(main())


def test_garbage_answer_is_that_slaves_error() -> None:
    async def main() -> None:
        peer = RtuPeer({1: FakeSlave(garbage=b"\x01\x03\xff\xff\xff garbage"), 2: _weather(400, 100)})
        bus = _bus(peer.path)
        try:
            with pytest.raises(DeviceError) as info:
                await create_source(_entry(1), bus=bus).read()
            assert info.value.reason in ("timeout", "io")
            readings = await create_source(_entry(2), bus=bus).read()
            assert [r.value for r in readings] == [pytest.approx(40.0), pytest.approx(10.0)]
        finally:
            bus.close()
            peer.close()

    asyncio.run(main())


def test_unplugged_adapter_is_a_link_error() -> None:
    async def main() -> None:
        peer = RtuPeer({1: _weather(400, 100)})
        bus = _bus(peer.path)
        source = create_source(_entry(1), bus=bus)
        try:
            assert len(await source.read()) == 2
            peer.unplug()
            with pytest.raises(LinkError):
                await source.read()
            with pytest.raises(LinkError):
                await source.read()
        finally:
            bus.close()
            peer.close()

    asyncio.run(main())
