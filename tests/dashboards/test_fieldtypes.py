"""Every (measurement, field) has one InfluxDB type across profiles, or InfluxDB refuses the second."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from roadpulse.check import check
from roadpulse.cli import main
from roadpulse.configfile import ConfigError, read_toml
from roadpulse.fieldtypes import conflicts
from roadpulse.profiles import PROFILES_DIR, load_model_from, load_profile

SERIAL = """
driver = "serial_ascii"
name = "{name}"
measurement = "{measurement}"
parser = "keyvalue"
[[fields]]
name = "{field}"
key = "Ua"
type = "{type}"
"""

MODBUS = """
driver = "modbus"
name = "{name}"
measurement = "{measurement}"
[[registers]]
name = "{field}"
address = 0
type = "{type}"
"""


def _profile(tmp_path: Path, template: str, **values: str) -> Path:
    path = tmp_path / f"{values['name']}.toml"
    path.write_text(template.format(**values))
    return path


def _load(path: Path):  # type: ignore[no-untyped-def]
    return load_model_from(path, read_toml(path)).profile


def test_shipped_profiles_agree_on_every_field_type() -> None:
    profiles = [load_profile(p.stem) for p in sorted(PROFILES_DIR.glob("*.toml"))]
    assert len(profiles) >= 8
    assert [str(c) for c in conflicts(profiles)] == []


@pytest.mark.parametrize(
    ("a", "b", "conflict"),
    [
        # A bare uint16 register is an integer field; a serial field defaults to float.
        ((MODBUS, "weather", "rh", "uint16"), (SERIAL, "weather", "rh", "float"), ("weather", "rh", "i", "f")),
        # A scaled register is a float: no conflict with a float serial field.
        ((MODBUS, "weather", "rh", "float32"), (SERIAL, "weather", "rh", "float"), None),
        # Different measurements never conflict.
        ((MODBUS, "tunnel", "visibility", "uint16"), (SERIAL, "weather", "visibility", "float"), None),
        ((SERIAL, "weather", "state", "str"), (SERIAL, "weather", "state", "bool"), ("weather", "state", "s", "b")),
    ],
)
def test_conflicts_name_measurement_field_and_both_types(
    tmp_path: Path, a: tuple[str, ...], b: tuple[str, ...], conflict: tuple[str, str, str, str] | None
) -> None:
    first = _load(_profile(tmp_path, a[0], name="first", measurement=a[1], field=a[2], type=a[3]))
    second = _load(_profile(tmp_path, b[0], name="second", measurement=b[1], field=b[2], type=b[3]))
    found = conflicts([first, second])
    if conflict is None:
        assert found == []
        return
    assert len(found) == 1
    c = found[0]
    assert (c.measurement, c.field, c.first.type, c.second.type) == conflict
    assert {c.first.profile, c.second.profile} == {"first", "second"}


@pytest.mark.parametrize("field", ["rh_q", "tf_q", "rh_err", "tf"])
def test_a_field_named_like_the_collectors_own_is_refused_at_load(tmp_path: Path, field: str) -> None:
    """`<field>_q`, `<field>_err` and `tf_q` are the collector's (docs/data-model.md): a profile
    field of such a name would collide with them, so the profile itself is a config error."""
    with pytest.raises(ConfigError, match="fields\\[0\\]"):
        _load(_profile(tmp_path, SERIAL, name="first", measurement="weather", field=field, type="float"))


def test_field_type_float_makes_a_bare_integer_register_a_float(tmp_path: Path) -> None:
    rws = _profile(tmp_path, MODBUS + 'field_type = "float"\n', name="first", measurement="weather",
                   field="rh", type="uint16")
    wxt = _profile(tmp_path, SERIAL, name="second", measurement="weather", field="rh", type="float")
    assert conflicts([_load(rws), _load(wxt)]) == []


def test_config_check_names_both_profiles_and_the_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # A user's integer `rh` against the shipped float `rh` of wxt_ascii / wind_nmea.
    mine = _profile(tmp_path, MODBUS, name="my_rws", measurement="weather", field="rh", type="uint16")
    with pytest.raises(ConfigError) as err:
        check(mine)
    assert err.value.path == str(mine)
    keys = {key for key, _ in err.value.problems}
    assert keys == {"weather.rh"}
    text = str(err.value)
    assert "my_rws (rh: integer)" in text
    assert re.search(r"profile (rws_modbus|wxt_ascii|wind_nmea) \(rh: float\)", text)
    assert main(["config", "check", str(mine)]) == 1
    assert "field type conflict" in capsys.readouterr().out


def test_config_check_compares_a_profile_with_its_neighbours(tmp_path: Path) -> None:
    mine = _profile(tmp_path, SERIAL, name="mine", measurement="kiosk", field="level", type="int")
    _profile(tmp_path, SERIAL, name="neighbour", measurement="kiosk", field="level", type="float")
    (tmp_path / "broken.toml").write_text("driver = 3\n")  # a broken neighbour does not hide the result
    with pytest.raises(ConfigError, match=r"kiosk\.level: .*mine \(level: integer\).*neighbour \(level: float\)"):
        check(mine)


def test_config_check_of_an_agent_config_checks_the_profiles_it_uses(tmp_path: Path) -> None:
    (tmp_path / "profiles").mkdir()
    _profile(tmp_path / "profiles", MODBUS, name="my_rws", measurement="weather", field="wind_dir", type="uint16")
    agent = tmp_path / "agent.toml"
    agent.write_text('[agent]\ngateway_id = "gw-1"\ndata_dir = "q"\n[[devices]]\nid = "rws"\n'
                     'profile = "my_rws"\ntcp = { host = "127.0.0.1", port = 502 }\n')
    with pytest.raises(ConfigError, match=r"weather\.wind_dir: .*my_rws \(wind_dir: integer\)"):
        check(agent)


@pytest.mark.parametrize("path", sorted(PROFILES_DIR.glob("*.toml")), ids=lambda p: p.stem)
def test_config_check_passes_every_shipped_profile(path: Path) -> None:
    assert check(path).startswith("profile OK")


@pytest.mark.slow
def test_g60_demo_stores_every_reading(tmp_path: Path) -> None:
    """The README's scenario, whose weather profiles once disagreed on `rh` and `wind_dir` (~3 % lost)."""
    import json
    import subprocess
    import sys

    summary = tmp_path / "summary.json"
    scenario = PROFILES_DIR.parent / "scenarios" / "g60-mountain.toml"
    proc = subprocess.run([sys.executable, "-m", "roadpulse", "demo", "--scenario", str(scenario), "--duration", "8",
                           "--summary-json", str(summary)], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(summary.read_text())
    assert result["sent"] > 1000
    assert result["stored"] == result["sent"]
