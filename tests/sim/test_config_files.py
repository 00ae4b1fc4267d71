"""Every shipped profile and scenario loads, and every profile point is something the simulator makes."""

from __future__ import annotations

from pathlib import Path

import pytest

from firmware_sim.device import build_devices
from firmware_sim.frames import VAISALA_FORMAT, nmea_reading, wind_sentences
from firmware_sim.scenario import load_scenario
from roadpulse.configfile import ConfigError
from roadpulse.profiles import PROFILES_DIR, ModbusProfile, load_profile

SCENARIOS = sorted((Path(__file__).resolve().parents[2] / "config" / "scenarios").glob("*.toml"))
SIM_PROFILES = [
    "vds_modbus",
    "rws_modbus",
    "tunnel_modbus",
    "bridge_modbus",
    "city_modbus",
    "hydro_modbus",
    "wxt_ascii",
    "wind_nmea",
]


@pytest.mark.parametrize("name", SIM_PROFILES)
def test_profile_loads_with_the_agents_loader(name: str) -> None:
    assert (PROFILES_DIR / f"{name}.toml").exists()
    assert load_profile(name).name == name


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_scenario_loads_and_every_profile_point_is_simulated(path: Path) -> None:
    scenario = load_scenario(path)
    _, devices = build_devices(scenario)
    assert devices
    for device in devices:
        values = device.snapshot(3 * device.spec.interval_s).values
        if isinstance(device.profile, ModbusProfile):
            names = [r.name for r in device.profile.registers]
            image = device.image(device.snapshot(3 * device.spec.interval_s))
            assert set(image.raw) == set(names)
        else:
            names = [f.name for f in device.profile.fields if f.name != "device_time"]
            if device.profile.parser == "keyvalue":
                assert {f.key for f in device.profile.fields} <= set(VAISALA_FORMAT)
            else:
                sentences = wind_sentences("WI", values, device.clock(0))
                assert all(any(nmea_reading(s, f) is not None for s in sentences) for f in device.profile.fields)
        missing = [n for n in names if n not in values]
        assert not missing, f"{device.id}: profile points the model does not make: {missing}"


def test_full_scenario_has_every_kind_and_protocol() -> None:
    scenario = load_scenario(Path(__file__).resolve().parents[2] / "config" / "scenarios" / "g60-mountain.toml")
    devices = scenario.all_devices()
    assert {d.kind for d in devices} == {"traffic", "weather", "tunnel", "bridge", "city", "hydro"}
    assert {d.protocol for d in devices} == {"modbus-tcp", "modbus-rtu", "ascii"}
    assert len({d.unit for d in devices if d.bus == "rs485-k15"}) >= 3
    assert {d.profile for d in devices} == set(SIM_PROFILES)


def test_bad_scenario_errors_name_file_and_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        'name = "x"\ntime_scale = -1\n[[devices]]\nid = "a"\nkind = "traffic"\n'
        'profile = "vds_modbus"\nprotocol = "modbus-rtu"\n'
    )
    with pytest.raises(ConfigError) as err:
        load_scenario(bad)
    text = str(err.value)
    assert "bad.toml" in text
    assert "time_scale" in text


def test_a_profile_that_cannot_go_over_the_protocol_is_a_config_error() -> None:
    from firmware_sim.scenario import Scenario

    scenario = Scenario.model_validate(
        {
            "name": "mismatch",
            "devices": [{"id": "w", "kind": "weather", "profile": "wxt_ascii", "protocol": "modbus-tcp"}],
        }
    )
    with pytest.raises(ConfigError, match=r"devices\.w\.profile"):
        build_devices(scenario)
