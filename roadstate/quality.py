"""Detector data screening before any algorithm sees a bin. Pure.

The same screening feeds every algorithm, so the comparison is between detectors,
not between data cleaners. Rules, after MnDOT IRIS's detector fault rules and the
q = k·v identity a single-loop station's three values must satisfy:

- a lane whose flow exceeds what a lane can carry (3,000 veh/h) is a spike;
- a lane whose volume, occupancy and speed disagree (flow / speed vs occupancy / L_eff
  off by more than a factor of 2.5, with enough vehicles to judge) is a spike;
- a station whose every lane repeats its bin exactly five times in a row while vehicles
  pass is stuck (IRIS's "no change" rule, shortened from 24 h to 3 minutes: steady
  traffic repeats a bin by chance now and then, five times running almost never).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from roadstate.state import LaneBin

MAX_LANE_FLOW = 3000.0  # veh/h/lane
MISMATCH = 2.5
STUCK_REPEATS = 5


def lane_plausible(lane: LaneBin, interval_s: float, effective_length_m: float) -> bool:
    if lane.volume is None or lane.occupancy_pct is None:
        return False
    if lane.volume < 0 or not 0 <= lane.occupancy_pct <= 100:
        return False
    flow = lane.volume * 3600 / interval_s
    if flow > MAX_LANE_FLOW:
        return False
    if lane.speed_kmh and lane.volume >= 3:
        from_speed = flow / lane.speed_kmh  # veh/km
        from_occupancy = lane.occupancy_pct / 100 / effective_length_m * 1000
        low, high = sorted((from_speed, from_occupancy))
        if low <= 0 or high / low > MISMATCH:
            return False
    return True


@dataclass
class StuckWatch:
    """Remembers each station's last bin; JSON-able for the service's checkpoint."""

    last: dict[str, list[list[float | None]]] = field(default_factory=dict)
    repeats: dict[str, int] = field(default_factory=dict)

    def stuck(self, station: str, lanes: Sequence[LaneBin]) -> bool:
        image = [[lane.volume, lane.occupancy_pct, lane.speed_kmh] for lane in lanes]
        moving = any((lane.volume or 0) > 0 for lane in lanes)
        if moving and image == self.last.get(station):
            self.repeats[station] = self.repeats.get(station, 0) + 1
        else:
            self.repeats[station] = 0
        self.last[station] = image
        return self.repeats[station] >= STUCK_REPEATS


def screen(lanes: Sequence[LaneBin], interval_s: float, effective_length_m: float) -> list[LaneBin]:
    """The plausible lanes of one bin."""
    return [lane for lane in lanes if lane_plausible(lane, interval_s, effective_length_m)]
