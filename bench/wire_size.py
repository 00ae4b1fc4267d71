"""Bytes on the wire per reading: roadpulse msgpack vs JSON-per-reading vs Sparkplug B protobuf.

    python bench/wire_size.py [--stations N] [--polls N]

The readings are those of the shipped detector profile (config/profiles/vds_modbus.toml:
4 lanes x volume/occupancy/speed/3 length classes + 4 station values, 28 points) polled
every 30 s, with plausible values. They go through the agent's own batcher and encoder,
exactly as the agent seals them (shipped [publish] defaults), and are encoded with the
catalogue's decimals as the agent encodes them (scaled ints, docs/protocol.md). Sparkplug B is encoded by hand
(no protobuf package needed): NDATA with aliases, per-metric timestamp and datatype, which
is what Sparkplug store-and-forward needs to keep each reading's time.
"""

from __future__ import annotations

import argparse
import json
import random
import struct
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent.catalog import build_catalog
from agent.config import AgentConfig
from agent.queue.batcher import Batcher
from roadpulse.wire import DataBatch, MetricDef, Reading, TimeFlag, encode_data

T0 = 1_795_000_000_000


def station_values(rng: random.Random, name: str, poll: int) -> int | float:
    """Plausible register values of one 30-s bin (values as the modbus driver produces them)."""
    if name == "interval_s":
        return 30
    if name == "bin_seq":
        return 1_000_000 + poll
    if name == "device_clock":
        return T0 // 1000 + 30 * poll
    if name == "uptime_s":
        return 3_600_000 + 30 * poll
    field = name.split("_", 1)[1]
    volume = rng.randint(0, 25)
    return {
        "volume": volume,
        "occupancy": round(min(100.0, volume * rng.uniform(0.3, 0.6)), 2),
        "speed": rng.randint(60, 118),
        "short": max(0, volume - rng.randint(0, 5)),
        "medium": rng.randint(0, 3),
        "long": rng.randint(0, 2),
    }[field]


def make_readings(stations: int, polls: int, seed: int = 1) -> tuple[list[list[Reading]], list[MetricDef]]:
    config = AgentConfig.model_validate({
        "agent": {"gateway_id": "gw-bench"},
        "devices": [{"id": f"vds{i:02d}", "profile": "vds_modbus", "interval_s": 30, "align": True,
                     "tcp": {"host": "10.0.0.1"}, "unit": i + 1} for i in range(stations)],
    })
    catalog = build_catalog(config, None)
    rng = random.Random(seed)
    polls_out: list[list[Reading]] = []
    for poll in range(polls):
        for k, entry in enumerate(catalog.devices):
            # Devices on one gateway are read one after the other: a few ms apart.
            ts = T0 + 30_000 * poll + 12 * k
            polls_out.append([Reading(alias, ts, station_values(rng, name, poll))
                              for name, alias in entry.aliases.items()])
    return polls_out, catalog.metrics


def roadpulse_messages(polls: list[list[Reading]], max_readings: int, max_bytes: int,
                       stations: int, decimals: dict[int, int] | None = None) -> list[bytes]:
    """`decimals` as the agent passes them (alias -> d): scaled ints where the birth declares them."""
    batcher = Batcher(max_readings, max_bytes, 1.0)
    messages: list[bytes] = []
    seq = 0
    for i, readings in enumerate(polls):
        # All stations of one 30-s slot arrive within the batch age; the slot's end seals it.
        now = (i // stations) * 30.0
        for sealed in batcher.add(readings, TimeFlag.NONE, 0, now):
            messages.append(encode_data(DataBatch("gw-bench", "0123456789abcdef", seq, T0, sealed.readings),
                                        decimals))
            seq += 1
        if (i + 1) % stations == 0:
            last = batcher.seal()
            if last:
                messages.append(encode_data(DataBatch("gw-bench", "0123456789abcdef", seq, T0, last.readings),
                                            decimals))
                seq += 1
    return messages


def json_per_reading(readings: list[Reading], metrics: dict[int, MetricDef]) -> list[bytes]:
    out = []
    for r in readings:
        m = metrics[r.alias]
        out.append(json.dumps({"gateway": "gw-bench", "device": m.device, "measurement": m.measurement,
                               "field": m.field, "tags": m.tags, "ts": r.ts_ms, "value": r.value},
                              separators=(",", ":")).encode())
    return out


# ---- Sparkplug B by hand (sparkplug_b.proto: Payload{1 timestamp, 2 metrics, 3 seq}) ------------


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _key(field: int, wire: int) -> bytes:
    return _varint(field << 3 | wire)


def sparkplug_metric(r: Reading, mtype: str, with_timestamp: bool) -> bytes:
    body = _key(2, 0) + _varint(r.alias)
    if with_timestamp:
        body += _key(3, 0) + _varint(r.ts_ms)
    if isinstance(r.value, bool):
        body += _key(4, 0) + _varint(11) + _key(14, 0) + _varint(int(r.value))
    elif isinstance(r.value, int) and mtype == "i":
        body += _key(4, 0) + _varint(7) + _key(10, 0) + _varint(r.value & 0xFFFFFFFF)  # UInt32
    else:
        body += _key(4, 0) + _varint(10) + _key(13, 1) + struct.pack("<d", float(r.value or 0.0))  # Double
    return _key(2, 2) + _varint(len(body)) + body


def sparkplug_payload(readings: list[Reading], metrics: dict[int, MetricDef], seq: int,
                      with_timestamp: bool = True) -> bytes:
    out = _key(1, 0) + _varint(readings[0].ts_ms)
    for r in readings:
        out += sparkplug_metric(r, metrics[r.alias].type, with_timestamp)
    return out + _key(3, 0) + _varint(seq % 256)


def mqtt_publish_overhead(topic: str, payload_len: int, qos: int = 1) -> int:
    """Fixed header + topic + packet id of an MQTT 3.1.1 PUBLISH (the PUBACK adds 4 bytes back)."""
    remaining = 2 + len(topic) + (2 if qos else 0) + payload_len
    length_bytes = 1 if remaining < 128 else 2 if remaining < 16384 else 3 if remaining < 2097152 else 4
    return 1 + length_bytes + 2 + len(topic) + (2 if qos else 0)


def report(stations: int, polls: int) -> dict[str, float]:
    polls_readings, metric_list = make_readings(stations, polls)
    metrics = {m.alias: m for m in metric_list}
    readings = [r for p in polls_readings for r in p]
    n = len(readings)
    decimals = {m.alias: m.decimals for m in metric_list if m.decimals is not None}
    rp = roadpulse_messages(polls_readings, 200, 16 * 1024, stations, decimals)
    rp_payload = sum(map(len, rp))
    # The same without scaled ints (every float as float32 or float64), for comparison.
    unscaled_payload = sum(map(len, roadpulse_messages(polls_readings, 200, 16 * 1024, stations)))
    rp_topic = "rp/v1/gw-bench/data"
    rp_wire = rp_payload + sum(mqtt_publish_overhead(rp_topic, len(m)) for m in rp)
    js = json_per_reading(readings, metrics)
    js_payload = sum(map(len, js))
    js_topic = "roadpulse/gw-bench/vds00/traffic"
    js_wire = js_payload + sum(mqtt_publish_overhead(js_topic, len(m)) for m in js)
    # Sparkplug: one NDATA per device per poll (DDATA per device is what Sparkplug edge nodes send).
    sp = [sparkplug_payload(p, metrics, i) for i, p in enumerate(polls_readings)]
    sp_nots = [sparkplug_payload(p, metrics, i, with_timestamp=False) for i, p in enumerate(polls_readings)]
    sp_topic = "spBv1.0/roads/DDATA/gw-bench/vds00"
    sp_wire = sum(len(m) + mqtt_publish_overhead(sp_topic, len(m)) for m in sp)
    return {
        "stations": stations, "readings": n, "roadpulse_messages": len(rp),
        "roadpulse_payload_B_per_reading": rp_payload / n,
        "roadpulse_wire_B_per_reading": rp_wire / n,
        "roadpulse_unscaled_payload_B_per_reading": unscaled_payload / n,
        "roadpulse_unscaled_wire_B_per_reading": (unscaled_payload + rp_wire - rp_payload) / n,
        "json_payload_B_per_reading": js_payload / n,
        "json_wire_B_per_reading": js_wire / n,
        "sparkplug_payload_B_per_reading": sum(map(len, sp)) / n,
        "sparkplug_no_metric_ts_payload_B_per_reading": sum(map(len, sp_nots)) / n,
        "sparkplug_wire_B_per_reading": sp_wire / n,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--polls", type=int, default=120, help="30-s polls per station (120 = 1 hour)")
    parser.add_argument("--stations", type=int, nargs="*", default=[1, 4])
    args = parser.parse_args()
    rows = [report(s, args.polls) for s in args.stations]
    keys = list(rows[0])
    width = max(map(len, keys))
    for key in keys:
        cells = "".join(f"{row[key]:>12.2f}" if isinstance(row[key], float) else f"{row[key]:>12}"
                        for row in rows)
        print(f"{key:<{width}} {cells}")
    target = rows[0]["roadpulse_wire_B_per_reading"]
    print(f"\ntarget <= 8 B/reading on the wire for one detector station: "
          f"{'met' if target <= 8 else 'NOT met'} ({target:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
