"""Test traffic for the collector: births and data encoded with roadpulse.wire, published with paho."""

from __future__ import annotations

import os
import random
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from roadpulse.wire import Birth, DataBatch, MetricDef, Quality, Reading, Topics, encode_birth, encode_data

T0 = 1_700_000_000_000


# Fields of one lane, in poll order, when several metrics share a series (integers, then floats).
LANE_FIELDS = ("volume", "speed", "class_short", "occupancy", "class_long", "headway", "class_medium", "gap")


def make_birth(gateway: str, boot: str, metrics: int = 20, *, decimals: int | None = None,
               per_series: int = 1) -> Birth:
    """Half integer metrics (volume), half floats (speed); `decimals` declares the floats scaled.

    `per_series` > 1: that many consecutive aliases are fields of one lane (one series, one
    line per poll: `LANE_FIELDS`, integer and float alternating); 1: every alias its own series.
    """
    devices = [{"id": f"vds{d}", "profile": "vds", "driver": "modbus",
                "tags": {"site": f"S{d}", "road": "G15", "direction": "N", "kp": f"{100 + d}.5"}}
               for d in range(max(1, metrics // 5))]
    defs = []
    for alias in range(metrics):
        series, position = (alias, alias) if per_series == 1 else divmod(alias, per_series)
        device = f"vds{series // 5 % len(devices)}"
        kind = "if"[position % 2]
        name = ("volume" if kind == "i" else "speed") if per_series == 1 else LANE_FIELDS[position]
        defs.append(MetricDef(alias, device, "traffic", name, "veh" if kind == "i" else "km/h", kind,
                              {"lane": str(series % 5)}, decimals if kind == "f" else None))
    return Birth(gateway, boot, 0, T0, "0.1.0", "abcdefabcdef", devices, defs)


def make_batch(birth: Birth, seq: int, per_message: int = 50, *, rng: random.Random | None = None,
               t0: int = T0, per_poll: int = 1) -> DataBatch:
    """Readings whose (series, field, time) are all distinct, so every reading is its own point.

    `per_poll` readings share one timestamp, as readings of one device poll do (dt = 0).
    """
    rng = rng or random.Random(seq)
    readings = []
    n = len(birth.metrics)
    for k in range(per_message):
        metric = birth.metrics[k % n]
        ts = t0 + seq * 1000 + k // per_poll
        if metric.type == "i":
            readings.append(Reading(metric.alias, ts, rng.randrange(0, 60)))
        elif k % 17 == 3:
            readings.append(Reading(metric.alias, ts, None, Quality.BAD, "timeout"))
        else:
            readings.append(Reading(metric.alias, ts, round(rng.uniform(20, 120), 1)))
    return DataBatch(birth.gateway, birth.boot, seq, ts, readings)


def boot_id() -> str:
    return os.urandom(8).hex()


class Publisher:
    """A QoS 1 publisher with paho's own thread (test code only)."""

    def __init__(self, url: str, client_id: str = "test-publisher") -> None:
        host, port = url.split("://")[1].split(":")
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5)
        self.client.max_inflight_messages_set(100)
        self.client.connect(host, int(port))
        self.client.loop_start()

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> paho.MQTTMessageInfo:
        return self.client.publish(topic, payload, qos=1, retain=retain)

    def birth(self, birth: Birth, prefix: str = "rp/v1") -> None:
        self.publish(Topics(birth.gateway, prefix).birth, encode_birth(birth), retain=True).wait_for_publish(10)

    def data(self, batches: Iterable[DataBatch], prefix: str = "rp/v1", pace_s: float = 0.0,
             decimals: Mapping[int, int] | None = None) -> int:
        """Publish the batches; `decimals` (alias -> d, from the birth) scales values as the agent does."""
        infos = []
        readings = 0
        for batch in batches:
            infos.append(self.publish(Topics(batch.gateway, prefix).data, encode_data(batch, decimals)))
            readings += len(batch.readings)
            if pace_s:
                time.sleep(pace_s)
        for info in infos:
            info.wait_for_publish(30)
        return readings

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def collector_toml(work: Path, mqtt_url: str, influx_url: str, *, client_id: str = "c1",
                   share_group: str | None = None, extra_influx: str = "", spool_max: int = 1 << 26,
                   park_timeout_s: float = 3.0, http: str = "127.0.0.1:0") -> Path:
    path = work / f"{client_id}.toml"
    share = f'share_group = "{share_group}"\n' if share_group else ""
    path.write_text(f"""
[collector]
client_id = "{client_id}"
data_dir = "{client_id}-data"
park_timeout_s = {park_timeout_s}
gap_grace_s = 5.0
self_metrics_interval_s = 1.0

[mqtt]
url = "{mqtt_url}"
{share}session_expiry_s = 3600

[influx]
url = "{influx_url}"
batch_max_lines = 2000
batch_max_age_s = 0.2
timeout_s = 3.0
{extra_influx}

[spool]
max_bytes = {spool_max}

[http]
listen = "{http}"
""")
    return path
