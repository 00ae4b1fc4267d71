"""`roadpulse provision gateway`: everything one gateway needs, in one folder to carry to site.

The bundle holds the agent config (from a template), the gateway's own credentials (a client
certificate signed by the operator's CA, or a password), the broker's entries for it, a
hardened systemd unit and an install script; optionally wheelhouses for offline installs.
Provisioning again makes new credentials (rotation): the old bundle is replaced as a whole.
No secret is printed; the manifest records fingerprints only.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import shutil
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from cryptography.hazmat.primitives import hashes

from roadpulse.configfile import ConfigError
from roadpulse.provision.acl import gateway_acl, new_password, password_line
from roadpulse.provision.certs import KeyPair, issue, load
from roadpulse.shipped import shipped_path
from roadpulse.wire.topics import DEFAULT_PREFIX, validate_gateway_id

Auth = Literal["cert", "password"]
SITE_RE = re.compile(r"^[A-Za-z0-9_.+\- ]{1,64}$")


class ProvisionError(Exception):
    """A request that cannot make a bundle; the message names the argument and the reason."""


@dataclass(frozen=True)
class GatewayRequest:
    gateway_id: str
    site: str
    broker_url: str
    ca_cert: Path
    ca_key: Path
    out: Path
    auth: Auth = "cert"
    prefix: str = DEFAULT_PREFIX
    devices: Path | None = None
    template: Path | None = None
    cert_days: int = 825
    wheelhouses: dict[str, Path] = field(default_factory=dict)  # machine (uname -m) -> folder of wheels


def _check(req: GatewayRequest) -> None:
    try:
        validate_gateway_id(req.gateway_id)
    except ValueError as exc:
        raise ProvisionError(f"ID: {exc}") from None
    if not SITE_RE.match(req.site):
        raise ProvisionError(f"--site: {req.site!r} must be 1-64 letters, digits, spaces or _.+-")
    if not re.match(r"^mqtts://[^/:]+(:\d+)?$", req.broker_url):
        raise ProvisionError(f"--broker: {req.broker_url!r} must be mqtts://HOST[:PORT] (TLS is not optional)")


def _load_ca(req: GatewayRequest) -> KeyPair:
    try:
        return load(req.ca_key.read_bytes(), req.ca_cert.read_bytes())
    except OSError as exc:
        raise ProvisionError(f"--ca/--ca-key: {exc.filename}: {exc.strerror}") from None
    except ValueError as exc:
        raise ProvisionError(f"--ca/--ca-key: not a PEM certificate and EC key pair ({exc})") from None


def _auth_toml(req: GatewayRequest) -> str:
    if req.auth == "cert":
        return (f'# Mutual TLS: the broker takes this certificate\'s CN ({req.gateway_id}) as the identity.\n'
                f'tls = {{ ca_file = "tls/ca.crt", cert_file = "tls/{req.gateway_id}.crt", '
                f'key_file = "tls/{req.gateway_id}.key" }}\n')
    return (f'username = "{req.gateway_id}"\npassword_file = "mqtt-password"\n'
            'tls = { ca_file = "tls/ca.crt" }\n')


def _devices_toml(req: GatewayRequest) -> str:
    if req.devices is None:
        return ("# Add the site's buses and devices here (roadpulse agent scan finds Modbus unit ids), e.g.\n"
                '# [[devices]]\n# id = "vds-1"\n# profile = "vds_modbus"\n'
                '# tcp = { host = "192.168.1.20", port = 502 }\n')
    try:
        return req.devices.read_text()
    except OSError as exc:
        raise ProvisionError(f"--devices: {req.devices}: {exc.strerror}") from None


def _template(name: str, override: Path | None = None) -> string.Template:
    path = override or shipped_path(f"templates/{name}")
    try:
        return string.Template(path.read_text())
    except OSError as exc:
        raise ProvisionError(f"template {path}: {exc.strerror}") from None


def write_file(path: Path, data: str | bytes, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Created with its final mode: a secret is never readable by others, not even for a moment.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data.encode() if isinstance(data, str) else data)
    path.chmod(mode)


def provision_gateway(req: GatewayRequest, now: dt.datetime | None = None) -> Path:
    """Make (or remake, with new credentials) the bundle `req.out / req.gateway_id`; return its path."""
    _check(req)
    ca = _load_ca(req)
    now = now or dt.datetime.now(dt.UTC)
    values = {"gateway_id": req.gateway_id, "site": req.site, "broker_url": req.broker_url,
              "prefix": req.prefix, "created": now.strftime("%Y-%m-%d %H:%M UTC"),
              "auth": _auth_toml(req), "devices": _devices_toml(req)}
    final = req.out / req.gateway_id
    work = req.out / f".{req.gateway_id}.new"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    manifest: dict[str, object] = {"gateway_id": req.gateway_id, "site": req.site, "broker": req.broker_url,
                                   "auth": req.auth, "created": now.isoformat()}
    write_file(work / "agent.toml", _template("agent.toml", req.template).substitute(values))
    write_file(work / "tls" / "ca.crt", ca.cert_pem)
    broker_notes = ["# Broker entries for gateway " + req.gateway_id,
                    "# The ACL patterns are the same for every gateway: add acl once, not per gateway."]
    if req.auth == "cert":
        pair = issue(ca, req.gateway_id, days=req.cert_days, not_before=now - dt.timedelta(minutes=5))
        write_file(work / "tls" / f"{req.gateway_id}.crt", pair.cert_pem)
        write_file(work / "tls" / f"{req.gateway_id}.key", pair.key_pem, 0o600)
        cert = pair.cert
        manifest |= {"cert_serial": format(cert.serial_number, "x"),
                     "cert_sha256": cert.fingerprint(hashes.SHA256()).hex(),
                     "cert_not_after": cert.not_valid_after_utc.isoformat()}
        broker_notes.append("# Mutual TLS: nothing to add to the password file; revoke an old certificate "
                            "by its serial (manifest.json) in the broker's CRL.")
    else:
        password = new_password()
        write_file(work / "mqtt-password", password + "\n", 0o600)
        # The broker's line for this gateway: replace any earlier line for the same user.
        write_file(work / "broker" / "passwd-line", password_line(req.gateway_id, password) + "\n", 0o600)
        manifest["password_sha256"] = hashlib.sha256(password.encode()).hexdigest()[:16]
        broker_notes.append(f"# Password: replace {req.gateway_id}'s line in the broker's password file "
                            "with broker/passwd-line, then reload mosquitto (SIGHUP).")
    write_file(work / "broker" / "acl", gateway_acl(req.prefix))
    write_file(work / "broker" / "README", "\n".join(broker_notes) + "\n")
    write_file(work / "roadpulse-agent.service", _template("roadpulse-agent.service").substitute(values))
    write_file(work / "install.sh", _template("install.sh").substitute(values), 0o755)
    for machine, wheels in sorted(req.wheelhouses.items()):
        shutil.copytree(wheels, work / "wheelhouse" / machine)
    manifest["files"] = sorted(str(p.relative_to(work)) for p in work.rglob("*") if p.is_file())
    write_file(work / "manifest.json", json.dumps(manifest, indent=2) + "\n")
    _replace(final, work)
    return final


def _replace(final: Path, work: Path) -> None:
    """Swap the new bundle in whole: never half old credentials, half new."""
    old = final.with_name(f".{final.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        final.rename(old)
    work.rename(final)
    shutil.rmtree(old, ignore_errors=True)


def check_bundle_config(bundle: Path) -> str:
    """The bundle's agent.toml through `config check` (relative paths resolve inside the bundle)."""
    from roadpulse.check import check

    try:
        return check(bundle / "agent.toml", "agent")
    except ConfigError as exc:
        raise ProvisionError(str(exc)) from None
