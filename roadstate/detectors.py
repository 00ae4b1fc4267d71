"""Incident detection over an upstream/downstream station pair, one 30-s interval at a time. Pure.

Each detector sees the same screened `StationInterval`s and answers, per interval,
whether it currently declares an incident in the segment and how confident it is.
Thresholds are the published ones (or, where we recall rather than checked them,
the ones we fixed before running any test: docs/road-state.md lists them); none is
tuned on the evaluation suite. A missing station skips the interval: the detector
holds its state rather than guess.

State is plain JSON-able attributes, so the service checkpoints a detector with
`snapshot()` and `restore()`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, ClassVar

from roadstate.state import StationInterval


@dataclass(frozen=True, slots=True)
class PairInput:
    up: StationInterval
    down: StationInterval
    interval_s: float
    length_km: float
    free_flow_kmh: float  # design free-flow speed of the road
    capacity: float  # veh/h/lane, design capacity


@dataclass(frozen=True, slots=True)
class Verdict:
    incident: bool
    confidence: float = 0.0


class Detector:
    name: ClassVar[str] = ""

    def __init__(self) -> None:
        self.active = False
        self.confidence = 0.0

    def step(self, x: PairInput) -> Verdict:
        if x.up.valid and x.down.valid:
            self._update(x)
        return Verdict(self.active, self.confidence)

    def _update(self, x: PairInput) -> None:
        raise NotImplementedError

    def snapshot(self) -> dict[str, Any]:
        """A deep, JSON-able copy of the state (histories are lists of floats)."""
        state: dict[str, Any] = json.loads(json.dumps(vars(self)))
        return state

    def restore(self, state: dict[str, Any]) -> None:
        for key, value in state.items():
            if key in vars(self):
                setattr(self, key, value)


def _push(history: list[float], value: float, keep: int) -> None:
    history.append(value)
    del history[:-keep]


class California8(Detector):
    """TSC #8 (Payne & Tignor 1978): occupancy differences with persistence and a compression-wave test.

    On 1-min occupancies (two 30-s bins averaged), per the original:
    OCCDF = OCC_up - OCC_down; OCCRDF = OCCDF / OCC_up; DOCCTD = (OCC_down(t-2 min) - OCC_down) / OCC_down(t-2 min).
    Tentative when OCCDF >= T1, OCCRDF >= T2 and DOCCTD >= T3; confirmed when OCCRDF >= T2 persists
    one more minute; continues while OCCRDF >= T2. A compression wave (downstream occupancy rising
    by more than T5 within 2 min while above T4) suppresses detection for 5 minutes.
    """

    name = "california8"
    T1 = 8.0  # % occupancy
    T2 = 0.5
    T3 = 0.15
    T4 = 20.0  # % downstream occupancy for the compression-wave test
    T5 = 0.5
    SUPPRESS_S = 300.0

    def __init__(self) -> None:
        super().__init__()
        self.up_occ: list[float] = []
        self.down_occ: list[float] = []
        self.tentative = 0
        self.suppressed_s = 0.0

    def _update(self, x: PairInput) -> None:
        _push(self.up_occ, x.up.occupancy_pct, 2)
        _push(self.down_occ, x.down.occupancy_pct, 6)
        if len(self.down_occ) < 6:
            return
        occ_up = sum(self.up_occ) / 2
        occ_down = sum(self.down_occ[-2:]) / 2
        before = sum(self.down_occ[:2]) / 2  # 1-min average 2 min earlier
        occdf = occ_up - occ_down
        occrdf = occdf / occ_up if occ_up > 0 else 0.0
        docctd = (before - occ_down) / before if before > 0 else 0.0
        self.suppressed_s = max(0.0, self.suppressed_s - x.interval_s)
        if occ_down >= self.T4 and docctd <= -self.T5:
            self.suppressed_s = self.SUPPRESS_S
        if self.active:
            self.active = occrdf >= self.T2
            if not self.active:
                self.tentative = 0
            return
        if self.suppressed_s > 0:
            self.tentative = 0
            return
        if self.tentative:
            # Persistence: one more minute (two bins) with OCCRDF still above T2.
            self.tentative = self.tentative + 1 if occrdf >= self.T2 else 0
            if self.tentative >= 3:
                self.active, self.confidence, self.tentative = True, min(1.0, occrdf), 0
        elif occdf >= self.T1 and occrdf >= self.T2 and docctd >= self.T3:
            self.tentative = 1


class McMaster(Detector):
    """McMaster (Persaud & Hall 1989; Hall, Shi & Atala 1993): flow-occupancy template with speed.

    A station's bin falls in the congested area when occupancy >= OCRIT (the station's critical
    occupancy, from its calibration data) and speed < VCRIT (80 % of free flow, the original's
    80 km/h on 100 km/h roads); congestion persisting 3 bins at the upstream station with the
    downstream station uncongested (occupancy < OCRIT, speed >= VCRIT) declares an incident;
    congestion at both is a queue from further downstream.
    """

    name = "mcmaster"
    PERSISTENCE = 3
    VCRIT_SHARE = 0.8

    def __init__(self, ocrit_pct: float = 0.0) -> None:
        super().__init__()
        self.ocrit_pct = ocrit_pct
        self.congested_bins = 0
        self.clear_bins = 0

    def _ocrit(self, x: PairInput) -> float:
        if self.ocrit_pct > 0:
            return self.ocrit_pct
        # Uncalibrated: the critical occupancy of the design diagram (capacity / free flow x L_eff of 6 m).
        return x.capacity / x.free_flow_kmh * 6.0 / 10

    def _update(self, x: PairInput) -> None:
        ocrit = self._ocrit(x)
        vcrit = self.VCRIT_SHARE * x.free_flow_kmh
        up_congested = x.up.occupancy_pct >= ocrit and x.up.speed_kmh < vcrit
        down_free = x.down.occupancy_pct < ocrit and x.down.speed_kmh >= vcrit
        if up_congested and down_free:
            self.congested_bins += 1
        else:
            self.congested_bins = 0
        if self.congested_bins >= self.PERSISTENCE:
            self.active, self.clear_bins = True, 0
            self.confidence = min(1.0, x.up.occupancy_pct / (2 * ocrit))
        elif self.active:
            self.clear_bins += 1
            if self.clear_bins >= self.PERSISTENCE:
                self.active = False


class SND(Detector):
    """Standard normal deviate (Dudek, Messer & Nuckles 1974) of the upstream station's occupancy.

    SND = (OCC_t - mean) / sd over the previous 5 minutes (10 bins); an incident when SND >= 2.0 in
    two consecutive bins (the original's two-sample rule); it ends when SND falls below 0 again.
    """

    name = "snd"
    WINDOW = 10
    THRESHOLD = 2.0
    MIN_SD = 0.5  # % occupancy: a flat history must not make noise infinite

    def __init__(self) -> None:
        super().__init__()
        self.history: list[float] = []
        self.over = 0

    def _update(self, x: PairInput) -> None:
        occ = x.up.occupancy_pct
        if len(self.history) >= self.WINDOW:
            mean = sum(self.history) / len(self.history)
            sd = max(self.MIN_SD, math.sqrt(sum((h - mean) ** 2 for h in self.history) / (len(self.history) - 1)))
            snd = (occ - mean) / sd
            self.over = self.over + 1 if snd >= self.THRESHOLD else 0
            if self.over >= 2 and not self.active:
                self.active, self.confidence = True, min(1.0, snd / 4)
            elif self.active and snd < 0:
                self.active = False
        _push(self.history, occ, self.WINDOW)
