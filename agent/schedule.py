"""Per-device poll loops. (Placeholder signature; the drivers work fills this in.)"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from agent.catalog import DeviceEntry
from agent.sources.base import DeviceError, Source
from roadpulse.wire import Quality, Reading

Emit = Callable[[list[Reading]], Awaitable[None]]


@dataclass(slots=True)
class DeviceStats:
    polls: int = 0
    errors: int = 0
    overruns: int = 0
    readings: int = 0


async def poll_forever(
    entry: DeviceEntry, source: Source, emit: Emit, *, bus_lock: asyncio.Lock | None, stats: DeviceStats
) -> None:
    interval = entry.device.interval_s
    while True:
        started = time.monotonic()
        ts = int(time.time() * 1000)
        try:
            found = await source.read()
            readings = [Reading(entry.aliases[r.name], r.ts_ms, r.value, r.quality, r.reason) for r in found]
        except DeviceError as err:
            stats.errors += 1
            readings = [Reading(a, ts, None, Quality.BAD, err.reason) for a in entry.aliases.values()]
        stats.polls += 1
        stats.readings += len(readings)
        await emit(readings)
        await asyncio.sleep(max(0.0, interval - (time.monotonic() - started)))
