"""Wall-clock trust on a gateway without an RTC: classify, detect jumps, correct what is still held.

A Pi boots with the last saved time (fake-hwclock) or 1970, and NTP steps the clock
later, possibly hours later on a dead 4G link. Readings are stamped with the wall
clock as it is; this module says how far to trust it (see docs/time.md):

- the clock is *unsynced* while wall time is before the build date, or (with the
  kernel check) while the kernel reports its NTP state unsynchronised;
- a *jump* is a change of more than a threshold in (wall - monotonic) between two
  observations: the clock was stepped. Readings stamped before the jump and still
  held by the agent are shifted by the jump and flagged `corrected`;
- a reading before the build date or far ahead of the clock is `suspect`: kept for
  the record, flagged, never silently stored as good time.

Everything but `kernel_clock_synchronised` is pure, for table tests.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import dataclasses
import functools
from dataclasses import dataclass, field

from roadpulse.wire import DataBatch, Reading, TimeFlag

# 2026-11-01T00:00:00Z. No reading of this build can be older; bump it at each release.
BUILD_DATE_MS = 1_793_491_200_000
_TIME_ERROR = 5


@dataclass(frozen=True, slots=True)
class Jump:
    """The wall clock was stepped by `delta_ms` between two observations."""

    delta_ms: int
    old_epoch: int
    new_epoch: int


@dataclass(slots=True)
class ClockJudge:
    """Tracks clock epochs (periods between steps) and what each needs added to be right."""

    build_ms: int = BUILD_DATE_MS
    jump_threshold_ms: int = 1000
    future_tolerance_ms: int = 3600 * 1000
    epoch: int = 0
    unsynced: bool = False
    jumps: int = 0
    _offset: int | None = None
    # epoch -> ms to add to its timestamps, known once a later step showed how wrong it was.
    _corrections: dict[int, int] = field(default_factory=dict)

    def observe(self, wall_ms: int, mono_ms: int, kernel_synced: bool | None = None) -> Jump | None:
        offset = wall_ms - mono_ms
        jump = None
        if self._offset is not None and abs(offset - self._offset) > self.jump_threshold_ms:
            delta = offset - self._offset
            # Steps compose: an epoch two steps back needs both.
            for old in self._corrections:
                self._corrections[old] += delta
            self._corrections[self.epoch] = delta
            jump = Jump(delta, self.epoch, self.epoch + 1)
            self.epoch += 1
            self.jumps += 1
        self._offset = offset
        self.unsynced = wall_ms < self.build_ms or kernel_synced is False
        return jump

    def flags_for(self, ts_ms: int, now_ms: int) -> TimeFlag:
        flags = TimeFlag.UNSYNCED if self.unsynced else TimeFlag.NONE
        if self.implausible(ts_ms, now_ms):
            flags |= TimeFlag.SUSPECT
        return flags

    def implausible(self, ts_ms: int, now_ms: int) -> bool:
        return ts_ms < self.build_ms or ts_ms > max(now_ms, self.build_ms) + self.future_tolerance_ms

    def correction(self, epoch: int) -> int | None:
        return self._corrections.get(epoch)


def split_at_jump(readings: list[Reading], jump: Jump, now_ms: int) -> tuple[list[Reading], list[Reading]]:
    """Readings stamped before a step seen at `now_ms` sit about `delta` away from the new clock."""
    before: list[Reading] = []
    after: list[Reading] = []
    for reading in readings:
        (before if abs(now_ms - reading.ts_ms) > abs(jump.delta_ms) / 2 else after).append(reading)
    return before, after


def corrected(batch: DataBatch, delta_ms: int, judge: ClockJudge, now_ms: int) -> DataBatch:
    """The batch with its timestamps shifted by a step measured later, flagged `corrected`."""
    readings = [dataclasses.replace(r, ts_ms=r.ts_ms + delta_ms) for r in batch.readings]
    flags = TimeFlag.CORRECTED
    if any(judge.implausible(r.ts_ms, now_ms) for r in readings):
        flags |= TimeFlag.SUSPECT
    return dataclasses.replace(batch, readings=readings, time_flags=flags)


@functools.cache
def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    except OSError:
        return None


def kernel_clock_synchronised() -> bool | None:
    """Whether the kernel's NTP state is synchronised (adjtimex), or None when it cannot be asked."""
    libc = _libc()
    if libc is None or not hasattr(libc, "adjtimex"):
        return None
    # A zeroed struct timex (modes = 0) only reads the state; 512 bytes covers every ABI.
    buf = ctypes.create_string_buffer(512)
    state = int(libc.adjtimex(buf))
    if state < 0:
        return None
    return state != _TIME_ERROR
