"""roadpulse's incident detector: vehicles that enter a segment and do not leave it. Pure.

Why this and not occupancy patterns: an incident is a capacity drop. The first
thing it changes is not the upstream occupancy (the queue reaches the upstream
station only after the tail has travelled back, at 10-18 km/h: minutes per km)
but the downstream flow, which falls as soon as the vehicles that passed the
incident before it happened have crossed the downstream station (tens of
seconds). Conservation then says the missing vehicles are stored inside the
segment. So the detector compares the downstream flow with the upstream flow
lagged by the free-flow travel time and declares an incident when

1. the imbalance 1 - q_down / q_up(t - tau) is large: >= SHARP_IMBALANCE in one bin, or
   >= IMBALANCE in this bin and the 1-minute mean while the downstream flow fell suddenly
   (>= SUDDEN_DROP below its mean of the last 10 minutes: a bottleneck's queue only lowers
   it by the capacity drop, since nothing downstream of a bottleneck ever exceeded its
   capacity); and at least EXCESS_VEH_PER_LANE vehicles have gone missing over 2 minutes;
2. the downstream station is free-flowing (speed >= 75 % of the learned free-flow speed,
   occupancy below critical): a queue from further downstream passing the station
   lowers its flow too, but at crawling speed: that is a queue, not a new incident;
   and the upstream station still carries the flow that went missing (a drop that
   arrives from upstream is a starvation front passing through, not a new incident);
3. or, later and as a back-up, the classic signature: upstream congested (speed below
   60 % of free flow) while downstream is free-flowing at well below the road's
   capacity (<= DISCHARGE_SHARE) after a sudden fall lasting a minute (>= SUDDEN_DROP below
   its mean of the last 10 minutes, the bin before at least half that): a recurrent
   bottleneck's queue lowers the flow past it a few per cent (the capacity drop), a
   blocked lane far more and at once.

Speeds are judged against a free-flow speed learned from the downstream station's own
low-occupancy bins (rain, fog speed limits and heavy traffic lower it), so the same
rules hold in any weather. An incident clears after CLEAR_BINS bins with neither signature.
"""

from __future__ import annotations

from roadstate.detectors import Detector, PairInput

IMBALANCE = 0.2
SHARP_IMBALANCE = 0.45
EXCESS_VEH_PER_LANE = 6.0
MIN_UP_FLOW = 360.0  # veh/h/lane: below this a 30-s count is too noisy to compare
FREE_SPEED_SHARE = 0.75
CONGESTED_SPEED_SHARE = 0.6
DISCHARGE_SHARE = 0.62
CLEAR_BINS = 6
SUDDEN_DROP = 0.25  # downstream flow this much below its last 10 minutes' mean: a sudden fall
RECENT_BINS = 20
LAG_KEEP = 12


class FlowBalance(Detector):
    name = "roadpulse"

    def __init__(self) -> None:
        super().__init__()
        self.up_flow: list[float] = []
        self.down_flow: list[float] = []
        self.imbalance: list[float] = []
        self.free_kmh = 0.0
        self.quiet_bins = 0
        self.backup_bins = 0
        self.down_recent: list[float] = []  # downstream flow, last RECENT_BINS bins
        self.cause = ""  # which signature declared the incident: "balance" or "backup"

    def _lagged_up(self, bins_back: float) -> float:
        """Upstream flow `bins_back` bins before the current one, interpolated."""
        pos = len(self.up_flow) - 1 - bins_back
        if pos <= 0:
            return self.up_flow[0]
        low = int(pos)
        frac = pos - low
        high = min(low + 1, len(self.up_flow) - 1)
        return self.up_flow[low] * (1 - frac) + self.up_flow[high] * frac

    def _update(self, x: PairInput) -> None:
        up, down = x.up, x.down
        if down.occupancy_pct < 8 and down.flow > 120:
            # Learn free flow from uncongested bins: slow EWMA, started at the design speed.
            base = self.free_kmh or x.free_flow_kmh
            self.free_kmh = 0.95 * base + 0.05 * min(down.speed_kmh, x.free_flow_kmh * 1.2)
        free = self.free_kmh or x.free_flow_kmh
        self.up_flow.append(up.flow)
        self.down_flow.append(down.flow)
        del self.up_flow[:-LAG_KEEP]
        del self.down_flow[:-LAG_KEEP]
        tau_bins = x.length_km / max(free, 20.0) * 3600 / x.interval_s
        expected = (self._lagged_up(tau_bins) + self._lagged_up(tau_bins + 1)) / 2
        r = 1 - down.flow / expected if expected >= MIN_UP_FLOW else 0.0
        self.imbalance.append(r)
        del self.imbalance[:-4]
        down_free = down.speed_kmh >= FREE_SPEED_SHARE * free and down.occupancy_pct < _critical_occ(x)
        excess = 0.0
        if len(self.imbalance) >= 4 and len(self.up_flow) >= 4:
            lagged = [self._lagged_up(tau_bins + k) for k in range(4)]
            excess = (sum(lagged) - sum(self.down_flow[-4:])) * x.interval_s / 3600
        # The upstream station still carries the flow that is missing downstream: the drop began
        # inside the segment, not upstream of it (a starvation front travels downstream at free speed).
        # (Unless the upstream station is queued already: an incident just downstream of it.)
        up_congested = up.speed_kmh < CONGESTED_SPEED_SHARE * free and up.occupancy_pct >= _critical_occ(x)
        up_steady = up.flow >= (1 - IMBALANCE) * expected or up_congested
        # A bottleneck's queue lowers the flow past it to its discharge rate, a few per cent below
        # the demand before; a blocked lane lowers it far more, and suddenly.
        # Against the mean of the last 10 minutes, not their peak: the peak of noisy 30-s counts
        # sits well above the flow, and a bottleneck's discharge would seem to fall from it.
        before = sum(self.down_recent) / len(self.down_recent) if self.down_recent else down.flow
        fell = down.flow <= (1 - SUDDEN_DROP) * before
        fell_for_a_minute = fell and (self.down_flow[-2] if len(self.down_flow) >= 2 else down.flow) <= (
            1 - SUDDEN_DROP / 2) * before
        sustained = len(self.imbalance) >= 2 and (self.imbalance[-1] + self.imbalance[-2]) / 2 >= IMBALANCE
        # A drop this deep in one bin is no counting noise: no need to wait for the next bin.
        sharp = r >= SHARP_IMBALANCE
        balance = (r >= IMBALANCE and (sharp or (sustained and fell)) and excess >= EXCESS_VEH_PER_LANE
                   and down_free and up_steady)
        up_congested = up.speed_kmh < CONGESTED_SPEED_SHARE * free and up.occupancy_pct >= _critical_occ(x)
        starved = down_free and down.flow <= DISCHARGE_SHARE * x.capacity and (
            fell_for_a_minute or self.backup_bins > 0)
        self.down_recent.append(down.flow)
        del self.down_recent[:-RECENT_BINS]
        self.backup_bins = self.backup_bins + 1 if up_congested and starved else 0
        backup = self.backup_bins >= 2
        if balance or backup:
            if not self.active:
                self.active = True
                self.confidence = round(min(1.0, 0.5 + max(r, 0.0)), 3) if balance else 0.6
                self.cause = "balance" if balance else "backup"
            self.quiet_bins = 0
        elif self.active:
            self.quiet_bins += 1
            if self.quiet_bins >= CLEAR_BINS:
                self.active = False


def _critical_occ(x: PairInput) -> float:
    """Critical occupancy (%) of the design diagram with a 6-m effective vehicle length."""
    return x.capacity / x.free_flow_kmh * 6.0 / 10
