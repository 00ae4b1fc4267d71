"""The evaluation suite: incident sections and incident-free days, drawn from one seed.

Everything varies with the seed: lanes, demand (AADT), detector spacing, weather
(dry, rain, fog speed limits), recurrent bottlenecks (lane drops, grades), incident
place, start, duration and severity, and detector faults from the simulator's list.
The evaluation seed and the held-out seed draw different suites from the same
distributions; no algorithm is tuned on either.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

from firmware_sim import noise
from firmware_sim.scenario import Bottleneck, Incident, Road
from firmware_sim.section import SectionRun, random_faults, simulate
from firmware_sim.traffic import Diagram, demand_per_s

CST = timezone(timedelta(hours=8))
WEATHER = (("dry", 90.0), ("dry", 100.0), ("rain", 80.0), ("fog", 60.0))
# 8 % in the model measures as 5-7 % against the highest 5-min flow before the queue
# (tests/roadstate/test_sim_signatures.py), the field definition of the drop.
CAPACITY_DROP = 0.08
FAULTS_PER_STATION_HOUR = 0.4


@dataclass(frozen=True, slots=True)
class SuiteSpec:
    seed: int = 1
    incidents: int = 60
    negative_days: int = 3
    faults_per_station_hour: float = FAULTS_PER_STATION_HOUR


def _road(gen_key: tuple[object, ...], *, incident: bool) -> tuple[Road, list[float], str]:
    gen = noise.rng(*gen_key, "road")
    lanes = gen.choice((2, 3, 3, 4))
    weather, free = gen.choice(WEATHER)
    spacing = gen.choice((1.5, 2.0, 2.0, 2.5))
    count = gen.randint(7, 9)
    stations = [round(2.0 + i * spacing, 1) for i in range(count)]
    length = stations[-1] + 3.0
    # Demand per lane at the peak hour of 0.082 x AADT: 1,300-2,050 veh/h/lane.
    peak_per_lane = gen.uniform(1300, 2050) if incident else gen.uniform(1500, 2000)
    aadt = int(peak_per_lane * lanes / 0.082)
    bottlenecks = []
    if gen.random() < (0.5 if incident else 1.0):
        at_km = round(gen.uniform(stations[1], stations[-1]) + 0.05, 2)
        if incident:
            fraction = gen.uniform(0.75, 0.92)
        else:
            # Incident-free days congest for sure: the bottleneck passes 80-95 % of the peak demand.
            cap = Diagram.of(Road(free_flow_kmh=free)).capacity * 3600
            fraction = min(0.95, gen.uniform(0.8, 0.95) * peak_per_lane / cap)
        bottlenecks.append(Bottleneck(at_km=at_km, capacity_fraction=round(fraction, 3)))
    road = Road(name=f"S{gen_key[-1]}", length_km=length, lanes=lanes, aadt=aadt, free_flow_kmh=free,
                capacity_drop=CAPACITY_DROP, bottlenecks=bottlenecks)
    return road, stations, weather


def incident_sections(spec: SuiteSpec) -> Iterator[SectionRun]:
    """One incident per section; 45 min of traffic before it, 30 min after it clears."""
    for i in range(spec.incidents):
        key = (spec.seed, "incident", i)
        road, stations, weather = _road(key, incident=True)
        gen = noise.rng(*key, "incident")
        day = datetime(2026, 3, 2, tzinfo=CST) + timedelta(days=i % 7)
        # Incidents happen when traffic is heavy enough for a blocked lane to queue.
        cap = Diagram.of(road).capacity * 3600
        for _ in range(50):
            hour = gen.uniform(6.5, 20.0)
            fraction = round(gen.uniform(0.15, 0.6), 3)
            demand = demand_per_s(road, hour, spec.seed) * 3600 / road.lanes
            if demand >= 1.3 * fraction * cap:
                break
        at_km = round(gen.uniform(stations[0] + 0.3, stations[-1] - 0.3), 2)
        duration = gen.uniform(10, 40) * 60
        lead = 45 * 60
        start = day + timedelta(hours=hour) - timedelta(seconds=lead)
        start = start.replace(second=0, microsecond=0)
        incident = Incident(at_km=at_km, start_s=lead, duration_s=round(duration), capacity_fraction=fraction)
        road = road.model_copy(update={"incidents": [incident]})
        span = lead + duration + 30 * 60
        faults = random_faults(spec.seed * 7919 + i, [f"vds-k{km:04.1f}" for km in stations], span / 3600,
                               spec.faults_per_station_hour)
        yield simulate(f"incident-{i:03d}", road, stations, seed=spec.seed * 1000 + i, start=start,
                       duration_s=span, faults=faults, weather=weather)


def negative_days(spec: SuiteSpec) -> Iterator[SectionRun]:
    """Whole incident-free days with recurrent congestion at a bottleneck in both peaks."""
    for d in range(spec.negative_days):
        key = (spec.seed, "negative", d)
        road, stations, weather = _road(key, incident=False)
        start = datetime(2026, 3, 9 + d, tzinfo=CST)
        faults = random_faults(spec.seed * 104729 + d, [f"vds-k{km:04.1f}" for km in stations], 24.0,
                               spec.faults_per_station_hour)
        yield simulate(f"negative-{d:02d}", road, stations, seed=spec.seed * 1000 + 500 + d, start=start,
                       duration_s=86_400, faults=faults, weather=weather)


def utc(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M")
