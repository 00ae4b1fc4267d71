"""A road section's detector bins at 30-s intervals, with ground truth, straight from the road model.

No buses, no sockets: the bench of road-state algorithms needs hundreds of
simulated hours in minutes, so this drives `RoadModel` and `bin_lanes` (the same
physics and lane split the Modbus devices serve) directly and applies detector
faults from the simulator's fault list at bin level. It also records the truth:
each incident (where, when, how hard) and each segment's space-time mean density
and speed per interval, from the model's cells rather than from the stations.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from firmware_sim import noise
from firmware_sim.detector import bin_lanes, lane_shares, truck_share
from firmware_sim.scenario import FAULT_KINDS, FaultKind, Road
from firmware_sim.traffic import RoadModel

# Protocol faults lose the poll: the agent has no bin for that interval.
_LOSES_BIN = frozenset({"timeout", "crc", "garbage", "partial", "exception", "link_flap"})


@dataclass(frozen=True, slots=True)
class LaneSample:
    volume: int
    occupancy_pct: float
    speed_kmh: float | None  # None: no vehicle passed (or the sensor sent its invalid sentinel)
    long: int  # vehicles of the long and medium length classes (trucks)


@dataclass(frozen=True, slots=True)
class StationSample:
    station: str
    km: float
    t: float  # Unix seconds, start of the interval
    lanes: tuple[LaneSample, ...] | None  # None: no data this interval (lost poll, reboot)


@dataclass(frozen=True, slots=True)
class Fault:
    station: str
    kind: FaultKind
    start_s: float
    end_s: float
    magnitude: float = 8.0


@dataclass(frozen=True, slots=True)
class SegmentTruth:
    from_km: float
    to_km: float
    t: float
    density_veh_km: float  # per lane, space-time mean
    speed_kmh: float  # space-mean: total flow / total density
    truck_share: float


@dataclass(frozen=True, slots=True)
class IncidentTruth:
    km: float
    start: float  # Unix s
    end: float
    capacity_fraction: float


@dataclass(slots=True)
class SectionRun:
    """Everything one section produced: bins per interval, the truth, and the scenario's facts."""

    name: str
    stations: list[tuple[str, float]]
    interval_s: float
    free_flow_kmh: float
    lanes: int
    weather: str
    intervals: list[list[StationSample]] = field(default_factory=list)  # [interval][station]
    segments: list[list[SegmentTruth]] = field(default_factory=list)  # [interval][segment]
    incidents: list[IncidentTruth] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)

    def write_truth(self, path: Path) -> None:
        """Incidents, faults and segment truth as one JSON document per section (one line each)."""
        doc = {
            "name": self.name,
            "stations": self.stations,
            "interval_s": self.interval_s,
            "free_flow_kmh": self.free_flow_kmh,
            "lanes": self.lanes,
            "weather": self.weather,
            "incidents": [asdict(i) for i in self.incidents],
            "faults": [asdict(f) for f in self.faults],
            "segments": [[[s.t, s.from_km, s.to_km, round(s.density_veh_km, 3), round(s.speed_kmh, 2)]
                          for s in row] for row in self.segments],
        }
        with path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(doc, ensure_ascii=False, separators=(",", ":")) + "\n")


def random_faults(seed: int, stations: list[str], hours: float, per_station_hour: float, *,
                  mean_s: float = 120.0, kinds: tuple[FaultKind, ...] = FAULT_KINDS) -> list[Fault]:
    """Fault windows drawn per station from a seed, as the simulator's [random_faults] draws them."""
    out: list[Fault] = []
    for station in stations:
        gen = noise.rng(seed, "section-faults", station)
        t = 0.0
        while per_station_hour > 0:
            t += gen.expovariate(per_station_hour / 3600)
            if t >= hours * 3600:
                break
            kind = gen.choice(kinds)
            duration = max(30.0, gen.expovariate(1 / mean_s))
            out.append(Fault(station, kind, t, t + duration, 8.0 if kind == "spike" else 1.0))
    return out


def simulate(
    name: str,
    road: Road,
    stations_km: list[float],
    *,
    seed: int,
    start: datetime,
    duration_s: float,
    interval_s: float = 30.0,
    faults: list[Fault] | None = None,
    weather: str = "dry",
) -> SectionRun:
    """Run the section and bin every station every interval; `start` carries the UTC offset."""
    offset = start.utcoffset() or timedelta(0)
    epoch0 = start.timestamp()
    model = RoadModel(road, seed, epoch0, offset)
    ids = [f"vds-k{km:04.1f}" for km in stations_km]
    cells = [model.detector(km) for km in stations_km]
    spans = [model.track_span(a, b) for a, b in itertools.pairwise(stations_km)]
    shares = lane_shares(road.lanes)
    trucks = sum(s * truck_share(i, road.lanes) for i, s in enumerate(shares))
    run = SectionRun(name, list(zip(ids, stations_km, strict=True)), interval_s, road.free_flow_kmh,
                     road.lanes, weather, incidents=[
                         IncidentTruth(i.at_km, epoch0 + i.start_s, epoch0 + i.start_s + i.duration_s,
                                       i.capacity_fraction) for i in road.incidents],
                     faults=list(faults or []))
    by_station: dict[str, list[Fault]] = {}
    for f in run.faults:
        by_station.setdefault(f.station, []).append(f)
    frozen: dict[tuple[str, float], tuple[LaneSample, ...] | None] = {}
    last_d = [0.0] * len(spans)
    last_q = [0.0] * len(spans)
    last_step = 0
    n = int(duration_s // interval_s)
    for b in range(n):
        t0, t1 = b * interval_s, (b + 1) * interval_s
        row: list[StationSample] = []
        for sid, km, cell in zip(ids, stations_km, cells, strict=True):
            agg = model.aggregate(cell, t0, t1)
            bins = bin_lanes(agg, road.lanes, interval_s, road.free_flow_kmh, seed, sid, b)
            lanes: tuple[LaneSample, ...] | None = tuple(
                LaneSample(x.volume, x.occupancy_pct, x.speed_kmh, x.medium + x.long) for x in bins)
            lanes = _apply_faults(by_station.get(sid, []), sid, t0, lanes, frozen=frozen, seed=seed, b=b)
            row.append(StationSample(sid, km, epoch0 + t0, lanes))
        run.intervals.append(row)
        truth_row: list[SegmentTruth] = []
        # The model steps in dt, not in intervals: divide by the time actually integrated.
        elapsed = (model.step - last_step) * model.dt
        last_step = model.step
        for j, span in enumerate(spans):
            cells_n = model.span_cells(span)
            d_int = model.span_density_time[span] - last_d[j]
            q_int = model.span_flow_time[span] - last_q[j]
            last_d[j], last_q[j] = model.span_density_time[span], model.span_flow_time[span]
            density = d_int / cells_n / elapsed  # veh/m/lane
            speed = q_int / d_int * 3.6 if d_int > 1e-9 else road.free_flow_kmh
            truth_row.append(SegmentTruth(stations_km[j], stations_km[j + 1], epoch0 + t0, density * 1000,
                                          min(speed, road.free_flow_kmh), trucks))
        run.segments.append(truth_row)
    return run


def _apply_faults(
    faults: list[Fault], sid: str, t0: float, lanes: tuple[LaneSample, ...] | None, *,
    frozen: dict[tuple[str, float], tuple[LaneSample, ...] | None], seed: int, b: int,
) -> tuple[LaneSample, ...] | None:
    for f in faults:
        if not f.start_s <= t0 < f.end_s:
            continue
        if f.kind in _LOSES_BIN:
            # Protocol faults hit 70 % of polls, as in the simulator's random faults.
            if noise.unit(seed, sid, f.kind, b) < 0.7:
                return None
        elif f.kind == "reboot":
            # Silent, then one interval of invalid sentinels: both are "no value" for the agent.
            return None
        elif f.kind == "stuck":
            key = (sid, f.start_s)
            if key not in frozen:
                frozen[key] = lanes
            lanes = frozen[key]
        elif f.kind == "spike" and lanes is not None:
            gen = noise.rng(seed, sid, "spike", b)
            i = gen.randrange(len(lanes))
            lane = lanes[i]
            which = gen.choice(("volume", "occupancy"))
            if which == "volume":
                lane = LaneSample(min(65534, int(lane.volume * f.magnitude) + 1), lane.occupancy_pct,
                                  lane.speed_kmh, lane.long)
            else:
                lane = LaneSample(lane.volume, min(100.0, round(lane.occupancy_pct * f.magnitude, 2)),
                                  lane.speed_kmh, lane.long)
            lanes = (*lanes[:i], lane, *lanes[i + 1 :])
        # clock_drift moves the device clock, not the bins the agent stamps with its own time.
    return lanes


__all__ = [
    "Fault", "IncidentTruth", "LaneSample", "SectionRun", "SegmentTruth", "StationSample", "random_faults",
    "simulate",
]
