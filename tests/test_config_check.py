"""Config errors name the file, the key and the reason, before anything starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from roadpulse.check import check
from roadpulse.cli import main
from roadpulse.configfile import ConfigError

CONFIG = Path(__file__).resolve().parent.parent / "config"

GOOD_AGENT = """
[agent]
gateway_id = "gw-k123"
data_dir = "queue"

[[devices]]
id = "wx-1"
profile = "{profile}"
serial = {{ port = "/dev/ttyUSB0", baudrate = 19200 }}
"""


PROFILE = """
driver = "serial_ascii"
name = "wx_test"
measurement = "weather"
parser = "keyvalue"
poll = "0R2\\r\\n"
[[fields]]
name = "air_temperature"
key = "Ta"
unit = "degC"
"""


def _write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "profiles").mkdir(exist_ok=True)
    (tmp_path / "profiles" / "wx_test.toml").write_text(PROFILE)
    path = tmp_path / "agent.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("mutation", "key", "reason"),
    [
        (("[agent]", "[agent]\ncolour = \"red\""), "agent.colour", "unknown key"),
        (("gateway_id = \"gw-k123\"", "gateway_id = \"gw/k123\""), "agent.gateway_id", "pattern"),
        (("baudrate = 19200", "baudrate = \"fast\""), "devices[0].serial.baudrate", "integer"),
        (("id = \"wx-1\"", "id = 7"), "devices[0].id", "string"),
    ],
)
def test_agent_config_errors_name_file_key_and_reason(
    tmp_path: Path, mutation: tuple[str, str], key: str, reason: str
) -> None:
    path = _write(tmp_path, GOOD_AGENT.format(profile="wx_test").replace(*mutation))
    with pytest.raises(ConfigError) as info:
        check(path)
    assert info.value.path == str(path)
    keys = [k for k, _ in info.value.problems]
    assert key in keys, info.value.problems
    assert reason in dict(info.value.problems)[key]
    assert str(path) in str(info.value)


def test_good_agent_config_passes(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD_AGENT.format(profile="wx_test"))
    assert check(path).startswith("agent config OK: gateway gw-k123, 1 devices")


def test_unknown_profile_names_the_config_file_and_key(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD_AGENT.format(profile="no_such_profile"))
    with pytest.raises(ConfigError, match="no_such_profile") as info:
        check(path)
    assert info.value.path == str(path)
    assert info.value.problems[0][0] == "devices[0].profile"


def test_unknown_bus_is_reported_at_the_device_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    buses = "".join(f'[[buses]]\nid = "{b}"\nserial = {{ port = "/dev/ttyUSB{i}" }}\n'
                    for i, b in enumerate(("line1", "line2")))
    devices = (GOOD_AGENT.format(profile="wx_test").split("[[devices]]", 1)[1]
               + '[[devices]]\nid = "wx-2"\nprofile = "wx_test"\nbus = "line9"\nunit = 3\n')
    path = _write(tmp_path, '[agent]\ngateway_id = "gw-1"\n' + buses + "[[devices]]" + devices)
    with pytest.raises(ConfigError) as info:
        check(path)
    assert info.value.path == str(path)
    assert info.value.problems == [("devices[1].bus", "no bus named 'line9' in [[buses]] (defined: 'line1', 'line2')")]
    assert main(["config", "check", str(path)]) == 1
    assert f"{path}: devices[1].bus: no bus named 'line9'" in capsys.readouterr().out


def test_unknown_bus_without_any_buses_says_none_are_defined(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD_AGENT.format(profile="wx_test").replace(
        'serial = { port = "/dev/ttyUSB0", baudrate = 19200 }', 'bus = "line1"'))
    with pytest.raises(ConfigError) as info:
        check(path)
    assert info.value.problems == [("devices[0].bus", "no bus named 'line1' in [[buses]] (defined: none)")]


def test_two_slaves_with_one_unit_id_on_one_bus_are_refused(tmp_path: Path) -> None:
    bus = '[[buses]]\nid = "line1"\nserial = { port = "/dev/ttyUSB0" }\n'
    devices = "".join(
        f'[[devices]]\nid = "wx-{i}"\nprofile = "wx_test"\nbus = "line1"\nunit = 3\n' for i in (1, 2)
    )
    path = _write(tmp_path, '[agent]\ngateway_id = "gw-1"\n' + bus + devices)
    with pytest.raises(ConfigError, match="both use unit 3 on bus 'line1'"):
        check(path)


def test_toml_syntax_error_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text("[agent\n")
    with pytest.raises(ConfigError) as info:
        check(path)
    assert info.value.problems[0][0] == "(syntax)"


def test_cli_check_exit_status(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, GOOD_AGENT.format(profile="wx_test").replace("[agent]", "[agent]\nbogus = 1"))
    assert main(["config", "check", str(path)]) == 1
    out = capsys.readouterr().out
    assert f"{path}: agent.bogus: unknown key" in out


EXAMPLES = sorted(p for p in CONFIG.rglob("*.toml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=[str(p.relative_to(CONFIG)) for p in EXAMPLES])
def test_every_shipped_config_loads(path: Path) -> None:
    """The samples in config/ never rot: each one passes the same check start-up runs."""
    assert "OK" in check(path)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["probe", "modbus", "--host", "127.0.0.1", "--address", "-1"], "address must be 0-65535"),
        (["probe", "modbus", "--host", "127.0.0.1", "--address", "1", "--count", "200"], "count must be 1-125"),
        (["probe", "modbus", "--host", "127.0.0.1", "--address", "1", "--unit", "300"], "unit must be 0-247"),
        (["scan", "modbus", "--host", "127.0.0.1", "--address", "x"], "address must be an integer"),
    ],
)
def test_field_tools_reject_out_of_range_arguments(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(["agent", *argv])
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_agent_test_names_an_unknown_device(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, GOOD_AGENT.format(profile="wx_test"))
    assert main(["agent", "test", "-c", str(path), "--device", "nope"]) == 2
    assert "no device 'nope'" in capsys.readouterr().err


# ---- config check and start-up fail on the same configs, with the same message (#16 item 5) ----

SECRET = "s3cr3t-value-never-shown"

START_AGENT = """[agent]
gateway_id = "gw-1"
data_dir = "queue"
[mqtt]
url = "mqtt://127.0.0.1:1883"
username = "gw-1"
password_file = "pw"
[[devices]]
id = "wx-1"
profile = "wx_test"
serial = { port = "/dev/ttyUSB0" }
"""

START_COLLECTOR = """[collector]
client_id = "c1"
data_dir = "spool"
[mqtt]
url = "mqtt://127.0.0.1:1883"
username = "collector"
password_file = "pw"
[influx]
url = "http://127.0.0.1:8086"
username = "roadpulse"
password_file = "pw"
[http]
listen = "127.0.0.1:0"
"""

# (role, replace this, with this, key, reason): every way a config used to pass the check and fail later.
STARTUP_CASES = [
    ("agent", 'password_file = "pw"', 'password_file = "missing"', "mqtt.password_file", "no such file"),
    ("agent", 'password_file = "pw"', 'password_file = "empty"', "mqtt.password_file", "is empty"),
    ("agent", 'password_file = "pw"', 'password_env = "RP_TEST_UNSET"', "mqtt.password_env", "is not set"),
    ("agent", 'username = "gw-1"\n', "", "mqtt", "a password needs a username"),
    ("agent", 'username = "gw-1"', 'username = "gw-2"', "mqtt.username", "must be the gateway id"),
    ("agent", "127.0.0.1:1883", "127.0.0.1:99999", "mqtt.url", "out of range"),
    ("agent", "127.0.0.1:1883", "127.0.0.1:70000", "mqtt.url", "out of range"),
    ("agent", "[mqtt]", '[mqtt]\ntopic_prefix = "rp/+"', "mqtt.topic_prefix", "wildcard"),
    ("agent", "[mqtt]", '[mqtt]\ntopic_prefix = "rp/#"', "mqtt.topic_prefix", "wildcard"),
    ("agent", "[mqtt]", '[mqtt]\ntopic_prefix = "rp//v1"', "mqtt.topic_prefix", "empty level"),
    ("agent", 'data_dir = "queue"', 'data_dir = "afile/queue"', "agent.data_dir", "is not a folder"),
    ("agent", 'data_dir = "queue"', 'data_dir = "/proc/roadpulse-queue"', "agent.data_dir", "cannot write"),
    ("agent", "mqtt://127.0.0.1:1883", 'mqtts://127.0.0.1:8883"\ntls = { ca_file = "no-ca.pem" }\n#',
     "mqtt.tls.ca_file", "no such file"),
    ("agent", "mqtt://127.0.0.1:1883", 'mqtts://127.0.0.1:8883"\ntls = { cert_file = "pw" }\n#',
     "mqtt.tls", "both cert_file and key_file"),
    ("agent", "[mqtt]", '[mqtt]\ntls = { ca_file = "pw" }', "mqtt", "needs an mqtts:// url"),
    ("collector", 'password_file = "pw"\n[influx]', 'password_file = "missing"\n[influx]', "mqtt.password_file",
     "no such file"),
    ("collector", 'password_file = "pw"\n[http]', 'password_file = "missing"\n[http]', "influx.password_file",
     "no such file"),
    ("collector", 'password_file = "pw"\n[influx]', 'password_env = "RP_TEST_UNSET"\n[influx]',
     "mqtt.password_env", "is not set"),
    ("collector", 'password_file = "pw"\n[http]', 'token_env = "RP_TEST_UNSET"\n[http]', "influx.token_env",
     "is not set"),
    ("collector", 'password_file = "pw"\n[http]', 'token_file = "missing"\n[http]', "influx.token_file",
     "no such file"),
    ("collector", 'data_dir = "spool"', 'data_dir = "afile/spool"', "collector.data_dir", "is not a folder"),
    ("collector", 'data_dir = "spool"', 'data_dir = "/proc/roadpulse-spool"', "collector.data_dir", "cannot write"),
    ("collector", "127.0.0.1:1883", "127.0.0.1:99999", "mqtt.url", "out of range"),
    ("collector", "127.0.0.1:8086", "127.0.0.1:70000", "influx.url", "out of range"),
    ("collector", "127.0.0.1:0", "127.0.0.1:99999", "http.listen", "out of range"),
    ("collector", "[mqtt]", '[mqtt]\ntopic_prefix = "rp/+"', "mqtt.topic_prefix", "wildcard"),
    ("collector", "[mqtt]", '[mqtt]\ntopic_prefix = "rp/#"', "mqtt.topic_prefix", "wildcard"),
]
CASE_IDS = [f"{c[0]}-{c[3]}-{c[4].replace(' ', '_')}-{i}" for i, c in enumerate(STARTUP_CASES)]


def _startup_config(tmp_path: Path, role: str, old: str, new: str) -> Path:
    (tmp_path / "profiles").mkdir(exist_ok=True)
    (tmp_path / "profiles" / "wx_test.toml").write_text(PROFILE)
    (tmp_path / "pw").write_text(SECRET + "\n")
    (tmp_path / "empty").write_text("\n")
    (tmp_path / "afile").write_text("a file, not a folder")
    text = START_AGENT if role == "agent" else START_COLLECTOR
    assert old in text
    path = tmp_path / f"{role}.toml"
    path.write_text(text.replace(old, new, 1))
    return path


@pytest.fixture(autouse=True)
def _unset_test_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RP_TEST_UNSET", raising=False)


@pytest.mark.parametrize("role", ["agent", "collector"])
def test_startup_config_passes_and_never_shows_the_secret(
    tmp_path: Path, role: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _startup_config(tmp_path, role, "[mqtt]", "[mqtt]")
    assert main(["config", "check", str(path)]) == 0
    out = capsys.readouterr()
    assert "OK" in out.out
    assert SECRET not in out.out + out.err


@pytest.mark.parametrize("case", STARTUP_CASES, ids=CASE_IDS)
def test_config_check_reports_what_startup_would_fail_on(
    tmp_path: Path, case: tuple[str, str, str, str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    role, old, new, key, reason = case
    path = _startup_config(tmp_path, role, old, new)
    with pytest.raises(ConfigError) as info:
        check(path)
    problems = dict(info.value.problems)
    assert key in problems, info.value.problems
    assert reason in problems[key]
    assert main(["config", "check", str(path)]) == 1
    out = capsys.readouterr()
    assert f"{path}: {key}: " in out.out
    assert reason in out.out
    assert "Traceback" not in out.out + out.err
    assert SECRET not in out.out + out.err


@pytest.mark.timeout(20)  # a config that loads would start connecting: that is the failure
@pytest.mark.parametrize("case", STARTUP_CASES, ids=CASE_IDS)
def test_startup_refuses_the_same_configs_with_the_same_message(
    tmp_path: Path, case: tuple[str, str, str, str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    role, old, new, key, reason = case
    path = _startup_config(tmp_path, role, old, new)
    assert main([role, "run", "-c", str(path)]) == 2
    out = capsys.readouterr()
    assert f"{path}: {key}: " in out.err
    assert reason in out.err
    assert "Traceback" not in out.out + out.err
    assert SECRET not in out.out + out.err
