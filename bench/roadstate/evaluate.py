"""Every algorithm over the same sections: detection rate, false-alarm rate, time to detect, LOS confusion.

Definitions (Martin, Perrin & Hansen 2001 style):
- DR: share of true incidents with at least one matching alarm. An alarm matches an incident
  when it is raised in the incident's segment or the segment just upstream of it (the queue
  reaches the upstream station first when the incident is near it), after the incident
  began and before it cleared plus 30 minutes.
- FAR: alarms that match no incident, divided by all decisions: one per station pair
  (segment) per interval, over every section (incident and incident-free).
- MTTD: mean of (first matching alarm's decision time - incident start). A decision about an
  interval is made when the interval ends, so that is its time.
- LOS: the HCM band of the estimated segment state against the band of the true space-time
  mean density of the segment's cells (pc/mi/ln with the same heavy-vehicle factor).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from firmware_sim.section import IncidentTruth, SectionRun
from roadstate.engine import ALGORITHMS, RoadEngine, RoadParams
from roadstate.state import LOS_LETTERS, LaneBin, Segment, los_of, pc_per_mile, segments_of

MATCH_AFTER_S = 30 * 60


@dataclass
class AlgoScore:
    incidents: int = 0
    detected: int = 0
    false_alarms: int = 0
    decisions: int = 0
    detect_s: list[float] = field(default_factory=list)
    false_in: dict[str, int] = field(default_factory=dict)
    missed: list[str] = field(default_factory=list)

    @property
    def dr(self) -> float:
        return self.detected / self.incidents if self.incidents else 0.0

    @property
    def far(self) -> float:
        return self.false_alarms / self.decisions if self.decisions else 0.0

    @property
    def mttd_s(self) -> float:
        return sum(self.detect_s) / len(self.detect_s) if self.detect_s else float("nan")


@dataclass
class Report:
    scores: dict[str, AlgoScore]
    los: list[list[int]]  # [true][estimated], 6 x 7 (last column: no estimate)
    sections: int = 0
    station_days: float = 0.0
    negative_station_days: float = 0.0

    @property
    def los_accuracy(self) -> float:
        total = sum(sum(row) for row in self.los)
        return sum(self.los[i][i] for i in range(6)) / total if total else 0.0


def lane_bins(sample_lanes: Sequence[object] | None) -> list[LaneBin] | None:
    if sample_lanes is None:
        return None
    return [LaneBin(float(x.volume), x.occupancy_pct, x.speed_kmh, float(x.long))  # type: ignore[attr-defined]
            for x in sample_lanes]


def run_section(run: SectionRun, algorithms: Sequence[str], report: Report) -> None:
    segs = segments_of(run.name, "N", run.stations)
    params = RoadParams(free_flow_kmh=run.free_flow_kmh, interval_s=run.interval_s)
    engine = RoadEngine(segs, params, algorithms)
    alarms: dict[str, list[tuple[Segment, float]]] = {a: [] for a in algorithms}
    for row, truth in zip(run.intervals, run.segments, strict=True):
        t_ms = round(row[0].t * 1000)
        out = engine.step(t_ms, {s.station: lane_bins(s.lanes) for s in row})
        for event in out.incidents:
            if event.end_ms is None:
                alarms[event.algorithm].append((event.segment, event.start_ms / 1000 + run.interval_s))
        estimated = {r.segment.name: r.state.los for r in out.segments}
        for seg, true in zip(segs, truth, strict=True):
            true_los = los_of(pc_per_mile(true.density_veh_km, true.truck_share))
            est = estimated.get(seg.name)
            col = LOS_LETTERS.index(est) if est else 6
            report.los[LOS_LETTERS.index(true_los)][col] += 1
    report.sections += 1
    days = len(run.intervals) * run.interval_s / 86_400 * len(run.stations)
    report.station_days += days
    if not run.incidents:
        report.negative_station_days += days
    for algo in algorithms:
        score = report.scores[algo]
        score.decisions += len(run.intervals) * len(segs)
        matched: set[int] = set()
        for inc_i, inc in enumerate(run.incidents):
            score.incidents += 1
            hits = [t for seg, t in alarms[algo] if _matches(seg, t, inc, segs)]
            if hits:
                score.detected += 1
                score.detect_s.append(min(hits) - inc.start)
            else:
                score.missed.append(run.name)
            matched.update(i for i, (seg, t) in enumerate(alarms[algo])
                           if _matches(seg, t, inc, segs))
            del inc_i
        false = len(alarms[algo]) - len(matched)
        score.false_alarms += false
        if false:
            score.false_in[run.name] = score.false_in.get(run.name, 0) + false


def _matches(seg: Segment, t: float, inc: IncidentTruth, segs: Sequence[Segment]) -> bool:
    km, start, end = inc.km, inc.start, inc.end
    if not start <= t <= end + MATCH_AFTER_S:
        return False
    home = next((i for i, s in enumerate(segs) if s.from_km <= km < s.to_km), None)
    if home is None:
        return False
    index = segs.index(seg)
    return index in (home, home - 1)


def evaluate(runs: Iterable[SectionRun], algorithms: Sequence[str] = tuple(ALGORITHMS)) -> Report:
    report = Report({a: AlgoScore() for a in algorithms}, [[0] * 7 for _ in range(6)])
    for run in runs:
        run_section(run, algorithms, report)
    return report


def format_report(report: Report) -> str:
    lines = [
        f"{report.sections} sections, {report.station_days:.1f} station-days "
        f"({report.negative_station_days:.1f} incident-free), "
        f"{next(iter(report.scores.values())).incidents} incidents",
        "",
        f"{'algorithm':<12} {'DR':>7} {'FAR':>9} {'false':>6} {'decisions':>10} {'MTTD':>8}",
    ]
    for name, s in report.scores.items():
        mttd = f"{s.mttd_s / 60:.2f} min" if s.detect_s else "-"
        lines.append(f"{name:<12} {s.dr:7.1%} {s.far:9.4%} {s.false_alarms:6d} {s.decisions:10d} {mttd:>8}")
    lines += ["", "LOS confusion (rows: true, columns: estimated; '-' no estimate)",
              "      " + "".join(f"{c:>8}" for c in [*LOS_LETTERS, "-"])]
    for i, row in enumerate(report.los):
        lines.append(f"  {LOS_LETTERS[i]}   " + "".join(f"{n:8d}" for n in row))
    lines.append(f"LOS correct: {report.los_accuracy:.2%} of segment-intervals")
    return "\n".join(lines)
