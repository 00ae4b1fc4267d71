"""Devices set to other units and vendors' layouts: the agent stores SI, the quantity it declares, or nothing.

The simulator's model is in SI; the device writes °F, knots, inHg, relative wind or
attitude first. The agent's readings are compared with the model (within what the device
prints: 0.1 °F, 0.1 kn, 0.01 inHg) and with the truth the simulator derives from the text
it sent (exactly), so a wrong conversion fails one or the other.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from agent.catalog import DeviceEntry
from agent.codec.frames import frame_parser
from agent.config import Device, SerialLink
from agent.sources import create_source
from agent.sources.base import SourceReading
from firmware_sim.clock import ManualClock
from firmware_sim.device import SimDevice, build_devices
from firmware_sim.frames import MOUNTING_HEADING, AsciiSettings, nmea_answer, vaisala_answer
from firmware_sim.runner import Simulator
from firmware_sim.truth import read_truth
from roadpulse.profiles import FrameField, SerialProfile, load_profile
from roadpulse.wire import Quality

from .conftest import build_scenario

INSTANTS = [30.0 + 97.3 * i for i in range(30)]
KN, MPH = 1852 / 3600, 0.44704
INHG_HPA = 25.4 * 1.33322387415


def _device(**spec: Any) -> SimDevice:
    entry = {"id": "dev", "kind": "weather", "protocol": "ascii", "km": 3.0, "interval_s": 10.0, **spec}
    _, devices = build_devices(build_scenario(devices=[entry]))
    return devices[0]


def _settings(device: SimDevice) -> AsciiSettings:
    spec = device.spec
    return AsciiSettings(speed=spec.speed_unit, temperature=spec.temperature_unit, pressure=spec.pressure_unit,
                         layout=spec.nmea_layout, reference=spec.mwv_reference)


def _decode(profile: SerialProfile, line: str) -> dict[str, tuple[object, str]]:
    parsed = frame_parser(profile.parser, profile.fields, profile.pattern).parse(line.encode("ascii"))
    return {name: (v.value, v.reason) for name, v in parsed.items()}


def _check_against_truth(profile: SerialProfile, line: str, served: list[tuple[str, Any, Any]]) -> dict[str, Any]:
    got = _decode(profile, line)
    assert set(got) == {name for name, _, _ in served}, line
    for name, _text, want in served:
        value, reason = got[name]
        if want is None:
            assert value is None, (name, line)
            assert reason, (name, line)
        else:
            assert reason == "", (name, reason, line)
            if isinstance(want, str):
                assert value == want, (name, line)
            else:
                assert value == pytest.approx(want, rel=1e-9, abs=1e-9), (name, line)
    return {name: value for name, (value, _) in got.items()}


# Half the step a device prints in each unit, in SI: how far a stored value may sit from the model.
HALF_STEP = {("speed", "M"): 0.05, ("speed", "N"): 0.05 * KN, ("speed", "S"): 0.05 * MPH, ("speed", "K"): 0.05 / 3.6,
             ("temperature", "C"): 0.05, ("temperature", "F"): 0.05 * 5 / 9,
             ("pressure", "H"): 0.05, ("pressure", "I"): 0.005 * INHG_HPA, ("pressure", "M"): 0.05 * 1.33322387415,
             ("pressure", "B"): 0.00005 * 1000}
WXT_FIELDS = [("air_temp", "temperature"), ("heater_temp", "temperature"), ("wind_speed", "speed"),
              ("wind_speed_max", "speed"), ("wind_speed_min", "speed"), ("pressure", "pressure")]


@pytest.mark.parametrize(("speed", "temperature", "pressure"), [("N", "F", "I"), ("S", "F", "M"), ("K", "C", "B")])
def test_a_wxt_set_to_other_units_is_stored_in_si(speed: str, temperature: str, pressure: str) -> None:
    device = _device(profile="wxt_ascii", speed_unit=speed, temperature_unit=temperature, pressure_unit=pressure)
    profile = device.profile
    assert isinstance(profile, SerialProfile)
    letters = {"speed": speed, "temperature": temperature, "pressure": pressure}
    compared = 0
    for t in INSTANTS:
        values = device.snapshot(t).values
        line, served = vaisala_answer(profile, values, "0", "0", _settings(device))
        assert "Ta=" in line
        assert line.split("Ta=")[1].split(",")[0][-1] == temperature
        assert line.split("Pa=")[1].split(",")[0][-1] == pressure
        got = _check_against_truth(profile, line, served)
        for name, quantity in WXT_FIELDS:
            if values.get(name) is None:
                continue
            limit = HALF_STEP[(quantity, letters[quantity])] + 1e-9
            assert abs(float(got[name]) - float(values[name])) <= limit, (name, line)  # type: ignore[arg-type]
            compared += 1
    assert compared > 100


def test_an_mwv_talker_alternating_relative_and_true_wind_in_knots() -> None:
    device = _device(profile="wind_nmea", speed_unit="N", mwv_reference="RT", free_running=True, interval_s=1.0)
    shipped = device.profile
    assert isinstance(shipped, SerialProfile)
    both = SerialProfile.model_validate(shipped.model_dump() | {"fields": [
        *[f.model_dump() for f in shipped.fields],
        {"name": "wind_dir_rel", "key": "MWV.1", "reference": "R", "unit": "°"},
        {"name": "wind_speed_rel", "key": "MWV.3", "reference": "R", "unit": "m/s"},
    ]})
    seen = {"R": 0, "T": 0}
    for t in INSTANTS:
        values = device.snapshot(t).values
        for line, served in nmea_answer(both, values, device.clock(t), _settings(device)):
            got = _check_against_truth(both, line, served)
            if "MWV" not in line:
                continue
            reference = line.split(",")[2]
            seen[reference] += 1
            # A sentence feeds the fields of its own reference only.
            assert set(got) == ({"wind_dir", "wind_speed"} if reference == "T" else {"wind_dir_rel", "wind_speed_rel"})
            speed_key = "wind_speed" if reference == "T" else "wind_speed_rel"
            if values.get("wind_speed") is not None:
                assert abs(float(got[speed_key]) - float(values["wind_speed"])) <= 0.05 * KN + 1e-9  # type: ignore[arg-type]
            if reference == "T" and values.get("wind_dir") is not None:
                assert got["wind_dir"] == pytest.approx(float(values["wind_dir"]), abs=0.05)  # type: ignore[arg-type]
            if reference == "R" and values.get("wind_dir") is not None:
                relative = (float(values["wind_dir"]) - MOUNTING_HEADING) % 360  # type: ignore[arg-type]
                assert got["wind_dir_rel"] == pytest.approx(relative, abs=0.05)
    assert seen["R"] == seen["T"] == len(INSTANTS)
    # The shipped profile takes the true wind only: relative sentences never reach wind_dir.
    for t in INSTANTS[:5]:
        for line, served in nmea_answer(shipped, device.snapshot(t).values, device.clock(t), _settings(device)):
            if ",R," in line:
                assert served == []
                assert _decode(shipped, line) == {}


@pytest.mark.parametrize("temperature", ["C", "F"])
def test_attitude_before_the_weather_is_never_pressure(temperature: str) -> None:
    device = _device(profile="wind_nmea", nmea_layout="attitude", temperature_unit=temperature, free_running=True,
                     interval_s=1.0)
    profile = device.profile
    assert isinstance(profile, SerialProfile)
    for t in INSTANTS:
        values = device.snapshot(t).values
        for line, served in nmea_answer(profile, values, device.clock(t), _settings(device)):
            got = _check_against_truth(profile, line, served)
            if "XDR" in line:
                assert line.startswith("$WIXDR,A,-1.0,D,PTCH,A,2.5,D,ROLL,")
                if values.get("pressure") is not None:
                    assert got["pressure"] == pytest.approx(float(values["pressure"]), abs=0.05)  # type: ignore[arg-type]
                if values.get("air_temp") is not None:
                    assert abs(float(got["air_temp"]) - float(values["air_temp"])) <= 0.05 + 1e-9  # type: ignore[arg-type]


def test_a_wxt_in_nmea_mode_matches_its_ascii_mode() -> None:
    """Vaisala's XDR layout (transducers 0, 1, 2) through config/profiles/wxt_nmea.toml, in knots and °F."""
    device = _device(profile="wxt_nmea", nmea_layout="vaisala", speed_unit="N", temperature_unit="F",
                     free_running=True, interval_s=1.0)
    profile = device.profile
    assert isinstance(profile, SerialProfile)
    ascii_names = {f.name for f in load_profile("wxt_ascii").fields}
    for t in INSTANTS:
        values = device.snapshot(t).values
        stored: dict[str, Any] = {}
        for line, served in nmea_answer(profile, values, device.clock(t), _settings(device)):
            stored |= _check_against_truth(profile, line, served)
        assert set(stored) == {f.name for f in profile.fields}
        assert set(stored) <= ascii_names
        for name in ("wind_speed", "wind_speed_min", "wind_speed_max"):
            if values.get(name) is not None:
                assert abs(stored[name] - float(values[name])) <= 0.05 * KN + 1e-9  # type: ignore[arg-type]
        for name in ("air_temp", "heater_temp"):
            assert abs(stored[name] - float(values[name])) <= 0.05 * 5 / 9 + 1e-9  # type: ignore[arg-type]
        assert stored["pressure"] == pytest.approx(float(values["pressure"]), abs=0.05)  # type: ignore[arg-type]
        assert stored["supply_voltage"] == pytest.approx(float(values["supply_voltage"]))  # type: ignore[arg-type]


def test_crc_mode_answers_check_and_a_corrupted_one_is_refused() -> None:
    device = _device(profile="wxt_ascii")
    profile = device.profile
    assert isinstance(profile, SerialProfile)
    parser = frame_parser(profile.parser, profile.fields, profile.pattern)
    for t in INSTANTS[:10]:
        line, served = vaisala_answer(profile, device.snapshot(t).values, "0", "0", AsciiSettings(crc=True))
        assert line.startswith("0r0,")
        assert _check_against_truth(profile, line, served)
        broken = line.replace("Ta=", "Tb=", 1) if "Ta=" in line else line[:5] + "9" + line[6:]
        assert parser.parse(broken.encode("ascii")) == {}
    assert parser.counters["checksum"] == 10


def test_an_xdr_field_is_found_by_name_whatever_its_position() -> None:
    fld = FrameField(name="pressure", key="XDR", transducer="P", transducer_name="BARO", unit="hPa", device_unit="B")
    parser = frame_parser("nmea", [fld], None)
    from firmware_sim.frames import nmea_sentence

    for body in ["WIXDR,P,1.0133,B,BARO", "WIXDR,C,12.0,C,TEMP,P,1.0133,B,BARO",
                 "WIXDR,A,-1.0,D,PTCH,A,2.5,D,ROLL,H,50,P,HUM,P,1.0133,B,BARO"]:
        assert parser.parse(nmea_sentence(body).strip().encode())["pressure"].value == pytest.approx(1013.3)
    for body in ["WIXDR,A,-1.0,D,PTCH,A,2.5,D,ROLL", "WIXDR,P,1.0133,B,0", "WIXDR,C,24.0,C,BARO"]:
        assert parser.parse(nmea_sentence(body).strip().encode()) == {}


@pytest.mark.slow
def test_the_agent_reads_a_wxt_in_crc_mode_and_odd_units_and_a_mixed_mwv_talker(tmp_path: Path) -> None:
    """Over real pseudo-terminals: the agent's serial driver against the simulator, readings against the truth."""
    devices = [
        {"id": "wxt", "kind": "weather", "profile": "wxt_ascii", "protocol": "ascii", "km": 3.0, "interval_s": 10.0,
         "speed_unit": "N", "temperature_unit": "F", "pressure_unit": "I"},
        {"id": "wind", "kind": "weather", "profile": "wind_nmea", "protocol": "ascii", "km": 3.0, "interval_s": 0.2,
         "free_running": True, "speed_unit": "N", "mwv_reference": "RT", "nmea_layout": "attitude",
         "temperature_unit": "F"},
    ]
    scenario = build_scenario(devices=devices, buses=[])
    truth_path = tmp_path / "truth.jsonl"
    got: dict[str, list[SourceReading]] = {}

    async def main() -> None:
        async with Simulator(scenario, truth_path=truth_path, clock=ManualClock(time_scale=5.0, t=95.0)) as sim:
            for device_id in ("wxt", "wind"):
                ep = sim.endpoint(device_id)
                profile = load_profile(ep.profile)
                if device_id == "wxt":
                    # CRC mode: the lower-case command with its CRC (WXT530 guide: 0r0Kld).
                    profile = profile.model_copy(update={"poll": "0r0Kld\r\n"})
                device = Device(id=device_id, profile=ep.profile, timeout_s=2.0,
                                serial=SerialLink(port=ep.address, baudrate=ep.baudrate))
                source = create_source(DeviceEntry(device, profile, {}))
                try:
                    await source.connect()
                    if device_id == "wind":
                        await asyncio.sleep(1.0)
                    got[device_id] = await source.read()
                finally:
                    await source.close()

    asyncio.run(main())
    truth = {(row["device_id"], row["point"]): row for row in read_truth(truth_path)}
    compared = 0
    for device_id, readings in got.items():
        for reading in readings:
            row = truth[(device_id, reading.name)]
            if row["invalid"]:
                assert reading.quality == Quality.BAD
                continue
            assert (reading.quality, reading.reason) == (Quality.GOOD, ""), (device_id, reading)
            if isinstance(row["value"], float):
                assert reading.value == pytest.approx(row["value"], rel=1e-9), (device_id, reading.name)
            else:
                assert reading.value == row["value"], (device_id, reading.name)
            compared += 1
    assert truth[("wxt", "air_temp")]["raw"].endswith("F")
    assert truth[("wxt", "wind_speed")]["raw"].endswith("N")
    assert compared >= 15
