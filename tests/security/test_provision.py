"""`roadpulse provision`: bundles whose credentials work against the broker, and rotate."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import signal
import stat
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from roadpulse.check import check
from roadpulse.cli import main
from roadpulse.services import BrokerSecurity, Mosquitto

from .conftest import connect

DEVICES = '[[devices]]\nid = "vds-1"\nprofile = "vds_modbus"\ntcp = { host = "192.168.1.20", port = 502 }\n'


@pytest.fixture
def operator(tmp_path: Path) -> Path:
    """An operator folder with a CA (made by `provision ca`) and a site's device list."""
    assert main(["provision", "ca", "Test operator CA", "-o", str(tmp_path / "ca")]) == 0
    (tmp_path / "devices.toml").write_text(DEVICES)
    return tmp_path


def _gateway(operator: Path, gateway: str, *extra: str) -> Path:
    argv = ["provision", "gateway", gateway, "--site", "G60 K123+400", "--ca", str(operator / "ca" / "ca.crt"),
            "--broker", "mqtts://127.0.0.1:8884", "--devices", str(operator / "devices.toml"),
            "-o", str(operator / "bundles"), *extra]
    assert main(argv) == 0
    return operator / "bundles" / gateway


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_cert_bundle_holds_everything_and_its_config_checks(operator: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bundle = _gateway(operator, "gw-k123")
    files = sorted(str(p.relative_to(bundle)) for p in bundle.rglob("*") if p.is_file())
    assert files == ["agent.toml", "broker/README", "broker/acl", "install.sh", "manifest.json",
                     "roadpulse-agent.service", "tls/ca.crt", "tls/gw-k123.crt", "tls/gw-k123.key"]
    assert _mode(bundle / "tls" / "gw-k123.key") == 0o600
    assert _mode(bundle / "install.sh") & 0o100
    assert check(bundle / "agent.toml").startswith("agent config OK: gateway gw-k123, 1 devices")
    cert = x509.load_pem_x509_certificate((bundle / "tls" / "gw-k123.crt").read_bytes())
    ca = x509.load_pem_x509_certificate((operator / "ca" / "ca.crt").read_bytes())
    assert cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == "gw-k123"
    assert cert.issuer == ca.subject
    ca_key = ca.public_key()
    assert isinstance(ca_key, ec.EllipticCurvePublicKey)
    cert.verify_directly_issued_by(ca)
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["cert_serial"] == format(cert.serial_number, "x")
    assert "PRIVATE" not in (bundle / "manifest.json").read_text()
    assert "PRIVATE KEY" not in capsys.readouterr().out


def test_the_unit_is_hardened(operator: Path) -> None:
    unit = (_gateway(operator, "gw-k123") / "roadpulse-agent.service").read_text()
    for line in ("Restart=always", "User=roadpulse", "ProtectSystem=strict", "ProtectHome=yes",
                 "NoNewPrivileges=yes", "StateDirectory=roadpulse/agent", "CapabilityBoundingSet=",
                 "ExecStart=/opt/roadpulse/bin/roadpulse agent run -c /etc/roadpulse/agent.toml",
                 "ExecStartPre=/opt/roadpulse/bin/roadpulse config check /etc/roadpulse/agent.toml"):
        assert line in unit.splitlines(), line
    assert "gw-k123" in unit


def test_reprovisioning_rotates_the_credentials(operator: Path) -> None:
    first = _gateway(operator, "gw-k123")
    key1, cert1 = (first / "tls" / "gw-k123.key").read_bytes(), (first / "tls" / "gw-k123.crt").read_bytes()
    second = _gateway(operator, "gw-k123")
    assert second == first
    assert (second / "tls" / "gw-k123.key").read_bytes() != key1
    assert (second / "tls" / "gw-k123.crt").read_bytes() != cert1
    assert sorted(p.name for p in (operator / "bundles").iterdir()) == ["gw-k123"]  # no half-swapped leftovers


def test_password_bundle_and_its_broker_line(operator: Path) -> None:
    first = _gateway(operator, "gw-k200", "--auth", "password")
    password = (first / "mqtt-password").read_text().strip()
    assert _mode(first / "mqtt-password") == 0o600
    line = (first / "broker" / "passwd-line").read_text().strip()
    user, hashed = line.split(":", 1)
    _, version, iterations, salt, digest = hashed.split("$")
    assert version == "7"
    assert user == "gw-k200"
    assert base64.b64encode(hashlib.pbkdf2_hmac("sha512", password.encode(), base64.b64decode(salt),
                                                int(iterations), 64)).decode() == digest
    assert 'username = "gw-k200"' in (first / "agent.toml").read_text()
    assert check(first / "agent.toml").startswith("agent config OK")
    second = _gateway(operator, "gw-k200", "--auth", "password")
    assert (second / "mqtt-password").read_text().strip() != password


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (["gw/k1"], "ID: gateway id"),
        (["gw-1", "--broker", "mqtt://127.0.0.1:1883"], "--broker: 'mqtt://127.0.0.1:1883' must be mqtts://"),
        (["gw-1", "--ca", "/nonexistent/ca.crt"], "No such file"),
        (["gw-1", "--site", "x\ny"], "--site"),
    ],
)
def test_bad_requests_are_refused_with_a_reason(operator: Path, change: list[str], message: str,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["provision", "gateway", change[0], "--site", "s", "--ca", str(operator / "ca" / "ca.crt"),
            "--broker", "mqtts://h:8884", "-o", str(operator / "bundles"), *change[1:]]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


@pytest.mark.slow
def test_bundle_credentials_work_against_the_provisioned_broker_and_rotate(operator: Path) -> None:
    ca = operator / "ca" / "ca.crt"
    broker_dir = operator / "broker"
    assert main(["provision", "broker", "127.0.0.1", "localhost", "--ca", str(ca), "--collector", "collector-1",
                 "-o", str(broker_dir)]) == 0
    cert_bundle = _gateway(operator, "gw-k123")
    pw_bundle = _gateway(operator, "gw-k200", "--auth", "password")
    passwd = broker_dir / "passwd"
    passwd.write_text(passwd.read_text() + (pw_bundle / "broker" / "passwd-line").read_text())
    assert (cert_bundle / "broker" / "acl").read_text() in (broker_dir / "acl").read_text()
    broker = Mosquitto(operator / "mosquitto", security=BrokerSecurity(
        broker_dir / "ca.crt", broker_dir / "broker.crt", broker_dir / "broker.key", passwd, broker_dir / "acl"))
    broker.start()
    try:
        tls = cert_bundle / "tls"
        gw = connect(broker.mtls_port, ca=tls / "ca.crt", cert=tls / "gw-k123.crt", key=tls / "gw-k123.key")
        assert gw.accepted
        assert gw.publish("rp/v1/gw-k123/data").value < 128
        assert gw.publish("rp/v1/gw-k200/data").value == 135
        gw.close()
        old_password = (pw_bundle / "mqtt-password").read_text().strip()
        pw = connect(broker.port, ca=tls / "ca.crt", username="gw-k200", password=old_password)
        assert pw.accepted
        pw.close()
        collector_password = (broker_dir / "collector-1.password").read_text().strip()
        col = connect(broker.port, ca=tls / "ca.crt", username="collector-1", password=collector_password)
        assert col.accepted
        col.close()
        # Rotation: a new bundle, its line replaces the old one, the broker reloads (SIGHUP).
        pw_bundle = _gateway(operator, "gw-k200", "--auth", "password")
        lines = [ln for ln in passwd.read_text().splitlines() if not ln.startswith("gw-k200:")]
        passwd.write_text("\n".join([*lines, (pw_bundle / "broker" / "passwd-line").read_text().strip()]) + "\n")
        assert broker.pid is not None
        os.kill(broker.pid, signal.SIGHUP)
        time.sleep(0.5)
        old = connect(broker.port, ca=tls / "ca.crt", username="gw-k200", password=old_password)
        assert not old.accepted
        old.close()
        new_password = (pw_bundle / "mqtt-password").read_text().strip()
        new = connect(broker.port, ca=tls / "ca.crt", username="gw-k200", password=new_password)
        assert new.accepted
        new.close()
    finally:
        broker.stop()
