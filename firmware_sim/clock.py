"""Simulated time: the scenario's start plus wall time elapsed, times the acceleration."""

from __future__ import annotations

import time


class SimClock:
    """Seconds of simulated time since the scenario start; `wall()` is Unix time for the truth file."""

    def __init__(self, time_scale: float) -> None:
        self.time_scale = time_scale
        self._origin = time.monotonic()

    def now(self) -> float:
        return (time.monotonic() - self._origin) * self.time_scale

    def wall_delay(self, sim_seconds: float) -> float:
        """Wall seconds until `sim_seconds` of simulated time have passed."""
        return sim_seconds / self.time_scale

    @staticmethod
    def wall() -> float:
        return time.time()


class ManualClock(SimClock):
    """A clock tests move by hand: faults and intervals happen exactly when the test says."""

    def __init__(self, time_scale: float = 1.0, t: float = 0.0) -> None:
        super().__init__(time_scale)
        self.t = t

    def now(self) -> float:
        return self.t

    def set(self, t: float) -> None:
        self.t = t
