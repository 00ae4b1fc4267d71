"""Field engineers' tools: `roadpulse agent test|probe|scan`.

They use the same config loading, drivers and codecs as the running agent, so
a device that `agent test` reads is a device the agent reads, and a type/order
that `agent probe` decodes right is the one to write in the profile.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import math
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO, get_args

from agent.bus import SerialBus, build_buses
from agent.catalog import DeviceEntry, build_catalog
from agent.codec.frames import Framer, frame_parser
from agent.codec.planning import Kind
from agent.codec.registers import DecodeError, decode, plausible_decodings, register_count
from agent.config import SerialLink, load_agent_config
from agent.modbus_adapter import ModbusLink
from agent.profiles import ByteOrder, Framing, ModbusProfile, RegisterType, SerialProfile, load_profile
from agent.sources import create_source
from agent.sources.base import DeviceError, LinkError, SourceReading
from agent.sources.modbus import read_with_retries
from agent.sources.serial_ascii import open_serial
from roadpulse.configfile import ConfigError
from roadpulse.wire import Quality

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
# What a shell reports for a tool killed by SIGPIPE (`yes | head`): the reader went away.
EXIT_BROKEN_PIPE = 128 + signal.SIGPIPE
Handler = Callable[[argparse.Namespace], int]


def _jsonable(obj: Any) -> Any:
    """NaN and infinity are not JSON: any left in a row become null (rows say why, see _json_value)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_jsonable(v) for v in obj]
    return obj


def _json_value(value: Any) -> dict[str, Any]:
    """`value` for a JSON row. A float register holding NaN or infinity has no JSON value:
    it is null, bad, with the agent's reason for it (`invalid`) and what was decoded (`raw`)."""
    if isinstance(value, float) and not math.isfinite(value):
        return {"value": None, "quality": "bad", "reason": "invalid", "raw": str(value)}
    return {"value": value}


def _print(obj: object, as_json: bool) -> None:
    # allow_nan=False: a NaN that slipped past _jsonable fails here instead of printing invalid JSON.
    print(json.dumps(_jsonable(obj), default=str, allow_nan=False) if as_json else obj, flush=True)


def _quiet_on_broken_pipe(handler: Handler) -> Handler:
    """`roadpulse agent test | head`: when the reader goes away, stop quietly, as Unix tools do."""

    @functools.wraps(handler)
    def run(args: argparse.Namespace) -> int:
        try:
            code = handler(args)
            sys.stdout.flush()  # inside the try: a broken pipe found at exit would print a traceback
        except BrokenPipeError:
            # Python flushes stdout again at exit; point it at /dev/null so that finds nothing to complain about.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
            return EXIT_BROKEN_PIPE
        return code

    return run


# ---- agent test


def _units(entry: DeviceEntry) -> dict[str, str]:
    profile = entry.profile
    points = profile.registers if isinstance(profile, ModbusProfile) else profile.fields
    return {p.name: p.unit for p in points}


async def _test_all(entries: list[DeviceEntry], config_buses: dict[str, SerialBus]) -> list[
    tuple[DeviceEntry, list[SourceReading], DeviceError | None]
]:
    async def one(entry: DeviceEntry) -> tuple[DeviceEntry, list[SourceReading], DeviceError | None]:
        bus = config_buses.get(entry.device.bus) if entry.device.bus else None
        source = create_source(entry, bus=bus)
        try:
            return entry, await source.read(), None
        except DeviceError as err:
            return entry, [], err
        finally:
            await source.close()

    try:
        async with asyncio.TaskGroup() as tg:
            tasks = [tg.create_task(one(e), name=f"test[{e.device.id}]") for e in entries]
    finally:
        for bus in config_buses.values():
            bus.close()
    return [t.result() for t in tasks]


def run_test(args: argparse.Namespace) -> int:
    """Poll every configured device once; one line (or JSON object) per reading."""
    path = Path(args.config)
    try:
        config = load_agent_config(path)
        catalog = build_catalog(config, path)
    except ConfigError as err:
        print(err, file=sys.stderr)
        return EXIT_USAGE
    unknown = sorted(set(args.device) - {e.device.id for e in catalog.devices})
    if unknown:
        print(f"{path}: no device {', '.join(map(repr, unknown))} in [[devices]]", file=sys.stderr)
        return EXIT_USAGE
    entries = [e for e in catalog.devices if not args.device or e.device.id in args.device]
    results = asyncio.run(_test_all(entries, dict(build_buses(config))))
    failed = 0
    for entry, readings, error in results:
        units = _units(entry)
        if error is not None:
            failed += 1
            row = {"device": entry.device.id, "name": None, "value": None, "unit": "",
                   "quality": "bad", "reason": error.reason, "error": str(error), "ts": int(time.time() * 1000)}
            _print(row if args.json else f"{entry.device.id:<16} FAILED  {error}", args.json)
            continue
        for r in readings:
            quality = r.quality.name.lower()
            stamp = datetime.fromtimestamp(r.ts_ms / 1000, UTC).isoformat(timespec="milliseconds")
            if args.json:
                reading = {"device": entry.device.id, "name": r.name, "value": r.value,
                           "unit": units.get(r.name, ""), "quality": quality, "reason": r.reason, "ts": r.ts_ms,
                           "time": stamp}
                # The codecs report NaN as bad `invalid`; should a good one ever come, the row still says why.
                _print(reading | _json_value(r.value) if r.quality == Quality.GOOD else reading, True)
            else:
                # float32 registers widen to float64 digits that nobody wrote: show 7 significant.
                shown = "-" if r.value is None else f"{r.value:.7g}" if isinstance(r.value, float) else r.value
                state = quality if not r.reason else f"{quality}({r.reason})"
                print(f"{entry.device.id:<16} {r.name:<20} {shown!s:>16} {units.get(r.name, ''):<6} "
                      f"{state:<14} {stamp}")
    return EXIT_FAILED if failed else EXIT_OK


# ---- agent probe modbus / scan modbus


def _link(args: argparse.Namespace) -> ModbusLink:
    if args.host:
        return ModbusLink.tcp(args.host, args.port, timeout=args.timeout, transport=args.transport)
    return ModbusLink.serial(args.serial, baudrate=args.baud, parity=args.parity, stopbits=args.stopbits,
                             timeout=args.timeout)


async def _request(link: ModbusLink, args: argparse.Namespace, kind: Kind, address: int, *, count: int,
                   unit: int) -> list[int] | list[bool]:
    """The agent's own request path: `--retries` more attempts after a timeout, `--timeout` each."""
    return await read_with_retries(link, kind, address, count, unit, answer_timeout_s=args.timeout,
                                   retries=args.retries)


def _decoded_value(words: Sequence[int], args: argparse.Namespace) -> Any:
    if args.type == "string":
        return decode(words, "string", args.order)
    width = register_count(args.type)
    return decode(words[:width], args.type, args.order, bit=args.bit)


async def _probe(args: argparse.Namespace) -> int:
    link = _link(args)
    kind: Kind = args.kind
    count = args.count
    if count is None:
        count = register_count(args.type) if args.type and args.type != "string" else 1
    try:
        words = await _request(link, args, kind, args.address, count=count, unit=args.unit)
    except DeviceError as err:
        _print({"error": err.reason, "detail": str(err)} if args.json else f"no answer: {err}", args.json)
        return EXIT_FAILED
    finally:
        link.close()
    if kind in ("coil", "discrete"):
        bits = [bool(b) for b in words]
        if args.json:
            _print({"value": bits[0]} if args.type else {"bits": bits}, True)
        else:
            for i, bit in enumerate(bits):
                print(f"{kind} {args.address + i:>5}  {int(bit)}")
        return EXIT_OK
    registers = [int(w) for w in words]
    if args.type:
        try:
            value = _decoded_value(registers, args)
        except DecodeError as err:
            print(f"cannot decode: {err}", file=sys.stderr)
            return EXIT_USAGE
        _print(_json_value(value) if args.json else value, args.json)
        return EXIT_OK
    rows = plausible_decodings(registers)
    if args.json:
        _print({"registers": registers,
                "decodings": [{"type": t, "order": o, **_json_value(v)} for t, o, v in rows]}, True)
        return EXIT_OK
    print(f"{'kind':<8} {'addr':>5}  {'uint':>5}  {'hex':<6}  {'int':>6}  bits")
    for i, reg in enumerate(registers):
        print(f"{kind:<8} {args.address + i:>5}  {reg:>5}  0x{reg:04X}  {reg - 65536 if reg > 32767 else reg:>6}  "
              f"{reg:016b}")
    print(f"\n{'type':<8} {'order':<9} value   (pass --type and --order to read one)")
    for type_, order, value in rows:
        print(f"{type_:<8} {order:<9} {value!r}")
    return EXIT_OK


def run_probe_modbus(args: argparse.Namespace) -> int:
    if args.kind in ("coil", "discrete") and args.type not in (None, "bool"):
        print(f"--kind {args.kind} holds single bits: use --type bool or no --type", file=sys.stderr)
        return EXIT_USAGE
    if args.type == "bit" and args.bit is None:
        print("--type bit needs --bit", file=sys.stderr)
        return EXIT_USAGE
    return asyncio.run(_probe(args))


def _unit_range(text: str) -> list[int]:
    units: list[int] = []
    for part in text.split(","):
        first, _, last = part.partition("-")
        units.extend(range(int(first), int(last or first) + 1))
    if not units or min(units) < 0 or max(units) > 247:
        raise argparse.ArgumentTypeError("units are 0-247, e.g. 1-247 or 1,5,10-20")
    return units


class ScanProgress:
    """`scanned 50/247 units, 2 found` on stderr: a scan of every unit id can take a minute.

    On a terminal, one line rewritten after each unit. Elsewhere (a log, CI) a line when another
    10 % of the units are done or 5 s have passed, so a log gets a dozen lines, not one per unit.
    """

    LOG_EVERY_S = 5.0
    LOG_EVERY_FRACTION = 0.1

    def __init__(self, total: int, stream: TextIO, clock: Callable[[], float] = time.monotonic) -> None:
        self.total = total
        self.stream = stream
        self.on_terminal = stream.isatty()
        self.clock = clock
        self.done = 0
        self.logged_done = 0
        self.logged_at = clock()
        self.shown_width = 0  # of the line now on the terminal, to blank it out

    def unit_done(self, found: int) -> None:
        self.done += 1
        text = f"scanned {self.done}/{self.total} units, {found} found"
        if self.on_terminal:
            self.clear()
            self.stream.write(text)
            self.stream.flush()
            self.shown_width = len(text)
            return
        if self.done == self.total:
            return  # the scan is over: the summary (or the exit) says so
        now = self.clock()
        if (now - self.logged_at >= self.LOG_EVERY_S
                or self.done - self.logged_done >= self.total * self.LOG_EVERY_FRACTION):
            print(text, file=self.stream, flush=True)
            self.logged_done, self.logged_at = self.done, now

    def clear(self) -> None:
        """Blank the terminal line, before a result or a message takes its place."""
        if self.shown_width:
            self.stream.write("\r" + " " * self.shown_width + "\r")
            self.stream.flush()
            self.shown_width = 0


async def _ask_unit(link: ModbusLink, args: argparse.Namespace, unit: int) -> dict[str, Any] | None:
    """What `unit` answers to one small read; None when no slave is there. A LinkError passes through."""
    try:
        words = await _request(link, args, args.kind, args.address, count=1, unit=unit)
    except LinkError:
        raise
    except DeviceError as err:
        if not err.reason.startswith("exception:") or err.reason in ("exception:0a", "exception:0b"):
            return None
        # An exception answer still proves a slave lives at this address.
        return {"unit": unit, "answer": err.reason, "value": None}
    return {"unit": unit, "answer": "value", "value": int(words[0])}


async def _scan(args: argparse.Namespace) -> int:
    link = _link(args)
    progress = ScanProgress(len(args.units), sys.stderr)
    found = 0
    try:
        for unit in args.units:
            try:
                answer = await _ask_unit(link, args, unit)
            except LinkError as err:
                progress.clear()
                _print({"error": "link", "detail": str(err)} if args.json else f"link failed: {err}", args.json)
                return EXIT_FAILED
            if answer is not None:
                found += 1
                text = f"unit {unit:>3}: answers" + (
                    f" ({args.kind} {args.address} = {answer['value']})" if answer["value"] is not None
                    else f" with {answer['answer']}")
                progress.clear()  # stdout and stderr often share the terminal
                _print(answer if args.json else text, args.json)
            progress.unit_done(found)
    finally:
        progress.clear()
        link.close()
    if not args.json:
        print(f"{found} slave(s) answered", file=sys.stderr)
    return EXIT_OK if found else EXIT_FAILED


def run_scan(args: argparse.Namespace) -> int:
    return asyncio.run(_scan(args))


# ---- agent probe serial


async def _probe_serial(args: argparse.Namespace) -> int:
    profile: SerialProfile | None = None
    if args.profile:
        loaded = load_profile(args.profile, [Path(d) for d in args.profile_dir])
        if not isinstance(loaded, SerialProfile):
            print(f"profile {args.profile!r} is not a serial_ascii profile", file=sys.stderr)
            return EXIT_USAGE
        profile = loaded
    delimiter = args.delimiter.encode().decode("unicode_escape")  # typed as '\\r\\n' on a shell
    framer = Framer(profile.framing if profile else Framing(delimiter=delimiter))
    parser = frame_parser(profile.parser, profile.fields, profile.pattern) if profile else None
    try:
        port = open_serial(SerialLink(port=args.serial, baudrate=args.baud, parity=args.parity,
                                      stopbits=args.stopbits))
    except LinkError as err:
        print(err, file=sys.stderr)
        return EXIT_FAILED
    loop = asyncio.get_running_loop()
    frames = 0
    # Set when stdout's reader went away: the event loop would only log an exception raised in a callback.
    reader_gone = asyncio.Event()

    def readable() -> None:
        try:
            show_frames()
        except BrokenPipeError:
            loop.remove_reader(port.fileno())
            reader_gone.set()

    def show_frames() -> None:
        nonlocal frames
        for frame in framer.feed(port.read(4096)):
            frames += 1
            row: dict[str, Any] = {"ts": int(time.time() * 1000), "frame": frame.decode("ascii", "replace")}
            if parser is not None:
                before = dict(parser.counters)
                values = parser.parse(frame)
                row["values"] = {k: v.value for k, v in values.items()}
                row["bad"] = {k: v.reason for k, v in values.items() if v.reason}
                row["skipped"] = [k for k, n in parser.counters.items() if n != before.get(k, 0)
                                  and k not in ("parsed", "partial")]
            _print(row if args.json else "  ".join(f"{k}={v}" for k, v in row.items()), args.json)

    loop.add_reader(port.fileno(), readable)
    try:
        # --send arrives as typed ('0R0\\r\\n'); a profile's poll is already unescaped by TOML.
        command = (args.send.encode().decode("unicode_escape") if args.send is not None
                   else profile.poll if profile else None)
        deadline = loop.time() + args.duration
        while loop.time() < deadline and not reader_gone.is_set():
            if command:
                port.write(command.encode("latin-1"))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(args.every, max(0.0, deadline - loop.time()))):
                    await reader_gone.wait()
    finally:
        loop.remove_reader(port.fileno())
        port.close()
    if reader_gone.is_set():
        raise BrokenPipeError
    counters = framer.counters + parser.counters if parser else framer.counters
    print(f"{frames} frame(s); " + ", ".join(f"{k}={v}" for k, v in sorted(counters.items())), file=sys.stderr)
    return EXIT_OK if frames else EXIT_FAILED


def run_probe_serial(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(_probe_serial(args))
    except ConfigError as err:
        print(err, file=sys.stderr)
        return EXIT_USAGE


# ---- argument parsers


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
    test.set_defaults(func=_quiet_on_broken_pipe(run_test))

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
    modbus.set_defaults(func=_quiet_on_broken_pipe(run_probe_modbus))

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
    serial_probe.set_defaults(func=_quiet_on_broken_pipe(run_probe_serial))

    scan = agent_subparsers.add_parser("scan", help="find the slaves that answer on a line")
    scan_kinds = scan.add_subparsers(dest="scan_kind", required=True)
    scan_modbus = scan_kinds.add_parser("modbus", help="try each unit id with one small read")
    _link_args(scan_modbus)
    scan_modbus.set_defaults(timeout=0.2)
    scan_modbus.add_argument("--units", type=_unit_range, default=_unit_range("1-247"), help="e.g. 1-247")
    scan_modbus.add_argument("--kind", choices=list(get_args(Kind)), default="holding")
    scan_modbus.add_argument("--address", type=_int_in(0, 65535, "address"), default=0,
                             help="register each unit is asked for (default 0)")
    scan_modbus.set_defaults(func=_quiet_on_broken_pipe(run_scan))
