"""Per-device poll loops: when to poll, what to send, and when to say a device is gone.

The timing and filtering rules are pure classes (PollClock, ReportFilter) with
table tests; `poll_forever` is the thin loop the agent runner starts once per
device inside its TaskGroup.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from agent.catalog import DeviceEntry
from agent.sources.base import CountingSource, DeviceError, Source, SourceReading
from roadpulse.wire import Quality, Reading

log = logging.getLogger(__name__)

Emit = Callable[[list[Reading]], Awaitable[None]]


@dataclass(slots=True)
class DeviceStats:
    polls: int = 0
    errors: int = 0
    # Poll slots skipped because the previous poll was still running (never queued).
    overruns: int = 0
    readings: int = 0
    # Readings held back by report-by-exception.
    suppressed: int = 0
    last_error: str = ""
    # What the driver saw on the link since start, by the stable names of
    # agent.sources.DRIVERS[driver].counters (timeouts, garbled answers, bad frames...).
    # Every name is present (0) from the first poll on; values only grow.
    driver_counters: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class PollClock:
    """The poll slots of one device.

    Aligned devices poll on wall-clock multiples of the interval (a 30 s detector
    on :00 and :30); others every interval from their first poll. Jitter delays a
    poll by up to `jitter` seconds without moving the grid, so it never drifts. A
    slot that passed while the previous poll ran is skipped and counted.
    """

    interval: float
    align: bool = False
    jitter: float = 0.0
    rng: random.Random = field(default_factory=random.Random)
    _slot: float | None = None

    def first(self, now: float) -> float:
        if self.align:
            self._slot = (math.floor(now / self.interval) + 1) * self.interval
        else:
            self._slot = now
        return self._due()

    def after(self, now: float) -> tuple[float, int]:
        """The next due time once a poll ended at `now`, and how many slots were skipped."""
        if self._slot is None:
            return self.first(now), 0
        slot = self._slot + self.interval
        missed = 0
        if slot <= now:
            missed = math.floor((now - slot) / self.interval) + 1
            slot += missed * self.interval
        elif self.align and slot - now > self.interval:
            # The wall clock went back (NTP step): re-align instead of sleeping through the gap.
            slot = (math.floor(now / self.interval) + 1) * self.interval
        self._slot = slot
        return self._due(), missed

    def _due(self) -> float:
        assert self._slot is not None, "a slot is set before a due time is asked"
        return self._slot + (self.rng.uniform(0, self.jitter) if self.jitter else 0.0)


@dataclass(slots=True)
class ReportFilter:
    """Report by exception for one point.

    A good numeric value within `deadband` of the last *sent* one is held back
    (comparing with the last sent value stops slow drift from hiding), unless
    `max_silence_s` has passed since the last send. Quality changes, text and
    booleans that change, and the first value are always sent.
    """

    deadband: float | None = None
    max_silence_s: float | None = None
    _sent: SourceReading | None = None

    def should_send(self, reading: SourceReading) -> bool:
        if self.deadband is None or not self._pass(reading):
            self._sent = reading
            return True
        return False

    def _pass(self, reading: SourceReading) -> bool:
        """True when the reading may be held back."""
        last = self._sent
        if last is None or (last.quality, last.reason) != (reading.quality, reading.reason):
            return False
        if self.max_silence_s is not None and reading.ts_ms - last.ts_ms >= self.max_silence_s * 1000:
            return False
        value, before = reading.value, last.value
        numeric = (int, float)
        if isinstance(value, numeric) and isinstance(before, numeric) and not isinstance(value, bool):
            assert self.deadband is not None, "checked by should_send"
            return abs(value - before) <= self.deadband
        return value == before


def report_filters(entry: DeviceEntry) -> dict[str, ReportFilter]:
    return {p.name: ReportFilter(p.deadband, p.max_silence_s) for p in entry.profile.points}


def bad_readings(entry: DeviceEntry, ts_ms: int, reason: str) -> list[SourceReading]:
    return [SourceReading(name, None, ts_ms, Quality.BAD, reason) for name in entry.aliases]


async def poll_once(entry: DeviceEntry, source: Source) -> tuple[list[SourceReading], DeviceError | None]:
    """One poll: every point's reading, bad with the device's reason when it could not be read."""
    try:
        return await source.read(), None
    except DeviceError as err:
        return bad_readings(entry, int(time.time() * 1000), err.reason), err


async def poll_forever(
    entry: DeviceEntry,
    source: Source,
    emit: Emit,
    *,
    stats: DeviceStats,
    rng: random.Random | None = None,
) -> None:
    """Poll one device until cancelled. Does not close `source`: its owner does.

    A source on a shared line takes the line per request (agent.sources.modbus.bus), not per poll.
    """
    device = entry.device
    wall = device.align
    clock_now: Callable[[], float] = time.time if wall else time.monotonic
    clock = PollClock(device.interval_s, device.align, device.jitter_s, rng or random.Random())
    filters = report_filters(entry)
    counting = source if isinstance(source, CountingSource) else None
    if counting is not None:
        stats.driver_counters = counting.driver_counters()
    failing = False
    due = clock.first(clock_now())
    while True:
        await asyncio.sleep(max(0.0, due - clock_now()))
        found, error = await poll_once(entry, source)
        if counting is not None:
            stats.driver_counters = counting.driver_counters()
        stats.polls += 1
        if error is not None:
            stats.errors += 1
            stats.last_error = str(error)
            if not failing:
                failing = True
                log.warning("device unreachable", extra={"device": device.id, "reason": error.reason,
                                                         "detail": str(error), "event": "device_down"})
        elif failing:
            failing = False
            log.info("device back", extra={"device": device.id, "event": "device_up"})
        readings = []
        for r in found:
            if r.name not in entry.aliases:
                continue
            if not filters[r.name].should_send(r):
                stats.suppressed += 1
                continue
            readings.append(Reading(entry.aliases[r.name], r.ts_ms, r.value, r.quality, r.reason))
        stats.readings += len(readings)
        if readings:
            await emit(readings)
        due, missed = clock.after(clock_now())
        stats.overruns += missed
