"""Macroscopic traffic on one road direction: a cell transmission model (Godunov scheme of LWR).

Why our own model and not UXsim or SUMO: UXsim is mesoscopic (platoons on a
network) and SUMO microscopic, both far heavier than a sensor simulator needs,
and neither is a light dependency. A detector only sees flow, density and speed
at a point, which the first-order LWR model gives directly. Its triangular
fundamental diagram makes disturbances inside congestion travel upstream at the
backward wave speed w (18 km/h by default, the measured value), and the
model is deterministic and cheap: one pass over ~200 cells per time step.

Units inside: metres, seconds, vehicles; densities per lane.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import timedelta

from firmware_sim import noise
from firmware_sim.scenario import Incident, Road

# Share of daily traffic per hour on a rural expressway (sums to 1): morning and evening peaks.
HOURLY_SHARE: tuple[float, ...] = (
    0.012,
    0.008,
    0.006,
    0.006,
    0.009,
    0.020,
    0.045,
    0.075,
    0.082,
    0.065,
    0.056,
    0.055,
    0.054,
    0.055,
    0.058,
    0.064,
    0.078,
    0.082,
    0.066,
    0.047,
    0.036,
    0.029,
    0.022,
    0.016,
)


@dataclass(frozen=True, slots=True)
class Diagram:
    """A fundamental diagram q(k) per lane: triangular or Greenshields."""

    kind: str
    free_flow: float  # m/s
    wave: float  # m/s, backward wave speed of the triangular diagram
    jam: float  # veh/m/lane
    # Share by which a queue's discharge falls below capacity (0: none).
    drop: float = 0.0

    @classmethod
    def of(cls, road: Road) -> Diagram:
        return cls(
            road.diagram, road.free_flow_kmh / 3.6, road.wave_kmh / 3.6, road.jam_density_veh_km / 1000,
            road.capacity_drop,
        )

    @property
    def critical(self) -> float:
        if self.kind == "greenshields":
            return self.jam / 2
        return self.wave * self.jam / (self.free_flow + self.wave)

    @property
    def capacity(self) -> float:
        return self.flow(self.critical)

    def flow(self, k: float) -> float:
        k = min(max(k, 0.0), self.jam)
        if self.kind == "greenshields":
            return self.free_flow * k * (1 - k / self.jam)
        return min(self.free_flow * k, self.wave * (self.jam - k))

    def speed(self, k: float) -> float:
        if k <= 1e-9:
            return self.free_flow
        return self.flow(k) / k

    def sending(self, k: float) -> float:
        """Demand a cell can send downstream (Godunov): flow on the free branch, else capacity.

        With a capacity drop, a congested cell (a queue) sends only (1 - drop) x capacity:
        the discontinuous sending function of capacity-drop CTMs, so a queue discharges
        below the flow that preceded it, as measured in the field.
        """
        if self.drop and k > self.critical:
            return self.capacity * (1 - self.drop)
        return self.flow(min(k, self.critical))

    def receiving(self, k: float) -> float:
        """Supply a cell can take from upstream: capacity while free, the congested branch otherwise."""
        return self.flow(max(k, self.critical))


def demand_per_s(road: Road, local_hour: float, seed: int) -> float:
    """Vehicles per second entering the section at a local time of day, with slow seeded wobble."""
    hour = local_hour % 24
    low = int(hour)
    frac = hour - low
    share = HOURLY_SHARE[low] * (1 - frac) + HOURLY_SHARE[(low + 1) % 24] * frac
    wobble = 1 + 0.05 * noise.smooth(hour * 3600, seed, road.name, "demand")
    return road.aadt * share / 3600 * wobble


@dataclass(slots=True)
class _Detector:
    cell: int
    # Cumulative vehicles past the cell's downstream edge and cumulative density·time, per step.
    counts: list[float] = field(default_factory=lambda: [0.0])
    density_time: list[float] = field(default_factory=lambda: [0.0])
    # Step number of counts[0]: old history is dropped so a days-long run keeps bounded memory.
    first_step: int = 0


@dataclass(frozen=True, slots=True)
class Aggregate:
    """What a whole-direction detector would measure over one interval."""

    vehicles: float  # all lanes
    density: float  # veh/m/lane, time mean
    speed: float  # m/s, space-mean: flow / density

    @property
    def flow_per_lane(self) -> float:
        return self.density * self.speed


class RoadModel:
    """Advances the cells in fixed steps; detectors read cumulative curves by interpolation."""

    def __init__(self, road: Road, seed: int, start_epoch: float, utc_offset: timedelta) -> None:
        self.road = road
        self.seed = seed
        self.diagram = Diagram.of(road)
        self.cells = max(2, math.ceil(road.length_km * 1000 / road.cell_m))
        self.dx = road.length_km * 1000 / self.cells
        # CFL: no vehicle may cross more than one cell per step.
        self.dt = self.dx / self.diagram.free_flow
        self._local0 = (start_epoch + utc_offset.total_seconds()) % 86_400 / 3600
        self.step = 0
        self.entry_queue = 0.0
        start_demand = demand_per_s(road, self._local0, seed) / road.lanes
        k0 = self._free_density(start_demand)
        self.density = [k0] * self.cells
        self._detectors: dict[int, _Detector] = {}
        # Detector history kept for reading past intervals: 6 simulated hours.
        self.history_steps = max(16, int(6 * 3600 / self.dt))
        self._incidents = [(self._cell_of(i.at_km), i) for i in road.incidents]
        self._bottlenecks = [(self._cell_of(b.at_km), b.capacity_fraction) for b in road.bottlenecks]
        # Spans of cells whose density and flow are integrated over time (ground truth of segments).
        self._spans: list[tuple[int, int]] = []
        self.span_density_time: list[float] = []
        self.span_flow_time: list[float] = []

    def _free_density(self, flow_per_lane: float) -> float:
        d = self.diagram
        if d.kind == "greenshields":
            q = min(flow_per_lane, d.capacity)
            return d.jam / 2 * (1 - math.sqrt(max(0.0, 1 - 4 * q / (d.free_flow * d.jam))))
        return min(flow_per_lane, d.capacity) / d.free_flow

    def _cell_of(self, km: float) -> int:
        return min(self.cells - 1, max(0, int(km * 1000 / self.dx)))

    def detector(self, km: float) -> int:
        """Register a detector at km (before advancing past its first interval); returns its cell."""
        cell = self._cell_of(km)
        if cell not in self._detectors:
            if self.step:
                raise RuntimeError("detectors must be placed before the model runs")
            self._detectors[cell] = _Detector(cell)
        return cell

    def track_span(self, from_km: float, to_km: float) -> int:
        """Integrate density and flow over the cells between two kilometres; returns the span's index.

        span_density_time[i] / cells / elapsed is the space-time mean density (veh/m/lane),
        the quantity a segment's level of service is defined on.
        """
        if self.step:
            raise RuntimeError("spans must be tracked before the model runs")
        a, b = self._cell_of(from_km), max(self._cell_of(from_km) + 1, self._cell_of(to_km))
        self._spans.append((a, b))
        self.span_density_time.append(0.0)
        self.span_flow_time.append(0.0)
        return len(self._spans) - 1

    def span_cells(self, index: int) -> int:
        a, b = self._spans[index]
        return b - a

    def _capacity_cap(self, t: float) -> dict[int, float]:
        caps: dict[int, float] = {}
        for cell, fraction in self._bottlenecks:
            caps[cell] = self.diagram.capacity * fraction
        for cell, inc in self._incidents:
            if _active(inc, t):
                caps[cell] = min(caps.get(cell, math.inf), self.diagram.capacity * inc.capacity_fraction)
        return caps

    def advance_to(self, t: float) -> None:
        """Run the cells until simulated second t (since scenario start)."""
        d = self.diagram
        lanes = self.road.lanes
        while self.step * self.dt < t:
            now = self.step * self.dt
            caps = self._capacity_cap(now)
            k = self.density
            send, recv = self._send_receive(k)
            for cell, cap in caps.items():
                # A restriction with a queue behind it discharges below its capacity too.
                queued = d.drop and cell > 0 and k[cell - 1] > d.critical
                limit = cap * (1 - d.drop) if queued else cap
                send[cell] = min(send[cell], limit)
                recv[cell] = min(recv[cell], limit)
            # Vehicles wait at the entry when the first cell cannot take them: demand is never lost.
            self.entry_queue += demand_per_s(self.road, self._local0 + now / 3600, self.seed) * self.dt
            inflow = min(self.entry_queue / self.dt / lanes, recv[0])
            self.entry_queue -= inflow * lanes * self.dt
            flows = [inflow] + [min(send[i], recv[i + 1]) for i in range(self.cells - 1)] + [send[-1]]
            ratio = self.dt / self.dx
            for det in self._detectors.values():
                det.counts.append(det.counts[-1] + flows[det.cell + 1] * lanes * self.dt)
                det.density_time.append(det.density_time[-1] + k[det.cell] * self.dt)
                if len(det.counts) > 2 * self.history_steps:
                    del det.counts[: self.history_steps]
                    del det.density_time[: self.history_steps]
                    det.first_step += self.history_steps
            for i, (a, b) in enumerate(self._spans):
                self.span_density_time[i] += sum(k[a:b]) * self.dt
                self.span_flow_time[i] += sum(flows[a + 1 : b + 1]) * self.dt
            self.density = [k[i] + ratio * (flows[i] - flows[i + 1]) for i in range(self.cells)]
            self.step += 1

    def _send_receive(self, k: list[float]) -> tuple[list[float], list[float]]:
        d = self.diagram
        if d.kind != "triangular":
            return [d.sending(x) for x in k], [d.receiving(x) for x in k]
        # The triangular diagram inlined: the same values as Diagram.sending/receiving, ~4x faster.
        vf, w, jam, kc, cap = d.free_flow, d.wave, d.jam, d.critical, d.capacity
        queue_out = cap * (1 - d.drop)
        send = [vf * x if x <= kc else queue_out for x in k]
        recv = [cap if x <= kc else (w * (jam - x) if x < jam else 0.0) for x in k]
        return send, recv

    def aggregate(self, cell: int, t0: float, t1: float) -> Aggregate:
        """Flow, density and speed at a detector cell between simulated seconds t0 and t1."""
        self.advance_to(t1 + self.dt)
        det = self._detectors[cell]
        span = t1 - t0
        vehicles = self._interp(det.counts, det.first_step, t1) - self._interp(det.counts, det.first_step, t0)
        density = (
            self._interp(det.density_time, det.first_step, t1) - self._interp(det.density_time, det.first_step, t0)
        ) / span
        flow_per_lane = vehicles / self.road.lanes / span
        speed = flow_per_lane / density if density > 1e-6 else self.diagram.free_flow
        return Aggregate(vehicles, density, min(speed, self.diagram.free_flow))

    def _interp(self, series: list[float], first_step: int, t: float) -> float:
        # Times older than the kept history read as its start (a long "stuck" fault asks for them).
        pos = max(0.0, t / self.dt - first_step)
        i = min(int(pos), len(series) - 2)
        frac = pos - i
        return series[i] + (series[i + 1] - series[i]) * frac


def _active(incident: Incident, t: float) -> bool:
    return incident.start_s <= t < incident.start_s + incident.duration_s


def crossing_time(times: list[float], speeds: list[float], threshold: float, rising: bool) -> float | None:
    """First time a speed series crosses a threshold (down, or up when rising), interpolated."""
    for i in range(1, len(speeds)):
        a, b = speeds[i - 1], speeds[i]
        if (not rising and a >= threshold > b) or (rising and a < threshold <= b):
            return times[i - 1] + (times[i] - times[i - 1]) * (a - threshold) / (a - b)
    return None


def fit_slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope dy/dx: wave speed from crossing times at several stations."""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum((x - mx) ** 2 for x in xs)


__all__ = ["HOURLY_SHARE", "Aggregate", "Diagram", "RoadModel", "crossing_time", "demand_per_s", "fit_slope"]
