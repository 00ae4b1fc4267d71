"""A simulated section's bins as protocol v1 messages, as one gateway per section would publish them.

For tests and demos of consumers of detector data (the road-state service): a retained
birth declaring every station's lanes as `traffic` metrics with road, direction, kp and
lane tags, then one data message per station per interval, stamped with simulated time
(the bin's end), so a consumer sees hours of traffic in seconds.
"""

from __future__ import annotations

from firmware_sim.section import SectionRun
from roadpulse.wire import Birth, DataBatch, MetricDef, Quality, Reading, Topics, encode_birth, encode_data

FIELDS = (("volume", "veh", "i"), ("occupancy", "%", "f"), ("speed", "km/h", "f"), ("class_long", "veh", "i"))


def _km_post(km: float) -> str:
    whole = int(km)
    return f"K{whole:03d}+{round((km - whole) * 1000):03d}"


def section_messages(run: SectionRun, *, gateway: str, road: str, direction: str, boot: str = "sim0001",
                     prefix: str = "rp/v1") -> list[tuple[str, bytes, bool]]:
    """(topic, payload, retain) in publishing order: the birth, then the intervals in time order."""
    topics = Topics(gateway, prefix)
    metrics: list[MetricDef] = []
    aliases: dict[tuple[str, int, str], int] = {}
    devices = []
    for station, km in run.stations:
        devices.append({"id": station, "tags": {"road": road, "direction": direction, "kp": _km_post(km)}})
        for lane in range(1, run.lanes + 1):
            for name, unit, kind in FIELDS:
                alias = len(metrics)
                aliases[(station, lane, name)] = alias
                metrics.append(MetricDef(alias, station, "traffic", name, unit, kind, {"lane": str(lane)}))
    t0 = round(run.intervals[0][0].t * 1000) if run.intervals else 0
    out = [(topics.birth, encode_birth(Birth(gateway, boot, 0, t0, "sim", "section", devices, metrics)), True)]
    seq = 1
    for row in run.intervals:
        for sample in row:
            if sample.lanes is None:
                continue  # the poll failed: the agent has nothing to send
            ts = round((sample.t + run.interval_s) * 1000) - 1  # the bin, read just before it ends
            readings = []
            for lane, x in enumerate(sample.lanes, start=1):
                values = {"volume": x.volume, "occupancy": x.occupancy_pct, "speed": x.speed_kmh,
                          "class_long": x.long}
                for name, _, _ in FIELDS:
                    value = values[name]
                    alias = aliases[(sample.station, lane, name)]
                    if value is None:
                        readings.append(Reading(alias, ts, None, Quality.BAD, "invalid"))
                    else:
                        readings.append(Reading(alias, ts, value))
            out.append((topics.data, encode_data(DataBatch(gateway, boot, seq % 65536, ts, readings)), False))
            seq += 1
    return out
