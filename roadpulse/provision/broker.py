"""`roadpulse provision broker`: the broker's certificate, the ACL and collector credentials."""

from __future__ import annotations

from pathlib import Path

from roadpulse.provision.acl import broker_acl, new_password, password_line
from roadpulse.provision.bundle import GatewayRequest, ProvisionError, _load_ca, write_file
from roadpulse.provision.certs import issue
from roadpulse.shipped import shipped_path


def provision_broker(hostnames: list[str], ca_cert: Path, ca_key: Path, *, collectors: list[str], prefix: str,
                     out: Path) -> list[Path]:
    """Write broker.crt/.key, acl, passwd (collectors' lines), one password file per collector, and
    mosquitto-tls.conf; return the paths. Gateways' password lines come from their bundles."""
    ca = _load_ca(GatewayRequest("broker", "-", "mqtts://x", ca_cert, ca_key, out))
    try:
        acl = broker_acl(collectors, prefix)
    except ValueError as exc:
        raise ProvisionError(f"--collector: {exc}") from None
    pair = issue(ca, hostnames[0], server_names=hostnames)
    written = [out / "ca.crt", out / "broker.crt", out / "broker.key", out / "acl", out / "passwd",
               out / "mosquitto-tls.conf"]
    write_file(out / "ca.crt", ca.cert_pem)
    write_file(out / "broker.crt", pair.cert_pem)
    write_file(out / "broker.key", pair.key_pem, 0o600)
    write_file(out / "acl", acl)
    lines = []
    for name in collectors:
        password = new_password()
        lines.append(password_line(name, password))
        write_file(out / f"{name}.password", password + "\n", 0o600)
        written.append(out / f"{name}.password")
    write_file(out / "passwd", "".join(line + "\n" for line in lines), 0o600)
    write_file(out / "mosquitto-tls.conf", shipped_path("mosquitto-tls.conf").read_text())
    return written
