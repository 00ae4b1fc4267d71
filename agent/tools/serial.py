"""`roadpulse agent probe serial`: frames as they arrive, and what a profile makes of them."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from pathlib import Path
from typing import Any

from agent.codec.frames import FieldValue, Framer, frame_parser
from agent.sources.base import LinkError
from agent.sources.links import SerialLink
from agent.sources.serial_ascii.source import open_serial
from agent.tools.output import EXIT_FAILED, EXIT_OK, EXIT_USAGE, emit
from roadpulse.configfile import ConfigError
from roadpulse.profiles import Framing, SerialProfile, load_profile


def field_units(profile: SerialProfile, values: dict[str, FieldValue]) -> dict[str, dict[str, str | None]]:
    """Per field in this frame: the unit the device sent, and the unit (and letter) the profile expects."""
    out: dict[str, dict[str, str | None]] = {}
    for fld in profile.fields:
        if fld.name not in values:
            continue
        expected = fld.unit or None
        if fld.device_unit is not None:
            expected = f"{fld.unit} ({fld.device_unit})" if fld.unit else fld.device_unit
        out[fld.name] = {"sent": values[fld.name].device_unit, "expected": expected}
    return out


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
                row["units"] = field_units(profile, values) if profile else {}
                row["skipped"] = [k for k, n in parser.counters.items() if n != before.get(k, 0)
                                  and k not in ("parsed", "partial")]
            if not args.json and "units" in row:
                row["units"] = "; ".join(f"{k} sent {u['sent'] or '-'} expects {u['expected'] or '-'}"
                                         for k, u in row["units"].items())
            emit(row if args.json else "  ".join(f"{k}={v}" for k, v in row.items()), args.json)

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
