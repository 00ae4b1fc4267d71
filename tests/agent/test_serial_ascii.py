"""SerialAsciiSource on a real pseudo-terminal: polled Vaisala, free-running NMEA, garbage, unplug."""

from __future__ import annotations

import asyncio
import contextlib
import os
import tty
from collections.abc import Iterator

import pytest
from known_registers import PROFILES

from agent.catalog import DeviceEntry
from agent.config import Device, SerialLink
from agent.sources import create_source
from agent.sources.base import DeviceError, LinkError
from agent.sources.serial_ascii import COUNTERS as SERIAL_ASCII_COUNTERS
from agent.sources.serial_ascii.source import SerialAsciiSource
from roadpulse.profiles import SerialProfile, load_profile
from roadpulse.wire import Quality

pytestmark = pytest.mark.slow

WXT = (
    b"0R0,Dn=000#,Dm=106#,Dx=182#,Sn=1.1#,Sm=4.0#,Sx=6.6#,Ta=16.0C,Ua=50.0P,Pa=1018.1H,Rc=0.00M,"
    b"Rd=0s,Ri=0.0M,Hc=0.0M,Hd=0s,Hi=0.0M,Rp=0.0M,Hp=0.0M,Th=15.6C,Vh=0.0N,Vs=15.2V,Vr=3.498V,Id=Ant\r\n"
)


@contextlib.contextmanager
def pty_pair() -> Iterator[tuple[int, str]]:
    master, slave = os.openpty()
    tty.setraw(slave)
    try:
        yield master, os.ttyname(slave)
    finally:
        for fd in (master, slave):
            with contextlib.suppress(OSError):
                os.close(fd)


def _source(profile_name: str, path: str, timeout: float = 0.5) -> SerialAsciiSource:
    profile = load_profile(profile_name, [PROFILES])
    assert isinstance(profile, SerialProfile)
    device = Device(id="dev", profile=profile_name, serial=SerialLink(port=path), timeout_s=timeout)
    source = create_source(DeviceEntry(device, profile, {}))
    assert isinstance(source, SerialAsciiSource)
    return source


def test_polled_vaisala_answers_its_command() -> None:
    async def main() -> None:
        with pty_pair() as (master, path):
            loop = asyncio.get_running_loop()
            commands: list[bytes] = []

            def answer() -> None:
                data = os.read(master, 100)
                commands.append(data)
                if data == b"0R0\r\n":
                    # A stray partial line first, as after power-up: skipped, not fatal.
                    os.write(master, b"R0,Dn=1\xff\xfe\r\n" + WXT)

            loop.add_reader(master, answer)
            source = _source("wxt_ascii", path)
            try:
                readings = {r.name: r for r in await source.read()}
                assert commands == [b"0R0\r\n"]
                assert (readings["air_temp"].value, readings["air_temp"].quality) == (16.0, Quality.GOOD)
                assert readings["pressure"].value == pytest.approx(1018.1)
                assert (readings["wind_dir"].value, readings["wind_dir"].reason) == (None, "invalid")
                assert readings["ident"].value == "Ant"
                assert source.counters["garbage"] == 1
                readings = {r.name: r for r in await source.read()}
                assert readings["air_temp"].value == 16.0
            finally:
                loop.remove_reader(master)
                await source.close()

    asyncio.run(main())


def test_silent_polled_device_times_out() -> None:
    async def main() -> None:
        with pty_pair() as (_master, path):
            source = _source("wxt_ascii", path, timeout=0.2)
            with pytest.raises(DeviceError) as info:
                await source.read()
            assert info.value.reason == "timeout"
            await source.close()

    asyncio.run(main())


def test_free_running_nmea_keeps_the_latest_values_and_skips_bad_checksums() -> None:
    async def main() -> None:
        with pty_pair() as (master, path):
            source = _source("nmea_wind", path)
            await source.connect()
            os.write(master, b"$IIMWV,270.0,R,000.1,N,A*39\r\n")
            os.write(master, b"$IIMWV,271.0,R,000.2,N,A*3B\r\n")
            os.write(master, b"$IIMWV,999.0,R,000.2,N,A*3B\r\n")  # checksum does not match
            os.write(master, b"@@@@noise@@@@\r\n$YXXDR,A,-64.437,M,N,A,054.454,D,E,C,17.09,C,T-N1052*46\r\n")
            await asyncio.sleep(0.1)
            readings = {r.name: r for r in await source.read()}
            assert readings["wind_angle"].value == 271.0
            assert readings["wind_speed"].value == pytest.approx(0.2)
            assert readings["pitch"].value == pytest.approx(-64.437)
            assert source.counters["checksum"] == 1
            assert source.counters["garbage"] == 1
            # The same under the stable names that DeviceStats.driver_counters (and health) carry.
            counted = source.driver_counters()
            assert list(counted) == list(SERIAL_ASCII_COUNTERS)
            assert (counted["frames_received"], counted["frames_parsed"], counted["frames_checksum"],
                    counted["frames_garbage"], counted["frames_overlong"]) == (5, 3, 1, 1, 0)
            # Nothing new since: the next read waits for a frame, then fills what arrived.
            loop = asyncio.get_running_loop()
            loop.call_later(0.05, os.write, master, b"$IIMWV,272.0,R,000.3,N,A*39\r\n")
            readings = {r.name: r for r in await source.read()}
            assert readings["wind_angle"].value == 272.0
            assert (readings["pitch"].quality, readings["pitch"].reason) == (Quality.BAD, "missing")
            await source.close()

    asyncio.run(main())


def test_unplugged_port_is_a_link_error_then_backs_off() -> None:
    async def main() -> None:
        with pty_pair() as (master, path):
            source = _source("nmea_wind", path)
            await source.connect()
            os.close(master)
            with pytest.raises(LinkError):
                await source.read()
            await source.close()
        with pytest.raises(LinkError):
            await _source("nmea_wind", "/dev/does-not-exist").read()

    asyncio.run(main())
