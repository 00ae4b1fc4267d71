"""`roadpulse provision ca|broker|gateway|wheelhouse`: argparse glue over bundle.py and friends."""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from roadpulse.wire.topics import DEFAULT_PREFIX


def add_provision_parser(sub: Any) -> None:
    provision = sub.add_parser(
        "provision", help="make credentials and install bundles for gateways (operator's machine)",
        description="Per-gateway credentials signed by the operator's CA, broker entries, a hardened "
        "systemd unit and an install script. Needs roadpulse[provision]. Secrets are written to files "
        "(mode 0600), never printed.")
    actions = provision.add_subparsers(dest="action", required=True, metavar="ACTION")

    ca = actions.add_parser("ca", help="create an operator CA (keep ca.key offline)")
    ca.add_argument("name", help="the CA's common name, e.g. 'G60 roads operator CA'")
    ca.add_argument("-o", "--out", required=True, type=Path, metavar="DIR", help="writes ca.crt and ca.key here")
    ca.add_argument("--days", type=int, default=3650)
    ca.set_defaults(func=_ca)

    broker = actions.add_parser("broker", help="the broker's certificate, ACL and collector credentials")
    broker.add_argument("hostname", nargs="+", help="names and addresses gateways use to reach the broker")
    _add_ca_arguments(broker)
    broker.add_argument("--collector", action="append", default=[], metavar="NAME",
                        help="a collector user (repeatable); gets a password file and an ACL block")
    broker.add_argument("--prefix", default=DEFAULT_PREFIX, help=f"topic prefix (default {DEFAULT_PREFIX})")
    broker.add_argument("-o", "--out", required=True, type=Path, metavar="DIR")
    broker.set_defaults(func=_broker)

    gateway = actions.add_parser(
        "gateway", help="a bundle for one gateway (again: new credentials)",
        description="Writes DIR/ID/: agent.toml, tls/ (or mqtt-password), broker/ entries, "
        "roadpulse-agent.service, install.sh, manifest.json, and wheelhouse/ if asked for.")
    gateway.add_argument("gateway_id", metavar="ID", help="the gateway id: topic level, tag and identity")
    gateway.add_argument("--site", required=True, help="where it is installed, e.g. 'G60 K123+400 portal'")
    _add_ca_arguments(gateway)
    gateway.add_argument("--broker", required=True, metavar="mqtts://HOST:PORT",
                         help="the broker as the gateway reaches it (mutual TLS port for --auth cert)")
    gateway.add_argument("--auth", choices=["cert", "password"], default="cert",
                         help="cert: client certificate, CN = ID (default); password: username ID + password")
    gateway.add_argument("--prefix", default=DEFAULT_PREFIX, help=f"topic prefix (default {DEFAULT_PREFIX})")
    gateway.add_argument("--devices", type=Path, metavar="FILE",
                         help="TOML with the site's [[buses]] and [[devices]], copied into agent.toml")
    gateway.add_argument("--template", type=Path, metavar="FILE", help="agent config template (string.Template)")
    gateway.add_argument("--cert-days", type=int, default=825)
    gateway.add_argument("--wheelhouse", action="append", default=[], metavar="MACHINE=DIR",
                         help="include wheels for an offline install on MACHINE (uname -m: aarch64, armv7l)")
    gateway.add_argument("-o", "--out", required=True, type=Path, metavar="DIR")
    gateway.set_defaults(func=_gateway)

    wheels = actions.add_parser(
        "wheelhouse", help="download the agent's wheels for another CPU (no compiler needed on site)",
        description="pip download --only-binary=:all: for MACHINE and Python 3.11, plus roadpulse itself.")
    wheels.add_argument("machine", choices=["aarch64", "armv7l", "x86_64"])
    wheels.add_argument("--wheel", required=True, type=Path, metavar="FILE",
                        help="roadpulse's own wheel (a pure one: ROADPULSE_PURE=1 pip wheel .)")
    wheels.add_argument("--python-version", default="3.11")
    wheels.add_argument("-o", "--out", required=True, type=Path, metavar="DIR")
    wheels.set_defaults(func=_wheelhouse)


def _needs_cryptography(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """A gateway's install (roadpulse[agent]) has no cryptography: say which extra to install."""

    @functools.wraps(command)
    def run(args: argparse.Namespace) -> int:
        try:
            import cryptography  # noqa: F401
        except ImportError:
            print("provisioning needs the optional dependencies: pip install 'roadpulse[provision]'", file=sys.stderr)
            return 2
        return command(args)

    return run


def _add_ca_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ca", required=True, type=Path, metavar="CA.crt", help="the operator's CA certificate")
    parser.add_argument("--ca-key", type=Path, metavar="CA.key", help="its key (default: CA.key next to CA.crt)")


def _ca_paths(args: argparse.Namespace) -> tuple[Path, Path]:
    return args.ca, args.ca_key or args.ca.with_suffix(".key")


@_needs_cryptography
def _ca(args: argparse.Namespace) -> int:
    from roadpulse.provision.bundle import write_file
    from roadpulse.provision.certs import make_ca

    pair = make_ca(args.name, days=args.days)
    write_file(args.out / "ca.crt", pair.cert_pem)
    write_file(args.out / "ca.key", pair.key_pem, 0o600)
    print(f"wrote {args.out / 'ca.crt'} and {args.out / 'ca.key'} (mode 0600: keep it offline)")
    return 0


@_needs_cryptography
def _broker(args: argparse.Namespace) -> int:
    from roadpulse.provision.broker import provision_broker
    from roadpulse.provision.bundle import ProvisionError

    ca_cert, ca_key = _ca_paths(args)
    try:
        written = provision_broker(args.hostname, ca_cert, ca_key, collectors=args.collector,
                                   prefix=args.prefix, out=args.out)
    except ProvisionError as exc:
        print(f"provision broker: {exc}", file=sys.stderr)
        return 2
    print("\n".join(f"wrote {p}" for p in written))
    return 0


@_needs_cryptography
def _gateway(args: argparse.Namespace) -> int:
    from roadpulse.provision.bundle import GatewayRequest, ProvisionError, provision_gateway

    ca_cert, ca_key = _ca_paths(args)
    houses: dict[str, Path] = {}
    for item in args.wheelhouse:
        machine, sep, folder = item.partition("=")
        if not sep or not Path(folder).is_dir():
            print(f"provision gateway: --wheelhouse {item!r}: want MACHINE=DIR with DIR a folder", file=sys.stderr)
            return 2
        houses[machine] = Path(folder)
    request = GatewayRequest(args.gateway_id, args.site, args.broker, ca_cert, ca_key, args.out, args.auth,
                             args.prefix, args.devices, args.template, args.cert_days, houses)
    try:
        bundle = provision_gateway(request)
    except ProvisionError as exc:
        print(f"provision gateway: {exc}", file=sys.stderr)
        return 2
    print(f"bundle for {args.gateway_id} in {bundle}:")
    for path in sorted(p for p in bundle.rglob("*") if p.is_file() and "wheelhouse" not in p.parts):
        print(f"  {path.relative_to(bundle)}")
    if houses:
        print(f"  wheelhouse/ for {', '.join(sorted(houses))}")
    return 0


def _wheelhouse(args: argparse.Namespace) -> int:
    from roadpulse.provision.wheelhouse import WheelhouseError, download_wheelhouse

    try:
        files = download_wheelhouse(args.machine, args.wheel, args.out, args.python_version)
    except WheelhouseError as exc:
        print(f"provision wheelhouse: {exc}", file=sys.stderr)
        return 1
    print("\n".join(f.name for f in files))
    return 0
