"""Field engineers' tools: `roadpulse agent test|probe|scan`.

They use the same config loading, drivers and codecs as the running agent, so
a device that `agent test` reads is a device the agent reads, and a type/order
that `agent probe` decodes right is the one to write in the profile.

One module per concern: `devices` (agent test), `modbus` (probe and scan),
`serial` (probe serial), `output` (JSON rows, broken pipes); this one holds the parsers.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any, get_args

from agent.codec.planning import Kind
from agent.tools.devices import run_test
from agent.tools.modbus import ScanProgress, run_probe_modbus, run_scan, unit_range
from agent.tools.output import quiet_on_broken_pipe
from agent.tools.serial import run_probe_serial
from roadpulse.profiles import ByteOrder, RegisterType


def _link_args(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--host", help="Modbus TCP host (or serial device server)")
    where.add_argument("--serial", help="serial device, e.g. /dev/ttyUSB0")
    parser.add_argument("--port", type=_int_in(1, 65535, "port"), default=502, help="TCP port (default 502)")
    parser.add_argument("--transport", choices=["tcp", "rtu-over-tcp"], default="tcp")
    parser.add_argument("--baud", type=int, default=9600)
    parser.add_argument("--parity", choices=["N", "E", "O"], default="N")
    parser.add_argument("--stopbits", type=int, choices=[1, 2], default=1)
    parser.add_argument("--timeout", type=float, default=1.0, help="seconds per attempt")
    parser.add_argument("--retries", type=_int_in(0, 5, "retries"), default=0,
                        help="extra attempts after a timeout (default 0: one attempt shows the truth)")
    parser.add_argument("--json", action="store_true")


def _int_in(low: int, high: int, what: str) -> Callable[[str], int]:
    """An argparse type: an integer in [low, high], so a typo is a usage error, not a traceback."""

    def parse(text: str) -> int:
        try:
            value = int(text, 0)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what} must be an integer, not {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{what} must be {low}-{high}, not {value}")
        return value

    return parse


def add_agent_tool_parsers(agent_subparsers: Any) -> None:
    """Register `test`, `probe {modbus,serial}` and `scan {modbus}` under `roadpulse agent`."""
    test = agent_subparsers.add_parser("test", help="poll every configured device once and print the readings")
    test.add_argument("-c", "--config", required=True, help="agent config file")
    test.add_argument("--device", action="append", default=[], help="only this device id (repeatable)")
    test.add_argument("--json", action="store_true", help="one JSON object per reading")
    test.set_defaults(func=quiet_on_broken_pipe(run_test))

    probe = agent_subparsers.add_parser("probe", help="read one device by hand, without a config")
    probe_kinds = probe.add_subparsers(dest="probe_kind", required=True)
    modbus = probe_kinds.add_parser("modbus", help="read registers or bits and show every plausible decoding")
    _link_args(modbus)
    modbus.add_argument("--unit", type=_int_in(0, 247, "unit"), default=1, help="slave id (default 1)")
    modbus.add_argument("--kind", choices=list(get_args(Kind)), default="holding",
                        help="register table (default holding; detectors often use input)")
    modbus.add_argument("--address", type=_int_in(0, 65535, "address"), required=True,
                        help="0-based register address")
    modbus.add_argument("--count", type=_int_in(1, 125, "count"),
                        help="registers to read, 1-125 (default: what --type needs)")
    modbus.add_argument("--type", choices=list(get_args(RegisterType)), help="decode as this profile type")
    modbus.add_argument("--order", choices=list(get_args(ByteOrder)), default="ABCD")
    modbus.add_argument("--bit", type=int, help="bit number for --type bit")
    modbus.add_argument("--byte", choices=["high", "low"], help="which byte for --type int8 or uint8")
    modbus.set_defaults(func=quiet_on_broken_pipe(run_probe_modbus))

    serial_probe = probe_kinds.add_parser("serial", help="print frames as they arrive, with parse results")
    serial_probe.add_argument("--serial", required=True)
    serial_probe.add_argument("--baud", type=int, default=9600)
    serial_probe.add_argument("--parity", choices=["N", "E", "O"], default="N")
    serial_probe.add_argument("--stopbits", type=int, choices=[1, 2], default=1)
    serial_probe.add_argument("--profile", help="parse with this serial_ascii profile")
    serial_probe.add_argument("--profile-dir", action="append", default=[], help="extra profile folder")
    serial_probe.add_argument("--delimiter", default="\r\n", help="frame delimiter without a profile")
    serial_probe.add_argument("--send", help="command to send (default: the profile's poll), e.g. '0R0\\r\\n'")
    serial_probe.add_argument("--every", type=float, default=2.0, help="seconds between commands")
    serial_probe.add_argument("--duration", type=float, default=10.0, help="seconds to listen")
    serial_probe.add_argument("--json", action="store_true")
    serial_probe.set_defaults(func=quiet_on_broken_pipe(run_probe_serial))

    scan = agent_subparsers.add_parser("scan", help="find the slaves that answer on a line")
    scan_kinds = scan.add_subparsers(dest="scan_kind", required=True)
    scan_modbus = scan_kinds.add_parser("modbus", help="try each unit id with one small read")
    _link_args(scan_modbus)
    scan_modbus.set_defaults(timeout=0.2)
    scan_modbus.add_argument("--units", type=unit_range, default=unit_range("1-247"), help="e.g. 1-247")
    scan_modbus.add_argument("--kind", choices=list(get_args(Kind)), default="holding")
    scan_modbus.add_argument("--address", type=_int_in(0, 65535, "address"), default=0,
                             help="register each unit is asked for (default 0)")
    scan_modbus.set_defaults(func=quiet_on_broken_pipe(run_scan))


__all__ = ["ScanProgress", "add_agent_tool_parsers"]
