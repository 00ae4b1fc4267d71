"""Modbus RTU on a real pseudo-terminal: several slaves on one bus, silence, exceptions, garbage, unplug."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable

import pytest
from known_registers import PROFILES
from modbus_peers import FakeSlave, RtuPeer

from agent.catalog import DeviceEntry
from agent.config import Bus, Device, SerialLink
from agent.schedule import DeviceStats, poll_forever
from agent.sources import create_source
from agent.sources.base import DeviceError, LinkError, Source, SourceReading
from agent.sources.modbus.bus import SerialBus
from agent.sources.modbus.source import ModbusSource
from roadpulse.profiles import ModbusProfile, load_profile
from roadpulse.wire import Quality, Reading

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


class TimedSource:
    """Wraps a source to record how long each poll took; passes its counters through."""

    def __init__(self, source: ModbusSource) -> None:
        self.source = source
        self.durations: list[float] = []

    async def connect(self) -> None:
        await self.source.connect()

    async def read(self) -> list[SourceReading]:
        started = time.monotonic()
        try:
            return await self.source.read()
        finally:
            self.durations.append(time.monotonic() - started)

    async def close(self) -> None:
        await self.source.close()

    def driver_counters(self) -> dict[str, int]:
        return self.source.driver_counters()


DEAD_TIMEOUT = 0.4


def test_a_dead_slave_delays_healthy_polls_by_at_most_its_timeout() -> None:
    """Retries are ours, one attempt per turn: healthy slaves' requests go between a dead slave's attempts."""

    async def main() -> None:
        peer = RtuPeer({1: _weather(503, -25), 2: FakeSlave(silent=True), 3: _weather(400, 100)}, reply_delay=0.01)
        # The bus says 0.3 s and one retry; the dead device sets its own, which must win.
        bus = SerialBus(Bus(id="line1", serial=SerialLink(port=peer.path, baudrate=19200), pause_ms=20,
                            timeout_s=0.3, retries=1))
        profile = load_profile("small_rtu", [PROFILES])
        assert isinstance(profile, ModbusProfile)
        devices = {
            2: Device(id="dead", profile="small_rtu", bus="line1", unit=2, interval_s=30.0,
                      timeout_s=DEAD_TIMEOUT, retries=2),
            1: Device(id="wx1", profile="small_rtu", bus="line1", unit=1, interval_s=0.25),
            3: Device(id="wx3", profile="small_rtu", bus="line1", unit=3, interval_s=0.25),
        }
        sources: dict[int, TimedSource] = {}
        for unit, device in devices.items():
            source = create_source(DeviceEntry(device, profile, {"humidity": 0, "air_temp": 1}), bus=bus)
            assert isinstance(source, ModbusSource)
            sources[unit] = TimedSource(source)
        emitted: dict[int, list[Reading]] = {u: [] for u in devices}
        stats = {u: DeviceStats() for u in devices}

        def emitter(unit: int) -> Callable[[list[Reading]], Awaitable[None]]:
            async def emit(readings: list[Reading]) -> None:
                emitted[unit].extend(readings)
            return emit

        try:
            await bus.link.connect()  # opening the port is not part of any poll's delay
            async with asyncio.TaskGroup() as tg:
                # The dead slave's poll is created first, so its first attempt holds the line when the others start.
                tasks = [tg.create_task(poll_forever(DeviceEntry(devices[u], profile, {"humidity": 0, "air_temp": 1}),
                                                     sources[u], emitter(u), stats=stats[u]),
                                        name=f"poll[{devices[u].id}]") for u in devices]
                await asyncio.sleep(2.0)
                for task in tasks:
                    task.cancel()
        finally:
            for source in sources.values():
                await source.close()
            bus.close()
            peer.close()

        # The dead slave: one poll of three attempts, each its own timeout (not the bus's), all readings bad.
        assert sources[2].source.timeout_s == DEAD_TIMEOUT
        assert sources[2].source.retries == 2
        assert peer.slaves[2].requests == 3
        assert {(r.quality, r.reason) for r in emitted[2]} == {(Quality.BAD, "timeout")}
        assert stats[2].errors == 1
        counters = stats[2].driver_counters
        assert (counters["modbus_requests"], counters["modbus_retries"], counters["modbus_timeouts"]) == (3, 2, 3)
        assert sources[2].durations[0] >= 3 * DEAD_TIMEOUT * 0.9
        dead_at = [t for (unit, *_), t in zip(peer.log, peer.request_times, strict=False) if unit == 2]
        assert all(b - a >= DEAD_TIMEOUT * 0.9 for a, b in itertools.pairwise(dead_at))
        # Other slaves were served between the dead slave's attempts: the line is released between retries.
        between = [unit for (unit, *_), t in zip(peer.log, peer.request_times, strict=False)
                   if dead_at[0] < t < dead_at[-1] and unit != 2]
        assert set(between) == {1, 3}

        # Healthy slaves: every reading good, and no poll waited more than one dead attempt (plus margin).
        for unit, (rh, temp) in {1: (50.3, -2.5), 3: (40.0, 10.0)}.items():
            assert stats[unit].errors == 0
            assert stats[unit].polls >= 3
            assert {(r.quality, r.reason) for r in emitted[unit]} == {(Quality.GOOD, "")}
            values = sorted({r.value for r in emitted[unit] if isinstance(r.value, float)})
            assert values == pytest.approx(sorted([rh, temp]))
            # Generous margin for a loaded CI machine; pymodbus-internal retries would take ~1.2 s here.
            assert max(sources[unit].durations) < DEAD_TIMEOUT + 0.45, sources[unit].durations
            assert stats[unit].driver_counters["modbus_timeouts"] == 0
        assert peer.overlaps == 0

    asyncio.run(main())
