"""Profiles: every shipped and test profile loads and plans; mistakes name the file and the key."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from agent.codec.frames import frame_parser
from agent.codec.planning import plan_reads
from agent.sources.modbus.source import span_of
from roadpulse.configfile import ConfigError
from roadpulse.profiles import PROFILES_DIR, ModbusProfile, load_profile

TEST_PROFILES = Path(__file__).parent / "profiles"
ALL = sorted([*PROFILES_DIR.glob("*.toml"), *TEST_PROFILES.glob("*.toml")])


@pytest.mark.parametrize("path", ALL, ids=[p.stem for p in ALL])
def test_profile_loads_and_plans(path: Path) -> None:
    profile = load_profile(path.stem, [path.parent])
    if isinstance(profile, ModbusProfile):
        blocks = plan_reads([span_of(r) for r in profile.registers], profile.max_gap)
        assert sorted(i for b in blocks for i in b.points) == list(range(len(profile.registers)))
    else:
        frame_parser(profile.parser, profile.fields, profile.pattern)


@pytest.mark.parametrize(
    ("body", "key", "words"),
    [
        ('[[registers]]\nname = "a"\naddress = 0\ntype = "string"\n', "registers[0]", "length"),
        ('[[registers]]\nname = "a"\naddress = 0\ntype = "float32"\norder = "ABDC"\n',
         "registers[0].order", "ABCD"),
        ('[[registers]]\nname = "a"\naddress = 0\nkind = "coil"\ntype = "uint16"\n', "registers[0]", "bool"),
        ('[[registers]]\nname = "a"\naddress = 65535\ntype = "float32"\n', "registers[0]", "65535"),
        ('[[registers]]\nname = "a"\naddress = 0\n[[registers]]\nname = "a"\naddress = 1\n', "", "twice"),
        ('[[registers]]\nname = "a"\naddress = 0\nscael = 0.1\n', "registers[0].scael", "unknown key"),
        # Names the collector refuses in a birth (roadpulse.wire.names) are config errors here.
        ('[[registers]]\nname = "a"\naddress = 0\nfield = "time"\n', "registers[0]", "reserved"),
        ('[[registers]]\nname = "speed_q"\naddress = 0\n', "registers[0]", "_q"),
        ('[[registers]]\nname = "a"\nfield = "a_err"\naddress = 0\n', "registers[0]", "_err"),
        ('[[registers]]\nname = "a"\naddress = 0\ntags = { time = "x" }\n', "registers[0].tags", "reserved"),
    ],
)
def test_modbus_profile_errors_name_the_key(tmp_path: Path, body: str, key: str, words: str) -> None:
    (tmp_path / "bad.toml").write_text(f'driver = "modbus"\nname = "bad"\nmeasurement = "m"\n{body}')
    with pytest.raises(ConfigError) as info:
        load_profile("bad", [tmp_path])
    assert info.value.path.endswith("bad.toml")
    keys = [k for k, _ in info.value.problems]
    assert any(k.startswith(key) for k in keys), info.value.problems
    assert words in str(info.value)


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ('parser = "regex"\n[[fields]]\nname = "a"\nkey = "a"\n', "pattern"),
        ('parser = "regex"\npattern = "(?P<b>\\\\d+)"\n[[fields]]\nname = "a"\nkey = "a"\n', "named group"),
        ('parser = "nmea"\n[[fields]]\nname = "a"\nkey = "MWV3"\n', "MWV.3"),
        ('parser = "keyvalue"\n[framing]\nmode = "fixed"\n[[fields]]\nname = "a"\nkey = "Ta"\n', "length"),
    ],
)
def test_serial_profile_errors(tmp_path: Path, body: str, words: str) -> None:
    (tmp_path / "bad.toml").write_text(f'driver = "serial_ascii"\nname = "bad"\nmeasurement = "m"\n{body}')
    with pytest.raises(ConfigError) as info:
        load_profile("bad", [tmp_path])
    assert words in str(info.value)


# The collector tells readings from agent health and its own metrics by this prefix.
@pytest.mark.parametrize(("name", "ok"), [("weather", True), ("roadpulse_agent", False), ("roadpulse_x", False),
                                          ("roadpulse", True)])
def test_roadpulse_measurements_are_reserved(name: str, ok: bool) -> None:
    data = {"driver": "modbus", "name": "p", "measurement": name, "registers": []}
    if ok:
        assert ModbusProfile.model_validate(data).measurement == name
    else:
        with pytest.raises(ValidationError, match="reserved"):
            ModbusProfile.model_validate(data)


@pytest.mark.parametrize(
    ("body", "key", "words"),
    [
        ('parser = "nmea"\n[[fields]]\nname = "p"\nkey = "XDR.6"\nunit = "hPa"\n', "fields[0].key",
         "never by position"),
        ('parser = "nmea"\n[[fields]]\nname = "p"\nkey = "XDR"\nunit = "hPa"\n', "fields[0].transducer", "transducer"),
        ('parser = "nmea"\n[[fields]]\nname = "p"\nkey = "XDR"\ntransducer = "C"\ntransducer_name = "0"\n'
         'unit = "hPa"\n', "fields[0].unit", "temperature"),
        ('parser = "nmea"\n[[fields]]\nname = "w"\nkey = "MWV.3"\nunit = "m/s"\n', "fields[0].reference", "'T'"),
        ('parser = "nmea"\n[[fields]]\nname = "w"\nkey = "MWV.3"\nreference = "T"\nunit = "°C"\n', "fields[0].unit",
         "speed"),
        ('parser = "nmea"\n[[fields]]\nname = "w"\nkey = "ZDA.1"\nreference = "T"\n', "fields[0].reference", "MWV"),
        ('parser = "keyvalue"\n[[fields]]\nname = "t"\nkey = "Ta"\nunit = "°C"\ndevice_unit = "K"\n',
         "fields[0].device_unit", "temperature"),
        ('parser = "keyvalue"\n[[fields]]\nname = "t"\nkey = "Ta"\nunit_key = "Tu"\n', "fields[0].unit_key", "letter"),
    ],
)
def test_serial_fields_declare_what_they_are(tmp_path: Path, body: str, key: str, words: str) -> None:
    (tmp_path / "bad.toml").write_text(f'driver = "serial_ascii"\nname = "bad"\nmeasurement = "m"\n{body}')
    with pytest.raises(ConfigError) as info:
        load_profile("bad", [tmp_path])
    assert [k for k, _ in info.value.problems] == [key], info.value.problems
    assert words in str(info.value)


@pytest.mark.parametrize(
    ("body", "words"),
    [('type = "int8"\n', "byte"), ('type = "uint16"\nbyte = "low"\n', "only for"), ('type = "uint8"\nbyte = "mid"\n',
                                                                                     "high")],
)
def test_8_bit_registers_name_their_byte(tmp_path: Path, body: str, words: str) -> None:
    (tmp_path / "bad.toml").write_text(
        f'driver = "modbus"\nname = "bad"\nmeasurement = "m"\n[[registers]]\nname = "a"\naddress = 0\n{body}')
    with pytest.raises(ConfigError) as info:
        load_profile("bad", [tmp_path])
    assert words in str(info.value)
