"""Station aggregates, segment state, HCM level of service and the GB/T 33171 congestion level. Pure.

Units: flow in veh/h/lane, density in veh/km/lane, speed in km/h. HCM's density
bands are in passenger cars per mile per lane, so a density is converted with
1.609344 km/mi and the heavy-vehicle factor (trucks count as E_T = 2 cars on
level terrain, HCM 6th ed. Exhibit 12-25).
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

KM_PER_MI = 1.609344
TRUCK_PCE = 2.0
# HCM 6th ed. Exhibit 12-15, basic freeway segments: upper density bound of A..E in pc/mi/ln.
LOS_BANDS: tuple[tuple[str, float], ...] = (("A", 11.0), ("B", 18.0), ("C", 26.0), ("D", 35.0), ("E", 45.0))
LOS_LETTERS = "ABCDEF"
# GB/T 33171-2016 App. C: delay-time proportion (1 - v / v_free) upper bounds of levels 1..4.
CONGESTION_BANDS: tuple[tuple[str, float], ...] = (
    ("畅通", 0.3), ("基本畅通", 0.5), ("轻度拥堵", 0.6), ("中度拥堵", 0.7),
)
CONGESTION_NAMES = ("畅通", "基本畅通", "轻度拥堵", "中度拥堵", "严重拥堵")


@dataclass(frozen=True, slots=True)
class LaneBin:
    """One lane's detector bin as decoded: None where the detector sent no value."""

    volume: float | None
    occupancy_pct: float | None
    speed_kmh: float | None
    trucks: float | None = None  # medium + long length classes


@dataclass(frozen=True, slots=True)
class StationInterval:
    """A station's lanes over one interval, summed and averaged; `valid` False when nothing usable came."""

    flow: float  # veh/h/lane
    occupancy_pct: float  # mean over lanes
    speed_kmh: float  # space-mean: flow-weighted harmonic mean over lanes (free flow when empty)
    density: float  # veh/km/lane from occupancy and the effective vehicle length
    truck_share: float
    lanes_ok: int
    valid: bool = True


NO_DATA = StationInterval(0.0, 0.0, 0.0, 0.0, 0.0, 0, valid=False)


def aggregate_station(lanes: Sequence[LaneBin], interval_s: float, *, effective_length_m: float,
                      free_flow_kmh: float) -> StationInterval:
    """Sum volumes, average occupancy, flow-weight speeds across the lanes with all three values.

    A lane with a volume but no speed is a lane nobody drove through (speed undefined),
    kept with speed unknown; a lane with no volume or occupancy is left out.
    """
    ok = [lane for lane in lanes if lane.volume is not None and lane.occupancy_pct is not None]
    if not ok or interval_s <= 0:
        return NO_DATA
    vehicles = sum(float(lane.volume or 0) for lane in ok)
    occupancy = sum(float(lane.occupancy_pct or 0) for lane in ok) / len(ok)
    flow = vehicles * 3600 / interval_s / len(ok)
    # Space-mean speed over lanes: sum of flows over sum of flow/speed (harmonic, weighted by flow).
    timed = [(float(lane.volume or 0), lane.speed_kmh) for lane in ok if lane.speed_kmh and lane.volume]
    if timed:
        speed = sum(v for v, _ in timed) / sum(v / s for v, s in timed if s)
    else:
        speed = free_flow_kmh if occupancy < 5 else 0.0
    density = occupancy / 100 / effective_length_m * 1000
    trucks = [lane.trucks for lane in ok if lane.trucks is not None]
    share = min(1.0, sum(trucks) / vehicles) if trucks and vehicles > 0 else 0.0
    return StationInterval(flow, occupancy, min(speed, free_flow_kmh * 1.3), density, share, len(ok))


def stored_vehicles(flow_differences: Sequence[float], interval_s: float) -> float:
    """Vehicles per lane that entered a segment and did not leave it over the last intervals.

    `flow_differences` are q_up - q_down (veh/h/lane) of the latest intervals in which both
    stations flowed freely. Both free does not mean the segment is: a queue behind an
    incident between them stays invisible to both until it reaches the upstream one, but
    conservation sees it. When its tail reaches the upstream station, these vehicles place
    its head. A bounded window keeps counting noise bounded (a few vehicles per lane).
    (Adding them to the density while both stations are free was tried and lost more to
    counting noise than it gained.)
    """
    return sum(flow_differences) * interval_s / 3600


def front_density(front_km: float | None, up: StationInterval, down: StationInterval, *, interval_s: float,
                  length_km: float, critical: float, was: tuple[bool, bool] | None,
                  stored: float = 0.0) -> tuple[float | None, float | None]:
    """Segment density (veh/km/lane) with a congestion front between the stations; returns (density, front).

    Point detectors see a queue only where they stand. When one end is congested and
    the other free, one front lies between them (a queue's tail, or its head at an
    incident), and it moves at the shock speed w = (q_down - q_up) / (k_down - k_up),
    computed from the two stations' own values: about -10 to -18 km/h for a growing
    queue, 0 for a queue held by an incident, -18 for a dissolving one. The front
    starts at the station whose regime just changed (midway when unknown) and the
    segment's density is the length-weighted mix of the two ends' densities.
    `front_km` is the front's distance from the upstream station; `was` the ends'
    regimes (up congested, down congested) last interval; `stored` the vehicles per lane
    held between two free-flowing stations (`stored_vehicles`).
    """
    ends = [s for s in (up, down) if s.valid]
    if not ends:
        return None, None
    if len(ends) < 2 or length_km <= 0:
        return ends[0].density, None
    up_c, down_c = up.density > critical, down.density > critical
    if up_c == down_c:
        return (up.density + down.density) / 2, None
    if front_km is None:
        if was is not None and was[1] != down_c and was[0] == up_c:
            front_km = length_km  # the front just crossed the downstream station
        elif was is not None and was[0] != up_c and was[1] == down_c:
            # A queue's tail just passed the upstream station: its head (an incident, a bottleneck)
            # is as far downstream as the vehicles stored while it grew say.
            dk = abs(up.density - down.density)
            front_km = min(length_km, max(0.0, stored) / dk) if up_c and dk > 1 else 0.0
        else:
            front_km = length_km / 2
    dk = down.density - up.density
    if abs(dk) > 1e-6:
        wave = (down.flow - up.flow) / dk  # km/h, positive downstream
        front_km += wave * interval_s / 3600
    front_km = min(length_km, max(0.0, front_km))
    share_up = front_km / length_km
    return share_up * up.density + (1 - share_up) * down.density, front_km


def los_of(density_pcmi: float) -> str:
    for letter, upper in LOS_BANDS:
        if density_pcmi <= upper:
            return letter
    return "F"


def pc_per_mile(density_veh_km: float, truck_share: float) -> float:
    """veh/km/lane to pc/mi/lane: trucks count TRUCK_PCE cars (HCM's f_HV, inverted)."""
    return density_veh_km * KM_PER_MI * (1 + truck_share * (TRUCK_PCE - 1))


def delay_ratio(speed_kmh: float, free_flow_kmh: float) -> float:
    """GB/T 33171's delay-time proportion (T - T_free) / T = 1 - v / v_free, clipped to 0..1."""
    if free_flow_kmh <= 0:
        return 0.0
    return min(1.0, max(0.0, 1 - speed_kmh / free_flow_kmh))


def congestion_level(ratio: float) -> int:
    """1 畅通 … 5 严重拥堵."""
    for level, (_, upper) in enumerate(CONGESTION_BANDS, start=1):
        if ratio < upper:
            return level
    return 5


@dataclass(frozen=True, slots=True)
class SegmentState:
    flow: float
    speed_kmh: float
    density: float
    density_pcmi: float
    los: str
    congestion_level: int
    delay_ratio: float
    stations_ok: int

    @property
    def los_index(self) -> int:
        return LOS_LETTERS.index(self.los) + 1

    @property
    def congestion(self) -> str:
        return CONGESTION_NAMES[self.congestion_level - 1]


def segment_state(up: StationInterval, down: StationInterval, free_flow_kmh: float,
                  density: float | None = None) -> SegmentState | None:
    """A segment from its two end stations: mean density and flow; speed = flow / density.

    `density` overrides the mean of the ends (the engine's front-tracking estimate). One
    valid end stands for the segment alone; none gives no state (nothing is written).
    """
    ends = [s for s in (up, down) if s.valid]
    if not ends:
        return None
    if density is None:
        density = sum(s.density for s in ends) / len(ends)
    flow = sum(s.flow for s in ends) / len(ends)
    trucks = sum(s.truck_share for s in ends) / len(ends)
    if density > 0.5:
        speed = min(free_flow_kmh, flow / density)
    else:
        speed = min(free_flow_kmh, sum(s.speed_kmh for s in ends) / len(ends))
    pcmi = pc_per_mile(density, trucks)
    ratio = delay_ratio(speed, free_flow_kmh)
    return SegmentState(flow, speed, density, pcmi, los_of(pcmi), congestion_level(ratio), ratio, len(ends))


_KP = re.compile(r"^[Kk](\d+)\+(\d{1,3})$")


def parse_kp(text: str) -> float:
    """A kilometre post as km: `K123+400` → 123.4, `123.4` → 123.4. ValueError names the text."""
    m = _KP.match(text.strip())
    if m:
        return int(m.group(1)) + int(m.group(2)) / 1000
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"kilometre post {text!r} is neither K<km>+<m> nor a number") from None
    if not math.isfinite(value):
        raise ValueError(f"kilometre post {text!r} is not finite")
    return value


def format_kp(km: float) -> str:
    whole = math.floor(km + 1e-9)
    metres = round((km - whole) * 1000)
    if metres == 1000:
        whole, metres = whole + 1, 0
    return f"K{whole:03d}+{metres:03d}"


@dataclass(frozen=True, slots=True)
class Segment:
    """Two consecutive stations of one road and direction, upstream first."""

    road: str
    direction: str
    up: str  # station ids
    down: str
    from_km: float
    to_km: float

    @property
    def name(self) -> str:
        return f"{format_kp(self.from_km)}-{format_kp(self.to_km)}"

    @property
    def length_km(self) -> float:
        return abs(self.to_km - self.from_km)


def segments_of(road: str, direction: str, stations: Sequence[tuple[str, float]], *,
                increasing: bool = True) -> list[Segment]:
    """Consecutive stations by kilometre post in the direction of travel (km increasing or not)."""
    ordered = sorted(stations, key=lambda s: s[1], reverse=not increasing)
    return [Segment(road, direction, a[0], b[0], a[1], b[1])
            for a, b in itertools.pairwise(ordered) if a[1] != b[1]]
