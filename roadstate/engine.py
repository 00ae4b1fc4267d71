"""One road direction's state machine: closed intervals of station bins in, segment states and incidents out. Pure.

The bench feeds it from the simulator and the service from MQTT; both get the same
answers for the same bins. Everything it remembers (detector histories, open
incidents, the stuck-detector memory) is JSON-able, so the service can checkpoint it
and a restart continues exactly where the last checkpoint left off.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from roadstate.detectors import SND, California8, Detector, McMaster, PairInput
from roadstate.flowbalance import FlowBalance
from roadstate.quality import StuckWatch, screen
from roadstate.state import (
    NO_DATA,
    LaneBin,
    Segment,
    SegmentState,
    StationInterval,
    aggregate_station,
    format_kp,
    front_density,
    segment_state,
    stored_vehicles,
)

ALGORITHMS: dict[str, Callable[[], Detector]] = {
    "roadpulse": FlowBalance,
    "california8": California8,
    "mcmaster": McMaster,
    "snd": SND,
}

TRUCK_EWMA = 0.03
STORED_BINS = 20  # 10 minutes of count differences between two free-flowing stations


@dataclass(frozen=True, slots=True)
class RoadParams:
    free_flow_kmh: float = 90.0
    capacity: float = 2100.0  # veh/h/lane
    effective_length_m: float = 6.0
    interval_s: float = 30.0


@dataclass(frozen=True, slots=True)
class SegmentRow:
    segment: Segment
    t_ms: int
    state: SegmentState


@dataclass(frozen=True, slots=True)
class IncidentEvent:
    """An incident as first declared (end_ms None) or as cleared; the same key both times."""

    segment: Segment
    algorithm: str
    start_ms: int
    end_ms: int | None
    km: float
    confidence: float

    @property
    def id(self) -> str:
        s = self.segment
        return f"{s.road}/{s.direction}/{s.name}/{self.algorithm}/{self.start_ms}"

    @property
    def kp(self) -> str:
        return format_kp(self.km)


@dataclass
class Output:
    segments: list[SegmentRow] = field(default_factory=list)
    incidents: list[IncidentEvent] = field(default_factory=list)


class RoadEngine:
    """Segments of one road direction and every configured detector on each."""

    def __init__(self, segments: Sequence[Segment], params: RoadParams, algorithms: Sequence[str], *,
                 stations: Mapping[str, float] | None = None) -> None:
        unknown = sorted(set(algorithms) - set(ALGORITHMS))
        if unknown:
            raise ValueError(f"unknown algorithms {unknown}; known: {sorted(ALGORITHMS)}")
        self.segments = list(segments)
        self.stations = dict(stations or {})
        self.params = params
        self.algorithms = list(algorithms)
        self.detectors: dict[tuple[str, str], Detector] = {
            (s.name, a): ALGORITHMS[a]() for s in self.segments for a in self.algorithms
        }
        self.open: dict[tuple[str, str], IncidentEvent] = {}
        self.stuck = StuckWatch()
        self.fronts: dict[str, float] = {}
        self.regimes: dict[str, tuple[bool, bool]] = {}
        self.stored: dict[str, list[float]] = {}
        self.trucks: dict[str, float] = {}

    def station_interval(self, station: str, lanes: Sequence[LaneBin] | None) -> StationInterval:
        p = self.params
        if not lanes:
            return NO_DATA
        if self.stuck.stuck(station, lanes):
            return NO_DATA
        good = screen(lanes, p.interval_s, p.effective_length_m)
        if len(good) * 2 < len(lanes):
            return NO_DATA  # fewer than half the lanes plausible: the station's figures mean little
        return aggregate_station(good, p.interval_s, effective_length_m=p.effective_length_m,
                                 free_flow_kmh=p.free_flow_kmh)

    def _smooth_trucks(self, station: str, x: StationInterval) -> StationInterval:
        """Truck share changes over hours, a 30-s count of trucks by chance: an EWMA of ~15 minutes."""
        if not x.valid:
            return x
        previous = self.trucks.get(station)
        share = x.truck_share if previous is None else previous + TRUCK_EWMA * (x.truck_share - previous)
        self.trucks[station] = share
        return replace(x, truck_share=share)

    def step(self, t_ms: int, stations: Mapping[str, Sequence[LaneBin] | None]) -> Output:
        """One closed interval starting at t_ms; `stations` maps station id to its lanes (None: no data)."""
        p = self.params
        out = Output()
        ids = {s.up for s in self.segments} | {s.down for s in self.segments}
        agg = {sid: self._smooth_trucks(sid, self.station_interval(sid, stations.get(sid))) for sid in sorted(ids)}
        for seg in self.segments:
            up, down = agg[seg.up], agg[seg.down]
            critical = p.capacity / p.free_flow_kmh
            both_free = up.valid and down.valid and up.density <= critical and down.density <= critical
            # Vehicles stored between two free-flowing stations (a queue growing behind an incident
            # between them); kept when a regime changes, since they say how long that queue is.
            window = self.stored.setdefault(seg.name, [])
            if both_free:
                if self.regimes.get(seg.name) != (False, False):
                    window.clear()
                window.append(up.flow - down.flow)
                del window[:-STORED_BINS]
            stored = stored_vehicles(window, p.interval_s)
            density, front = front_density(self.fronts.get(seg.name), up, down, interval_s=p.interval_s,
                                           length_km=seg.length_km, critical=critical,
                                           was=self.regimes.get(seg.name), stored=stored)
            if front is None:
                self.fronts.pop(seg.name, None)
            else:
                self.fronts[seg.name] = front
            if up.valid and down.valid:
                self.regimes[seg.name] = (up.density > critical, down.density > critical)
            state = segment_state(up, down, p.free_flow_kmh, density)
            if state is not None:
                out.segments.append(SegmentRow(seg, t_ms, state))
            x = PairInput(up, down, p.interval_s, seg.length_km, p.free_flow_kmh, p.capacity)
            for name in self.algorithms:
                key = (seg.name, name)
                verdict = self.detectors[key].step(x)
                current = self.open.get(key)
                if verdict.incident and current is None:
                    event = IncidentEvent(seg, name, t_ms, None, seg.to_km, verdict.confidence)
                    self.open[key] = event
                    out.incidents.append(event)
                elif not verdict.incident and current is not None:
                    del self.open[key]
                    out.incidents.append(IncidentEvent(seg, name, current.start_ms, t_ms, current.km,
                                                       current.confidence))
        return out

    def snapshot(self) -> dict[str, Any]:
        return {
            "detectors": {f"{k[0]}|{k[1]}": d.snapshot() for k, d in self.detectors.items()},
            "open": {f"{k[0]}|{k[1]}": [e.start_ms, e.km, e.confidence] for k, e in self.open.items()},
            "stuck": {"last": self.stuck.last, "repeats": self.stuck.repeats},
            "fronts": dict(self.fronts),
            "stored": {k: list(v) for k, v in self.stored.items()},
            "trucks": dict(self.trucks),
            "regimes": {k: list(v) for k, v in self.regimes.items()},
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        by_name = {s.name: s for s in self.segments}
        for key, snap in state.get("detectors", {}).items():
            seg, algo = key.split("|", 1)
            if (seg, algo) in self.detectors:
                self.detectors[(seg, algo)].restore(snap)
        self.open = {}
        for key, (start_ms, km, confidence) in state.get("open", {}).items():
            seg, algo = key.split("|", 1)
            if seg in by_name and algo in self.algorithms:
                self.open[(seg, algo)] = IncidentEvent(by_name[seg], algo, int(start_ms), None, float(km),
                                                       float(confidence))
        stuck = state.get("stuck", {})
        self.stuck = StuckWatch(dict(stuck.get("last", {})), dict(stuck.get("repeats", {})))
        self.fronts = {k: float(v) for k, v in state.get("fronts", {}).items()}
        self.stored = {k: [float(x) for x in v] for k, v in state.get("stored", {}).items()}
        self.trucks = {k: float(v) for k, v in state.get("trucks", {}).items()}
        self.regimes = {k: (bool(v[0]), bool(v[1])) for k, v in state.get("regimes", {}).items()}
