"""`roadpulse agent test`: poll every configured device once, with the agent's own drivers."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from agent.catalog import DeviceEntry, build_catalog
from agent.config import AgentConfig, load_agent_config
from agent.sources import open_sources
from agent.sources.base import DeviceError, SourceReading
from agent.tools.output import EXIT_FAILED, EXIT_OK, EXIT_USAGE, emit, json_value
from roadpulse.configfile import ConfigError
from roadpulse.wire import Quality


def _units(entry: DeviceEntry) -> dict[str, str]:
    return {p.name: p.unit for p in entry.profile.points}


async def _test_all(entries: list[DeviceEntry], config: AgentConfig) -> list[
    tuple[DeviceEntry, list[SourceReading], DeviceError | None]
]:
    sources = open_sources(entries, config)

    async def one(entry: DeviceEntry) -> tuple[DeviceEntry, list[SourceReading], DeviceError | None]:
        try:
            return entry, await sources.by_device[entry.device.id].read(), None
        except DeviceError as err:
            return entry, [], err

    try:
        async with asyncio.TaskGroup() as tg:
            tasks = [tg.create_task(one(e), name=f"test[{e.device.id}]") for e in entries]
    finally:
        await sources.close()
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
    results = asyncio.run(_test_all(entries, config))
    failed = 0
    for entry, readings, error in results:
        units = _units(entry)
        if error is not None:
            failed += 1
            row = {"device": entry.device.id, "name": None, "value": None, "unit": "",
                   "quality": "bad", "reason": error.reason, "error": str(error), "ts": int(time.time() * 1000)}
            emit(row if args.json else f"{entry.device.id:<16} FAILED  {error}", args.json)
            continue
        for r in readings:
            quality = r.quality.name.lower()
            stamp = datetime.fromtimestamp(r.ts_ms / 1000, UTC).isoformat(timespec="milliseconds")
            if args.json:
                reading = {"device": entry.device.id, "name": r.name, "value": r.value,
                           "unit": units.get(r.name, ""), "quality": quality, "reason": r.reason, "ts": r.ts_ms,
                           "time": stamp}
                # The codecs report NaN as bad `invalid`; should a good one ever come, the row still says why.
                emit(reading | json_value(r.value) if r.quality == Quality.GOOD else reading, True)
            else:
                # float32 registers widen to float64 digits that nobody wrote: show 7 significant.
                shown = "-" if r.value is None else f"{r.value:.7g}" if isinstance(r.value, float) else r.value
                state = quality if not r.reason else f"{quality}({r.reason})"
                print(f"{entry.device.id:<16} {r.name:<20} {shown!s:>16} {units.get(r.name, ''):<6} "
                      f"{state:<14} {stamp}")
    return EXIT_FAILED if failed else EXIT_OK
