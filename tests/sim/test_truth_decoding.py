"""The truth file's `value` is exactly what the agent's own decoders get from the bytes served.

For every protocol the simulator speaks, frames and register images are decoded
with the agent's code (agent.sources.modbus.decode_register, which is
agent.codec.registers' decode and apply_point; agent.codec.frames' parser) and
compared with the truth: same validity, same type, equal values (floats within
1e-9 relative). A database loaded from these devices can thus be compared with
the truth file exactly, not within a register's or a frame's resolution.
"""

from __future__ import annotations

import asyncio
import math
import os
import select
import struct
from pathlib import Path
from typing import Any

import pytest

from agent.codec.frames import FieldValue, frame_parser
from agent.codec.planning import Span, plan_reads
from agent.codec.registers import register_count
from agent.sources.modbus.source import decode_register
from firmware_sim import modbus
from firmware_sim.clock import ManualClock
from firmware_sim.device import SimDevice, build_devices
from firmware_sim.frames import nmea_answer, vaisala_answer
from firmware_sim.runner import Simulator
from firmware_sim.scenario import Scenario, load_scenario
from firmware_sim.truth import read_truth
from roadpulse.profiles import ModbusProfile, SerialProfile
from roadpulse.wire import Quality

from .conftest import build_scenario
from .wire_clients import PtyClient, tcp_exchange

G60 = Path(__file__).resolve().parents[2] / "config" / "scenarios" / "g60-mountain.toml"
Decoded = tuple[Any, str]  # (value, reason); reason is "" for a good value


def assert_same(got: Decoded, want: Any, where: object) -> None:
    """`want` is a truth value: None when the wire carried "no value"."""
    value, reason = got
    if want is None:
        # The agent reports an empty NMEA field as reason "parse", a sentinel or '#' as "invalid".
        assert value is None, (where, got)
        assert reason in ("invalid", "parse"), (where, got)
        return
    assert reason == "", (where, got, want)
    assert type(value) is type(want), (where, got, want)
    if isinstance(want, float):
        assert math.isclose(value, want, rel_tol=1e-9), (where, value, want)
    else:
        assert value == want, (where, value, want)


def _modbus_decoded(profile: ModbusProfile, words: dict[tuple[str, int], int]) -> dict[str, Decoded]:
    out = {}
    for reg in profile.registers:
        regs = [words.get((reg.kind, reg.address + i), 0) for i in range(register_count(reg.type, reg.length))]
        reading = decode_register(reg, regs, 0)
        out[reg.name] = (reading.value, "" if reading.quality == Quality.GOOD else reading.reason)
    return out


def _frame_decoded(profile: SerialProfile, line: str) -> dict[str, Decoded]:
    parsed: dict[str, FieldValue] = frame_parser(profile.parser, profile.fields, profile.pattern).parse(
        line.encode("ascii")
    )
    return {name: (fv.value, fv.reason) for name, fv in parsed.items()}


def _g60_with_faults() -> Scenario:
    """The full road, every device rebooting once (sentinels while warming up) and spiking hard (saturation)."""
    base = load_scenario(G60)
    ids = [d.id for d in base.all_devices()]
    faults = [{"device": i, "kind": "reboot", "start_s": 1800.0, "duration_s": 10.0} for i in ids]
    faults += [{"device": i, "kind": "spike", "start_s": 2400.0, "duration_s": 600.0, "magnitude": 5000.0} for i in ids]
    return Scenario.model_validate(
        base.model_dump(mode="json") | {"faults": faults, "random_faults": {"per_device_per_hour": 0.0}}
    )


# Regular instants over an hour, the warm-up interval after the reboots, and spikes.
INSTANTS = [*range(30, 3600, 131), 1805.5, 1806.0, 1810.0, 2405.0, 2450.0, 2900.0]


def test_register_images_decode_to_the_truth_values() -> None:
    _, devices = build_devices(_g60_with_faults())
    compared = invalid = 0
    for device in devices:
        if not isinstance(device.profile, ModbusProfile):
            continue
        for t in INSTANTS:
            if device.offline(t):
                continue
            image = device.image(device.snapshot(t))
            got = _modbus_decoded(device.profile, image.words)
            for name, want in image.values.items():
                assert_same(got[name], want, (device.id, t, name, image.raw[name]))
                compared += 1
                invalid += want is None
    assert compared > 5000, compared
    assert invalid > 200, invalid


def _ascii_cases(device: SimDevice, t: float) -> list[tuple[str, list[tuple[str, Any, Any]]]]:
    profile = device.profile
    assert isinstance(profile, SerialProfile)
    values = device.snapshot(t).values
    if profile.parser == "nmea":
        return nmea_answer(profile, values, device.clock(t))
    return [vaisala_answer(profile, values, "0", message) for message in "01235"]


def test_ascii_frames_decode_to_the_truth_values() -> None:
    _, devices = build_devices(_g60_with_faults())
    compared = invalid = 0
    kinds = set()
    for device in devices:
        profile = device.profile
        if not isinstance(profile, SerialProfile):
            continue
        kinds.add(profile.parser)
        for t in INSTANTS:
            for line, served in _ascii_cases(device, t):
                got = _frame_decoded(profile, line)
                assert set(got) == {name for name, _, _ in served}, line
                for name, text, want in served:
                    assert text in line
                    assert_same(got[name], want, (device.id, t, name, line))
                    compared += 1
                    invalid += want is None
    assert kinds == {"keyvalue", "nmea"}
    assert compared > 500, compared
    assert invalid > 20, invalid


# ---- over the wire: the truth file written while serving, against the bytes a master received.


def _wire_scenario() -> Scenario:
    faults = [{"device": d, "kind": "reboot", "start_s": 100.0, "duration_s": 10.0} for d in ("rws1", "wxt1", "wind1")]
    faults.append({"device": "vds1", "kind": "spike", "start_s": 1200.0, "duration_s": 100.0, "magnitude": 5000.0})
    return build_scenario(faults=faults)


WIRE_INSTANTS = [45.0, 105.1, 1234.5]  # ordinary, warming up after a reboot (sentinels), a spike


Block = tuple[str, int, int, int]  # kind, function code, address, count


def _rtu_words(client: PtyClient, unit: int, block: Block) -> dict[Any, int]:
    kind, function, address, count = block
    client.send(modbus.read_request(unit, function, address, count))
    reply = b""
    while len(reply) < 5 + 2 * count:  # unit, function, byte count, data, CRC
        ready, _, _ = select.select([client.fd], [], [], 1.0)
        assert ready, reply.hex()
        reply += os.read(client.fd, 4096)
    assert modbus.crc_ok(reply), reply.hex()
    assert reply[:2] == bytes([unit, function]), reply.hex()
    body = reply[3:-2]
    return {(kind, address + i): v for i, v in enumerate(struct.unpack(f">{count}H", body))}


def _tcp_words(address: str, unit: int, block: Block) -> dict[Any, int]:
    kind, function, start, count = block
    reply = tcp_exchange(address, struct.pack(">BHH", function, start, count), unit=unit)
    assert reply is not None
    assert reply[7] == function, reply
    return {(kind, start + i): v for i, v in enumerate(struct.unpack(f">{count}H", reply[9:]))}


def _blocks(profile: ModbusProfile) -> list[Block]:
    """The reads the agent plans for a profile: (kind, function, address, count)."""
    spans = [Span(r.kind, r.address, register_count(r.type, r.length)) for r in profile.registers]
    return [(b.kind, b.function_code, b.address, b.count) for b in plan_reads(spans, profile.max_gap)]


@pytest.mark.slow
def test_served_frames_and_registers_match_the_truth_file(tmp_path: Path) -> None:
    scenario = _wire_scenario()
    truth_path = tmp_path / "truth.jsonl"
    got: dict[tuple[str, float, str], Decoded] = {}

    async def main() -> None:
        clock = ManualClock(t=WIRE_INSTANTS[0])
        async with Simulator(scenario, truth_path=truth_path, clock=clock) as sim:
            rtu = PtyClient(sim.endpoint("rws1").address)
            wxt = PtyClient(sim.endpoint("wxt1").address)
            wind = PtyClient(sim.endpoint("wind1").address)
            try:
                for t in WIRE_INSTANTS:
                    clock.set(t)
                    for device_id in ("vds1", "rws1", "hyd1"):
                        ep, profile = sim.endpoint(device_id), sim.device(device_id).profile
                        assert isinstance(profile, ModbusProfile)
                        words: dict[Any, int] = {}
                        for block in _blocks(profile):
                            if ep.protocol == "modbus-tcp":
                                words |= await asyncio.to_thread(_tcp_words, ep.address, ep.unit or 1, block)
                            else:
                                words |= await asyncio.to_thread(_rtu_words, rtu, ep.unit or 1, block)
                        for name, decoded in _modbus_decoded(profile, words).items():
                            got[(device_id, t, name)] = decoded
                    wxt_profile = sim.device("wxt1").profile
                    assert isinstance(wxt_profile, SerialProfile)
                    wxt.send(b"0R0\r\n")
                    reply = await asyncio.to_thread(wxt.receive, 0.5, b"\r\n")
                    for name, decoded in _frame_decoded(wxt_profile, reply.decode("ascii")).items():
                        got[("wxt1", t, name)] = decoded
                    # The talker emits every 0.2 s: drop what it sent before the clock moved.
                    await asyncio.sleep(0.3)
                    await asyncio.to_thread(wind.receive, 0.01, None, 0.05)
                    sentences = await asyncio.to_thread(wind.receive, 0.5, None, 0.45)
                    wind_profile = sim.device("wind1").profile
                    assert isinstance(wind_profile, SerialProfile)
                    lines = [s for s in sentences.decode("ascii").split("\r\n") if s.startswith("$")]
                    assert {s[3:6] for s in lines} == {"MWV", "XDR", "ZDA"}
                    for line in lines:
                        for name, decoded in _frame_decoded(wind_profile, line).items():
                            got[("wind1", t, name)] = decoded
            finally:
                for client in (rtu, wxt, wind):
                    client.close()

    asyncio.run(main())
    truth: dict[tuple[str, float, str], Any] = {}
    for row in read_truth(truth_path):
        key = (row["device_id"], round(row["sim_time"] - scenario.start_epoch, 3), row["point"])
        assert truth.setdefault(key, row["value"]) == row["value"], key  # one instant, one value
    devices = {d for d, _, _ in got}
    assert devices == {"vds1", "rws1", "hyd1", "wxt1", "wind1"}
    invalid = 0
    for key, decoded in got.items():
        assert key in truth, key
        assert_same(decoded, truth[key], key)
        invalid += truth[key] is None
    # Every served point was read back (the agent's reads cover every profile point).
    assert {k for k in truth if k[0] in devices} == set(got)
    assert invalid > 25  # RWS, WXT and NMEA warming up after their reboot send sentinels, "#" and empty fields
