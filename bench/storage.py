"""Section 5: bytes on influxd's disk per reading after a full compaction.

One simulated day (quick: one hour) of the g60 scenario's detector stations (11 stations x
28 points every 30 s, ~3/4 of g60's readings; bench/wire_size.py makes their values and the
agent's catalogue, batching and scaled-int encoding) is published with backdated
timestamps through the broker and a collector into a fresh influxd of its own.

InfluxDB 1.6 has no command to force a compaction; it snapshots the cache to TSM and fully
compacts a shard once the shard has had no write for `cache-snapshot-write-cold-duration`
and `compact-full-write-cold-duration` (defaults 10 m and 4 h). Its INFLUXDB_DATA_* environment
overrides set both to a second here; the bench stops the collector (its self-metrics are
writes), then waits until the WAL is empty and the TSM files stop changing, and counts
every file of the database (TSM, index, WAL).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from bench.stack import BenchError, Collector, create_db, stored, wait_stored
from bench.wire_size import T0, make_readings, roadpulse_messages
from roadpulse.services import Influxd, Mosquitto
from roadpulse.wire import Birth, Topics, encode_birth

COLD = {"INFLUXDB_DATA_CACHE_SNAPSHOT_WRITE_COLD_DURATION": "1s",
        "INFLUXDB_DATA_COMPACT_FULL_WRITE_COLD_DURATION": "1s"}
STATIONS = 11


def _files(root: Path) -> dict[str, int]:
    """Apparent size of every file under `root`."""
    return {str(p): p.stat().st_size for p in root.rglob("*") if p.is_file()} if root.exists() else {}


def _allocated(names: list[str]) -> int:
    """Bytes the files really take on disk (blocks): the series file's segments are preallocated and sparse."""
    return sum(Path(name).stat().st_blocks * 512 for name in names)


def wait_compacted(influx: Influxd, db: str, timeout: float) -> dict[str, int]:
    """Files of `db` once the WAL holds nothing and the TSM set has been stable for 3 s."""
    deadline = time.monotonic() + timeout
    last: dict[str, int] = {}
    stable_since = time.monotonic()
    while time.monotonic() < deadline:
        files = {**_files(influx.data_dir / "data" / db), **_files(influx.data_dir / "wal" / db)}
        wal = sum(size for name, size in files.items() if name.endswith(".wal"))
        if files != last:
            last, stable_since = files, time.monotonic()
        elif wal == 0 and time.monotonic() - stable_since >= 3:
            return files
        time.sleep(0.5)
    raise BenchError(f"influxd did not finish compacting {db} in {timeout} s")


def storage(work: Path, broker: Mosquitto, hours: float) -> dict[str, Any]:
    polls, metrics = make_readings(STATIONS, int(hours * 120))
    decimals = {m.alias: m.decimals for m in metrics if m.decimals is not None}
    messages = roadpulse_messages(polls, 200, 16 * 1024, STATIONS, decimals)
    readings = sum(len(p) for p in polls)
    saved = {k: os.environ.get(k) for k in COLD}
    os.environ.update(COLD)
    influx = Influxd(work / "influxd-storage")
    try:
        influx.start()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    try:
        db, prefix = "storage", "bstore/v1"
        create_db(influx.url, db)
        collector = Collector(work / "storage-collector", broker.url, influx.url, db, prefix, "bench-storage",
                              self_metrics_s=3600.0).start()
        try:
            devices = sorted({m.device for m in metrics})
            birth = Birth("gw-bench", "0123456789abcdef", 0, T0, "bench", "bench",
                          [{"id": d, "profile": "vds_modbus", "driver": "modbus", "tags": {}} for d in devices],
                          metrics)
            topics = Topics("gw-bench", prefix)
            url = urlparse(broker.url)
            client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-storage-pub")
            client.max_inflight_messages_set(100)
            client.connect(url.hostname or "127.0.0.1", url.port or 1883)
            client.loop_start()
            client.publish(topics.birth, encode_birth(birth), qos=1, retain=True).wait_for_publish(10)
            time.sleep(0.3)
            infos = [client.publish(topics.data, m, qos=1) for m in messages]
            for info in infos:
                info.wait_for_publish(60)
            client.loop_stop()
            client.disconnect()
            count, _ = wait_stored(influx.url, db, readings, timeout=300)
        finally:
            collector.stop()
        files = wait_compacted(influx, db, timeout=120)
        count = stored(influx.url, db)
        allocated = _allocated(list(files))
        series = _allocated([name for name in files if "/_series/" in name])
    finally:
        influx.stop()
    tsm = sum(size for name, size in files.items() if name.endswith(".tsm"))
    return {"hours": hours, "stations": STATIONS, "readings": readings, "stored": count, "lost": readings - count,
            "tsm_files": sum(name.endswith(".tsm") for name in files), "tsm_bytes_per_reading": tsm / readings,
            "bytes_per_reading": allocated / readings, "series_file_bytes": series,
            "apparent_bytes": sum(files.values())}
