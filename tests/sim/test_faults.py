"""Every fault kind, seen where a master sees it: bytes on TCP sockets and ptys.

A ManualClock puts the simulation at exact instants, so these tests do not race the clock.
"""

from __future__ import annotations

import asyncio
import struct
from typing import Any

import pytest

from firmware_sim import frames, modbus
from firmware_sim.clock import ManualClock
from firmware_sim.device import build_devices
from firmware_sim.faults import REBOOT_SILENCE_S, FaultPlan
from firmware_sim.runner import Simulator
from firmware_sim.scenario import Scenario

from .wire_clients import PtyClient, tcp_exchange

pytestmark = pytest.mark.slow

TCP_KINDS = [
    "timeout",
    "exception",
    "garbage",
    "partial",
    "crc",
    "link_flap",
    "reboot",
    "stuck",
    "spike",
    "clock_drift",
]
RTU_KINDS = {"timeout": 2, "exception": 3, "garbage": 4, "partial": 5, "crc": 6}
READ_LANES = bytes.fromhex("04 0000 0028")  # input registers 0-39: header and four lanes


def _fault_scenario() -> Scenario:
    devices: list[dict[str, Any]] = [
        {"id": f"vds-{kind}", "kind": "traffic", "profile": "vds_modbus", "protocol": "modbus-tcp", "km": 3.0}
        for kind in ["clean", *TCP_KINDS]
    ]
    devices += [
        {
            "id": f"rws-{kind}",
            "kind": "weather",
            "profile": "rws_modbus",
            "protocol": "modbus-rtu",
            "bus": "bus1",
            "unit": unit,
            "km": 3.0,
        }
        for kind, unit in [("clean", 1), *RTU_KINDS.items()]
    ]
    devices += [
        {"id": "wxt-crc", "kind": "weather", "profile": "wxt_ascii", "protocol": "ascii", "km": 3.0},
        {
            "id": "wind-crc",
            "kind": "weather",
            "profile": "wind_nmea",
            "protocol": "ascii",
            "km": 3.0,
            "interval_s": 1.0,
            "free_running": True,
        },
    ]
    faults: list[dict[str, Any]] = [
        {"device": f"vds-{k}", "kind": k, "start_s": 0.0 if k != "reboot" else 100.0, "duration_s": 10_000.0}
        for k in TCP_KINDS
    ]
    faults[TCP_KINDS.index("link_flap")]["magnitude"] = 50.0
    faults += [{"device": f"rws-{k}", "kind": k, "start_s": 0.0, "duration_s": 10_000.0} for k in RTU_KINDS]
    faults += [{"device": d, "kind": "crc", "start_s": 0.0, "duration_s": 10_000.0} for d in ("wxt-crc", "wind-crc")]
    return Scenario.model_validate(
        {
            "name": "faults",
            "seed": 5,
            "start": "2026-03-02T08:00:00+08:00",
            "time_scale": 1000.0,
            "road": {"length_km": 6.0, "lanes": 4, "aadt": 50_000},
            "buses": [{"id": "bus1", "baudrate": 115200}],
            "devices": devices,
            "faults": faults,
        }
    )


def _words(response: bytes) -> list[int]:
    """Register words of a good MBAP read response."""
    pdu = response[7:]
    assert pdu[0] == 4, response.hex()
    return list(struct.unpack(f">{pdu[1] // 2}H", pdu[2:]))


async def _tcp(sim: Simulator, device: str, pdu: bytes = READ_LANES) -> bytes | None:
    return await asyncio.to_thread(tcp_exchange, sim.endpoint(device).address, pdu)


def test_every_fault_kind_over_modbus_tcp() -> None:
    async def scenario() -> None:
        clock = ManualClock(t=50.0)
        async with Simulator(_fault_scenario(), clock=clock) as sim:
            clean = await _tcp(sim, "vds-clean")
            assert clean is not None
            assert clean[:2] == b"\x12\x34"
            assert _words(clean)[:1] == [20]

            assert await _tcp(sim, "vds-timeout") == b""  # nothing within the wait: the master times out

            exc = await _tcp(sim, "vds-exception")
            assert exc is not None
            assert exc[7] == 0x84
            assert exc[8] in (modbus.DEVICE_FAILURE, modbus.DEVICE_BUSY)

            junk = await _tcp(sim, "vds-garbage")
            assert junk is not None
            assert not junk.startswith(b"\x12\x34")
            assert len(junk) > len(clean)
            assert junk[-len(clean) :][:9] == clean[:9]  # a whole response follows the junk

            part = await _tcp(sim, "vds-partial")
            assert part == clean[:6]  # the header arrives, the rest never does

            bad = await _tcp(sim, "vds-crc")
            assert bad is not None
            assert bad[8] != 80  # byte count no longer matches the 40 registers that follow

            # Link flap, 50 s down / 50 s up: refused or dropped while down, answers while up.
            clock.set(25.0)
            assert await _tcp(sim, "vds-link_flap") in (None, b"")
            clock.set(60.0)
            up = await _tcp(sim, "vds-link_flap")
            assert up is not None
            assert up[7] == 4

            # Reboot at 100 s: silent while booting, then counters restart and sensors warm up.
            before = await _tcp(sim, "vds-reboot")
            assert before is not None
            assert _words(before)[5] != 0 or _words(before)[6] > 100  # uptime (CDAB) is days before
            clock.set(100.0 + REBOOT_SILENCE_S / 2)
            assert await _tcp(sim, "vds-reboot") in (None, b"")
            clock.set(100.0 + REBOOT_SILENCE_S + 2)
            after = await _tcp(sim, "vds-reboot")
            assert after is not None
            words = _words(after)
            assert (words[5], words[6]) == (2, 0)  # uptime_s, words swapped (CDAB): 2 s
            assert words[1:3] == [0, 0]  # bin counter restarted
            assert words[10] == 65535  # lane 1 volume: invalid while the sensor warms up
            assert words[12] == 255  # lane 1 speed: invalid sentinel

            # Stuck: the same lane values long after the clean station moved on.
            clock.set(50.0)
            stuck_a, clean_a = await _tcp(sim, "vds-stuck"), await _tcp(sim, "vds-clean")
            clock.set(650.0)
            stuck_b, clean_b = await _tcp(sim, "vds-stuck"), await _tcp(sim, "vds-clean")
            assert stuck_a
            assert stuck_b
            assert clean_a
            assert clean_b
            assert _words(stuck_a)[10:40] == _words(stuck_b)[10:40]
            assert _words(clean_a)[10:40] != _words(clean_b)[10:40]

            # Spike: one point, magnitude × its true value; the twin without faults shows the true value.
            spiked = _words(await _tcp(sim, "vds-spike") or b"")
            truth = sim.device("vds-spike").snapshot(650.0)
            name = next(f for f in truth.faults if f.startswith("spike:")).split(":")[1]
            _, twins = build_devices(_fault_scenario().model_copy(update={"faults": []}))
            twin = next(d for d in twins if d.id == "vds-spike")
            true_words = twin.image(twin.snapshot(650.0)).words
            address = next(r.address for r in twin.profile.registers if r.name == name)  # type: ignore[union-attr]
            assert spiked[address] != true_words[("input", address)], name
            # Registers of other points are untouched (bar the ever-moving uptime and clock).
            changed = {a for a in range(40) if spiked[a] != true_words.get(("input", a), 0)} - {3, 4, 5, 6}
            assert changed <= {address, address + 1}

            # Clock drift: 20,000 ppm over 650 s puts the device clock 13 s ahead.
            drift = _words(await _tcp(sim, "vds-clock_drift") or b"")
            clock_now = drift[3] << 16 | drift[4]
            device = sim.device("vds-clock_drift")
            assert clock_now - int(device.start_epoch + 650.0) == pytest.approx(13, abs=1)

    asyncio.run(scenario())


def test_every_protocol_fault_over_modbus_rtu_on_one_bus() -> None:
    async def scenario() -> None:
        async with Simulator(_fault_scenario(), clock=ManualClock(t=30.0)) as sim:
            client = await asyncio.to_thread(PtyClient, sim.endpoint("rws-clean").address)
            try:

                async def ask(unit: int) -> bytes:
                    await asyncio.to_thread(client.send, modbus.read_request(unit, 4, 0, 14))
                    return await asyncio.to_thread(client.receive, 0.3)

                good = await ask(1)
                assert modbus.crc_ok(good)
                assert good[:3] == bytes([1, 4, 28])
                assert await ask(RTU_KINDS["timeout"]) == b""
                exc = await ask(RTU_KINDS["exception"])
                assert modbus.crc_ok(exc)
                assert exc[1] == 0x84
                junk = await ask(RTU_KINDS["garbage"])
                assert not modbus.crc_ok(junk[: len(good)]) or junk[0] != RTU_KINDS["garbage"]
                assert modbus.crc_ok(junk[-len(good) :])
                part = await ask(RTU_KINDS["partial"])
                assert 0 < len(part) < len(good)
                assert (await ask(1))[:3] == bytes([1, 4, 28])  # the bus recovers after a partial frame
                bad = await ask(RTU_KINDS["crc"])
                assert len(bad) == len(good)
                assert not modbus.crc_ok(bad)
                assert await ask(99) == b""  # no such unit on the bus: silence
            finally:
                client.close()

    asyncio.run(scenario())


def test_checksum_and_broken_frames_on_ascii_lines() -> None:
    async def scenario() -> None:
        async with Simulator(_fault_scenario(), clock=ManualClock(time_scale=10.0, t=30.0)) as sim:
            wind = await asyncio.to_thread(PtyClient, sim.endpoint("wind-crc").address)
            wxt = await asyncio.to_thread(PtyClient, sim.endpoint("wxt-crc").address)
            try:
                lines = (await asyncio.to_thread(wind.receive, 0.5)).decode("ascii").split("\r\n")
                sentences = [s for s in lines if s.startswith("$")]
                assert sentences
                assert not any(frames.nmea_valid(s) for s in sentences)
                await asyncio.to_thread(wxt.send, b"0R0\r\n")
                answer = (await asyncio.to_thread(wxt.receive, 0.5, b"\r\n")).decode("ascii")
                expected, _ = sim_frame(sim, "wxt-crc")
                assert answer.startswith("0R0,")
                assert answer != expected  # characters lost on the line
                assert len(answer) < len(expected)
            finally:
                wind.close()
                wxt.close()

    asyncio.run(scenario())


def sim_frame(sim: Simulator, device_id: str) -> tuple[str, list[str]]:
    from firmware_sim.serve_serial import AsciiDevice

    talker = AsciiDevice.__new__(AsciiDevice)
    talker.device = sim.device(device_id)
    talker.address = "0"
    return talker.vaisala("0", sim.clock.now())


def test_random_faults_are_drawn_from_the_seed() -> None:
    base = _fault_scenario().model_copy(update={"faults": []})
    rnd = {"seed": 9, "per_device_per_hour": 3.0, "mean_duration_s": 30.0, "horizon_s": 7200.0}
    one = FaultPlan.from_scenario(Scenario.model_validate({**base.model_dump(), "random_faults": rnd}))
    two = FaultPlan.from_scenario(Scenario.model_validate({**base.model_dump(), "random_faults": rnd}))
    other = FaultPlan.from_scenario(
        Scenario.model_validate({**base.model_dump(), "random_faults": {**rnd, "seed": 10}})
    )
    assert one.windows == two.windows
    assert one.windows != other.windows
    assert {w.kind for w in one.windows} == set(TCP_KINDS)
