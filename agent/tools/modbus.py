"""`roadpulse agent probe modbus` and `agent scan modbus`: registers and slaves by hand, without a config."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from agent.codec.planning import Kind
from agent.codec.registers import BYTE_TYPES, DecodeError, decode, plausible_decodings, register_count
from agent.sources.base import DeviceError, LinkError
from agent.sources.modbus.link import ModbusLink
from agent.sources.modbus.source import read_with_retries
from agent.tools.output import EXIT_FAILED, EXIT_OK, EXIT_USAGE, emit, json_value


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
    return decode(words[:width], args.type, args.order, bit=args.bit, byte=args.byte)


async def _probe(args: argparse.Namespace) -> int:
    link = _link(args)
    kind: Kind = args.kind
    count = args.count
    if count is None:
        count = register_count(args.type) if args.type and args.type != "string" else 1
    try:
        words = await _request(link, args, kind, args.address, count=count, unit=args.unit)
    except DeviceError as err:
        emit({"error": err.reason, "detail": str(err)} if args.json else f"no answer: {err}", args.json)
        return EXIT_FAILED
    finally:
        link.close()
    if kind in ("coil", "discrete"):
        bits = [bool(b) for b in words]
        if args.json:
            emit({"value": bits[0]} if args.type else {"bits": bits}, True)
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
        emit(json_value(value) if args.json else value, args.json)
        return EXIT_OK
    rows = plausible_decodings(registers)
    if args.json:
        emit({"registers": registers,
              "decodings": [{"type": t, **({"byte": o} if t in BYTE_TYPES else {"order": o}), **json_value(v)}
                            for t, o, v in rows]}, True)
        return EXIT_OK
    print(f"{'kind':<8} {'addr':>5}  {'uint':>5}  {'hex':<6}  {'int':>6}  bits")
    for i, reg in enumerate(registers):
        print(f"{kind:<8} {args.address + i:>5}  {reg:>5}  0x{reg:04X}  {reg - 65536 if reg > 32767 else reg:>6}  "
              f"{reg:016b}")
    print(f"\n{'type':<8} {'order':<9} value   (pass --type and --order, or --byte for int8/uint8, to read one)")
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
    if args.type in BYTE_TYPES and args.byte is None:
        print(f"--type {args.type} needs --byte high or --byte low", file=sys.stderr)
        return EXIT_USAGE
    return asyncio.run(_probe(args))


def unit_range(text: str) -> list[int]:
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
                emit({"error": "link", "detail": str(err)} if args.json else f"link failed: {err}", args.json)
                return EXIT_FAILED
            if answer is not None:
                found += 1
                text = f"unit {unit:>3}: answers" + (
                    f" ({args.kind} {args.address} = {answer['value']})" if answer["value"] is not None
                    else f" with {answer['answer']}")
                progress.clear()  # stdout and stderr often share the terminal
                emit(answer if args.json else text, args.json)
            progress.unit_done(found)
    finally:
        progress.clear()
        link.close()
    if not args.json:
        print(f"{found} slave(s) answered", file=sys.stderr)
    return EXIT_OK if found else EXIT_FAILED


def run_scan(args: argparse.Namespace) -> int:
    return asyncio.run(_scan(args))
