"""Sealing readings into batches: limits on count, bytes and age. Pure, no I/O.

A batch is homogeneous in its time flags and clock epoch, because the wire carries one
`tf` per message and a later clock correction applies to a whole epoch.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field

from roadpulse.wire import Quality, Reading, TimeFlag

_F32 = struct.Struct(">f")
# Envelope keys and header values (v, t, gw, boot, seq, ts, bt, tf, rp): an upper bound.
ENVELOPE_OVERHEAD = 128


def int_size(value: int) -> int:
    """Bytes msgpack needs for an int."""
    if -32 <= value <= 127:
        return 1
    if 0 <= value <= 0xFF or -0x80 <= value < 0:
        return 2
    if 0 <= value <= 0xFFFF or -0x8000 <= value < 0:
        return 3
    if 0 <= value <= 0xFFFF_FFFF or -0x8000_0000 <= value < 0:
        return 5
    return 9


def value_size(value: object) -> int:
    if value is None or isinstance(value, bool):
        return 1
    if isinstance(value, int):
        return int_size(value)
    if isinstance(value, float):
        if math.isfinite(value):
            try:
                if _F32.unpack(_F32.pack(value))[0] == value:
                    return 5
            except OverflowError:
                return 9
        return 9
    if isinstance(value, str):
        n = len(value.encode())
        return n + (1 if n < 32 else 2 if n < 256 else 3 if n < 65536 else 5)
    return 9


def reading_size(reading: Reading, previous_ts: int) -> int:
    """Bytes one reading adds to a data envelope (flat triple plus its quality entry, if any)."""
    size = int_size(reading.alias) + int_size(reading.ts_ms - previous_ts) + value_size(reading.value)
    if reading.quality != Quality.GOOD:
        size += 4 + value_size(reading.reason) + 3
    return size


@dataclass(frozen=True, slots=True)
class Sealed:
    readings: list[Reading]
    flags: TimeFlag
    epoch: int


@dataclass(slots=True)
class Batcher:
    max_readings: int
    max_bytes: int
    max_age_s: float
    _readings: list[Reading] = field(default_factory=list)
    _bytes: int = 0
    _previous_ts: int = 0
    _opened_at: float = 0.0
    _key: tuple[TimeFlag, int] = (TimeFlag.NONE, 0)

    @property
    def open_count(self) -> int:
        return len(self._readings)

    def deadline(self) -> float | None:
        """Monotonic time when the open batch must be sealed, or None when nothing is open."""
        return self._opened_at + self.max_age_s if self._readings else None

    def add(self, readings: list[Reading], flags: TimeFlag, epoch: int, now: float) -> list[Sealed]:
        """Add readings taken at `now` (monotonic); return the batches this sealed."""
        sealed: list[Sealed] = []
        if self._readings and (flags, epoch) != self._key:
            sealed.append(self._seal())
        for reading in readings:
            if not self._readings:
                self._opened_at = now
                self._key = (flags, epoch)
                self._previous_ts = reading.ts_ms
                self._bytes = ENVELOPE_OVERHEAD
            size = reading_size(reading, self._previous_ts)
            if self._bytes + size > self.max_bytes and self._readings:
                sealed.append(self._seal())
                self._opened_at = now
                self._key = (flags, epoch)
                self._previous_ts = reading.ts_ms
                self._bytes = ENVELOPE_OVERHEAD
                size = reading_size(reading, self._previous_ts)
            self._readings.append(reading)
            self._bytes += size
            self._previous_ts = reading.ts_ms
            if len(self._readings) >= self.max_readings:
                sealed.append(self._seal())
        if self._readings and now - self._opened_at >= self.max_age_s:
            sealed.append(self._seal())
        return sealed

    def seal_due(self, now: float) -> Sealed | None:
        if self._readings and now - self._opened_at >= self.max_age_s:
            return self._seal()
        return None

    def seal(self) -> Sealed | None:
        return self._seal() if self._readings else None

    def _seal(self) -> Sealed:
        batch = Sealed(self._readings, self._key[0], self._key[1])
        self._readings = []
        self._bytes = 0
        return batch
