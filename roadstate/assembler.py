"""Readings into closed intervals of station bins, per road direction. Pure.

A detector station is a device whose birth declares `traffic` metrics with fields
`volume`, `occupancy`, `speed` (and `class_medium`/`class_long`) and the tags `road`,
`direction`, `kp` and `lane`. Readings are binned on a fixed grid by their own time;
within an interval the latest reading of each lane and field wins, so receiving a
message twice (a redelivery after a restart) changes nothing. An interval closes when
readings at least `lateness_s` past its end have arrived from the same road direction:
event time, not the wall clock, so a replay closes the same intervals in the same order.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from roadpulse.wire import Birth, DataBatch
from roadstate.state import LaneBin, parse_kp

FIELDS = frozenset({"volume", "occupancy", "speed", "class_medium", "class_long"})
Key = tuple[str, str]  # road, direction


@dataclass(frozen=True, slots=True)
class Place:
    road: str
    direction: str
    station: str  # gateway/device
    km: float
    lane: str
    field: str


@dataclass
class Counters:
    readings: int = 0
    late_readings: int = 0
    unplaced_metrics: int = 0
    non_numeric: int = 0


@dataclass
class Assembler:
    interval_s: float
    lateness_s: float
    measurement: str = "traffic"
    places: dict[str, dict[int, Place]] = field(default_factory=dict)  # gateway -> alias -> place
    stations: dict[Key, dict[str, float]] = field(default_factory=dict)
    # road direction -> interval index -> station -> lane -> field -> [ts_ms, value]
    bins: dict[Key, dict[int, dict[str, dict[str, dict[str, list[float]]]]]] = field(default_factory=dict)
    watermark_ms: dict[Key, int] = field(default_factory=dict)
    closed: dict[Key, int] = field(default_factory=dict)  # last closed interval index
    counters: Counters = field(default_factory=Counters)

    def on_birth(self, birth: Birth) -> list[str]:
        """Map the birth's detector metrics; returns the new stations (`road/direction/station`)."""
        mapping: dict[int, Place] = {}
        new: list[str] = []
        devices = {str(d.get("id", "")): d for d in birth.devices}
        for m in birth.metrics:
            if m.measurement != self.measurement or m.field not in FIELDS:
                continue
            tags = {**{k: str(v) for k, v in (devices.get(m.device, {}).get("tags") or {}).items()}, **m.tags}
            try:
                place = Place(tags["road"], tags["direction"], f"{birth.gateway}/{m.device}", parse_kp(tags["kp"]),
                              tags["lane"], m.field)
            except (KeyError, ValueError):
                self.counters.unplaced_metrics += 1
                continue
            mapping[m.alias] = place
            known = self.stations.setdefault((place.road, place.direction), {})
            if place.station not in known:
                known[place.station] = place.km
                new.append(f"{place.road}/{place.direction}/{place.station}")
        self.places[birth.gateway] = mapping
        return new

    def knows(self, gateway: str) -> bool:
        return gateway in self.places

    def add(self, batch: DataBatch) -> None:
        mapping = self.places.get(batch.gateway, {})
        step_ms = self.interval_s * 1000
        for r in batch.readings:
            place = mapping.get(r.alias)
            if place is None:
                continue
            if r.value is not None and (isinstance(r.value, bool) or not isinstance(r.value, int | float)):
                self.counters.non_numeric += 1
                continue
            key = (place.road, place.direction)
            index = math.floor(r.ts_ms / step_ms)
            if index <= self.closed.get(key, -1):
                self.counters.late_readings += 1
                continue
            self.counters.readings += 1
            lane = self.bins.setdefault(key, {}).setdefault(index, {}).setdefault(place.station, {}).setdefault(
                place.lane, {})
            name = place.field  # both truck classes are kept and summed when the bin closes
            previous = lane.get(name)
            value = float(r.value) if r.value is not None else math.nan
            if previous is None or r.ts_ms >= previous[0]:
                lane[name] = [float(r.ts_ms), value]
            self.watermark_ms[key] = max(self.watermark_ms.get(key, 0), r.ts_ms)

    def closable(self, key: Key) -> list[int]:
        limit = self.watermark_ms.get(key, 0) - self.lateness_s * 1000
        step_ms = self.interval_s * 1000
        return sorted(i for i in self.bins.get(key, {}) if (i + 1) * step_ms <= limit)

    def take(self, key: Key, index: int) -> tuple[int, dict[str, list[LaneBin] | None]]:
        """Close interval `index`: its start in ms and each known station's lanes (None: nothing came)."""
        raw = self.bins.get(key, {}).pop(index, {})
        self.closed[key] = max(self.closed.get(key, -1), index)
        out: dict[str, list[LaneBin] | None] = {}
        for station in self.stations.get(key, {}):
            lanes = raw.get(station)
            out[station] = [_lane(values) for _, values in sorted(lanes.items())] if lanes else None
        return round(index * self.interval_s * 1000), out

    def snapshot(self) -> dict[str, Any]:
        return {
            "places": {gw: {str(a): [p.road, p.direction, p.station, p.km, p.lane, p.field] for a, p in m.items()}
                       for gw, m in self.places.items()},
            "stations": [[k[0], k[1], v] for k, v in self.stations.items()],
            "bins": [[k[0], k[1], {str(i): b for i, b in v.items()}] for k, v in self.bins.items()],
            "watermark_ms": [[k[0], k[1], v] for k, v in self.watermark_ms.items()],
            "closed": [[k[0], k[1], v] for k, v in self.closed.items()],
            "counters": vars(self.counters),
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        self.places = {gw: {int(a): Place(p[0], p[1], p[2], float(p[3]), p[4], p[5]) for a, p in m.items()}
                       for gw, m in state.get("places", {}).items()}
        self.stations = {(r, d): dict(v) for r, d, v in state.get("stations", [])}
        self.bins = {(r, d): {int(i): b for i, b in v.items()} for r, d, v in state.get("bins", [])}
        self.watermark_ms = {(r, d): int(v) for r, d, v in state.get("watermark_ms", [])}
        self.closed = {(r, d): int(v) for r, d, v in state.get("closed", [])}
        self.counters = Counters(**state.get("counters", {}))


def _lane(values: Mapping[str, list[float]]) -> LaneBin:
    def get(name: str) -> float | None:
        v = values.get(name)
        return None if v is None or math.isnan(v[1]) else v[1]

    classes = [get("class_medium"), get("class_long")]
    trucks = sum(c for c in classes if c is not None) if any(c is not None for c in classes) else None
    return LaneBin(get("volume"), get("occupancy"), get("speed"), trucks)
