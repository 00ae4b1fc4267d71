"""Self-metrics: counters the collector keeps, rendered as Prometheus text and as line protocol.

`/metrics` and `/healthz` are served by a tiny asyncio HTTP server (no framework: two
read-only endpoints). The same numbers go into InfluxDB as `roadpulse_collector`.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, fields

from collector.output.influxdb.lineproto import fields_line

log = logging.getLogger(__name__)

COLLECTOR_MEASUREMENT = "roadpulse_collector"
# Lines in these measurements are not readings: agent health (roadpulse_agent) and our own.
OWN_MEASUREMENTS = ("roadpulse_",)


class Histogram:
    """Fixed buckets, as Prometheus renders them: a p99 write latency needs more than the last one.

    Observed once per InfluxDB write or batch, never per reading.
    """

    __slots__ = ("bounds", "count", "counts", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.count = 0
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.count += 1
        self.total += value

    def prometheus(self, metric: str, labels: str) -> list[str]:
        out, running = [], 0
        for bound, n in zip((*self.bounds, float("inf")), self.counts, strict=True):
            running += n
            le = "+Inf" if bound == float("inf") else repr(float(bound))
            out.append(f'{metric}_bucket{{{labels},le="{le}"}} {running}')
        out.append(f"{metric}_sum{{{labels}}} {self.total!r}")
        out.append(f"{metric}_count{{{labels}}} {self.count}")
        return out


WRITE_SECONDS_BOUNDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_LINES_BOUNDS = (1, 10, 100, 500, 1000, 2500, 5000, 10000, 25000, 50000)


@dataclass(slots=True)
class Stats:
    messages_in: int = 0
    readings_in: int = 0
    health_in: int = 0  # agent health values received (stored in roadpulse_agent, not readings)
    readings_written: int = 0
    readings_spooled: int = 0
    readings_replayed: int = 0
    bad_values: int = 0
    readings_rejected: int = 0  # refused by InfluxDB (400/422, or part of a partial write): dead-lettered
    dead_letters: int = 0
    duplicates: int = 0
    gaps: int = 0
    rebirth_requests: int = 0
    parked: int = 0
    births: int = 0
    deaths: int = 0
    batches_written: int = 0
    write_errors: int = 0
    write_seconds_total: float = 0.0
    last_write_seconds: float = 0.0
    last_batch_lines: int = 0
    batch_lines_max: int = 0
    spool_depth: int = 0  # batches
    spool_readings: int = 0
    spool_bytes: int = 0
    spool_age_s: float = 0.0
    spool_full: bool = False
    influx_up: bool = True
    mqtt_connected: bool = False  # connected and subscriptions acknowledged
    acks_pending: int = 0
    oldest_unacked_s: float = 0.0  # age of the oldest message not yet acked
    decode_errors: int = 0  # messages whose handling raised an unexpected error: dead-lettered
    limits_hit: int = 0  # messages or births refused by a [limits] bound: dead-lettered
    births_evicted: int = 0  # births forgotten: a gateway had more than limits.births_per_gateway
    slow_messages: int = 0  # messages whose decoding took longer than limits.decode_max_ms
    dead_letters_repeated: int = 0  # a bad birth seen again (retained, after a reconnect): acked, not kept twice
    # readings per second replayed from the spool, over the last self-metrics interval
    replay_rate: float = 0.0
    extra: dict[str, int] = field(default_factory=dict)
    # Per InfluxDB write (a batch, or a part of one split after a 413), and per batch.
    write_latency: Histogram = field(default_factory=lambda: Histogram(WRITE_SECONDS_BOUNDS))
    batch_size: Histogram = field(default_factory=lambda: Histogram(BATCH_LINES_BOUNDS))

    def numbers(self) -> dict[str, int | float | bool]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in _NOT_NUMBERS}


_NOT_NUMBERS = {"extra", "write_latency", "batch_size"}


_HELP = {
    "messages_in": "MQTT messages received",
    "readings_written": "readings stored in InfluxDB (directly or by spool replay)",
    "dead_letters": "messages or batches kept in the dead letters instead of InfluxDB",
    "readings_rejected": "readings InfluxDB refused (400/422 or a partial write), kept in the dead letters",
    "duplicates": "data messages whose (gateway, boot, seq) was seen before",
    "gaps": "sequence numbers missing after the grace period",
    "rebirth_requests": "rebirth commands published",
    "spool_depth": "batches waiting in the on-disk spool",
    "oldest_unacked_s": "age of the oldest message not yet acked (/healthz fails past collector.unacked_max_age_s)",
    "decode_errors": "messages whose handling raised an unexpected error, dead-lettered as decode-error",
    "limits_hit": "messages or births refused by a [limits] bound, dead-lettered",
    "write_seconds_total": "time spent in InfluxDB writes",
    "write_seconds": "duration of one InfluxDB write (a batch, or a part of one split after a 413)",
    "batch_lines": "lines (readings and agent health values) per batch handed to the writer",
}
_COUNTERS = {"messages_in", "readings_in", "health_in", "readings_written", "readings_spooled", "readings_replayed",
             "bad_values", "readings_rejected", "dead_letters", "duplicates", "gaps", "rebirth_requests", "births",
             "deaths", "batches_written", "write_errors", "write_seconds_total", "decode_errors", "limits_hit",
             "dead_letters_repeated", "births_evicted", "slow_messages"}


def prometheus_text(stats: Stats, client_id: str) -> str:
    out = []
    for name, value in stats.numbers().items():
        metric = f"roadpulse_collector_{name}" + ("_total" if name in _COUNTERS
                                                  and not name.endswith("_total") else "")
        if name in _HELP:
            out.append(f"# HELP {metric} {_HELP[name]}")
        out.append(f"# TYPE {metric} {'counter' if name in _COUNTERS else 'gauge'}")
        out.append(f'{metric}{{collector="{client_id}"}} {float(value)!r}')
    for name, histogram in (("write_seconds", stats.write_latency), ("batch_lines", stats.batch_size)):
        metric = f"roadpulse_collector_{name}"
        out.append(f"# HELP {metric} {_HELP[name]}")
        out.append(f"# TYPE {metric} histogram")
        out += histogram.prometheus(metric, f'collector="{client_id}"')
    return "\n".join(out) + "\n"


def self_metrics_line(stats: Stats, client_id: str, ts_ms: int) -> str:
    return fields_line(COLLECTOR_MEASUREMENT, {"collector": client_id}, stats.numbers(), ts_ms)


async def serve_http(listen: str, stats: Callable[[], Stats], client_id: str,
                     healthy: Callable[[], bool], started: asyncio.Future[int] | None = None) -> None:
    """Serve until cancelled. `started` gets the bound port (useful with port 0)."""
    host, _, port = listen.rpartition(":")

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readline(), 5)
            while (await asyncio.wait_for(reader.readline(), 5)) not in (b"\r\n", b"\n", b""):
                pass
            parts = request.decode("latin-1").split()
            path = parts[1] if len(parts) > 1 else "/"
            if path == "/metrics":
                status, ctype, body = "200 OK", "text/plain; version=0.0.4", prometheus_text(
                    stats(), client_id)
            elif path == "/healthz":
                ok = healthy()
                status = "200 OK" if ok else "503 Service Unavailable"
                ctype = "application/json"
                s = stats()
                body = json.dumps({"ok": ok, "mqtt_connected": s.mqtt_connected, "influx_up": s.influx_up,
                                   "spool_depth": s.spool_depth, "spool_full": s.spool_full,
                                   "oldest_unacked_s": round(s.oldest_unacked_s, 3)}) + "\n"
            else:
                status, ctype, body = "404 Not Found", "text/plain", "not found\n"
            data = body.encode()
            writer.write(f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {len(data)}\r\n"
                         f"Connection: close\r\n\r\n".encode() + data)
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    server = await asyncio.start_server(handle, host or "127.0.0.1", int(port))
    bound = server.sockets[0].getsockname()[1]
    log.info("http listening", extra={"host": host, "port": bound})
    if started is not None and not started.done():
        started.set_result(bound)
    async with server:
        await server.serve_forever()
