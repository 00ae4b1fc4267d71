"""The targets of issue #13, the table of every figure next to its target, and docs/performance.md.

The table and the document are made from the results JSON only, so `python -m bench
--docs-only` can rewrite the document from bench/results/latest.json without a new run.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Figure:
    label: str
    unit: str
    get: Callable[[dict[str, Any]], float | None]
    target: str = ""
    ok: Callable[[float], bool] | None = None
    digits: int = 2


def _at(*keys: str) -> Callable[[dict[str, Any]], float | None]:
    def get(results: dict[str, Any]) -> float | None:
        node: Any = results
        for key in keys:
            if not isinstance(node, dict) or key not in node:
                return None
            node = node[key]
        return float(node) if isinstance(node, int | float) else None
    return get


def _ratio(top: tuple[str, ...], bottom: tuple[str, ...]) -> Callable[[dict[str, Any]], float | None]:
    def get(results: dict[str, Any]) -> float | None:
        a, b = _at(*top)(results), _at(*bottom)(results)
        return a / b if a is not None and b else None
    return get


def total_lost(results: dict[str, Any]) -> float | None:
    parts = [_at("system", "collector", "lost")(results), _at("system", "collector_at_sustained", "lost")(results),
             _at("limits", "lost")(results),
             _at("overload", "lost")(results), _at("drain", "lost")(results), _at("latency", "lost")(results),
             _at("storage", "lost")(results)]
    return None if any(p is None for p in parts) else sum(p for p in parts if p is not None)


FIGURES = [
    Figure("whole-system CPU per reading (collector + mosquitto + influxd)", "µs",
           _at("system", "collector", "cpu_us", "total"), "≤ 2.5 µs", lambda v: v <= 2.5),
    Figure("  of which the collector's own CPU", "µs", _at("system", "collector", "cpu_us", "collector"),
           "≤ 0.8 µs", lambda v: v <= 0.8),
    Figure("  of which mosquitto", "µs", _at("system", "collector", "cpu_us", "mosquitto")),
    Figure("  of which influxd", "µs", _at("system", "collector", "cpu_us", "influxd")),
    Figure("  the same less each process's idle CPU (marginal cost)", "µs",
           _at("system", "collector", "marginal_us", "total")),
    Figure("  marginal collector CPU", "µs", _at("system", "collector", "marginal_us", "collector")),
    Figure("whole-system CPU per reading at 90 % of the sustained load", "µs",
           _at("system", "collector_at_sustained", "cpu_us", "total")),
    Figure("  of which the collector's own CPU (at 90 %)", "µs",
           _at("system", "collector_at_sustained", "cpu_us", "collector")),
    Figure("naive pipeline, whole system (paho + one /write per message)", "µs",
           _at("system", "naive", "cpu_us", "total")),
    Figure("influxdb-client batching API, whole system", "µs", _at("system", "client", "cpu_us", "total")),
    Figure("whole-system CPU vs the naive pipeline, same run", "×", _at("system", "ratio_vs_naive"), "≤ 0.2",
           lambda v: v <= 0.2, 3),
    Figure("whole-system CPU vs influxdb-client, same run", "×", _at("system", "ratio_vs_client"), digits=3),
    Figure("broker alone (a subscriber that only counts)", "readings/s", _at("limits", "broker_only_per_s"),
           digits=0),
    Figure("influxd raw ingest of the same line protocol", "readings/s", _at("limits", "raw_ingest_per_s"),
           digits=0),
    Figure("collector throughput (backlog drain)", "readings/s", _at("limits", "collector_per_s"), digits=0),
    Figure("collector throughput / lower of the two limits", "×", _at("limits", "fraction_of_lower"), "≥ 0.6",
           lambda v: v >= 0.6),
    Figure("one `sim load` publishing alone", "readings/s", _at("limits", "publisher_per_s"), digits=0),
    Figure("sustained load (lower of collector drain and publisher)", "readings/s", _at("sustained_per_s"),
           digits=0),
    Figure("overload: offered (broker-acknowledged) / sustained load, 2× asked", "×",
           _at("overload", "offered_factor")),
    Figure("latency phase: offered load / sustained load (½ asked)", "×", _ratio(("latency", "offered_per_s"),
                                                                              ("sustained_per_s",))),
    Figure("readings lost, every phase (InfluxDB count vs sent)", "", total_lost, "0", lambda v: v == 0, 0),
    Figure("drain rate after the InfluxDB outage / live rate", "×", _at("drain", "multiple"), "≥ 3",
           lambda v: v >= 3),
    Figure("latency sensor → queryable at 50 % load, p50", "s", _at("latency", "p50_s")),
    Figure("latency sensor → queryable at 50 % load, p99", "s", _at("latency", "p99_s"), "≤ 2 s", lambda v: v <= 2),
    Figure("InfluxDB disk per reading after full compaction", "B", _at("storage", "bytes_per_reading"), "≤ 2 B",
           lambda v: v <= 2),
    Figure("  of which TSM files", "B", _at("storage", "tsm_bytes_per_reading")),
    Figure("agent RSS with 100 sensors", "MB", _at("agent", "rss_mb"), "≤ 40 MB", lambda v: v <= 40, 1),
    Figure("agent CPU per reading", "µs", _at("agent", "cpu_us_per_reading"), "≤ 20 µs", lambda v: v <= 20, 1),
    Figure("agent start to first publish (birth)", "s", _at("agent", "first_publish_s"), "≤ 2 s", lambda v: v <= 2),
    Figure("agent start to first data message", "s", _at("agent", "first_data_s")),
    Figure("wire bytes per reading, MQTT framing included", "B", _at("queue", "wire", "roadpulse_wire_B_per_reading"),
           "≤ 8 B", lambda v: v <= 8),
    Figure("  same readings as JSON per reading", "B", _at("queue", "wire", "json_wire_B_per_reading")),
    Figure("  same readings as Sparkplug B", "B", _at("queue", "wire", "sparkplug_wire_B_per_reading")),
    Figure("gateway disk writes (queue) / payload bytes", "×", _at("queue", "disk_vs_payload"), "≤ 3",
           lambda v: v <= 3),
    Figure("  kernel write_bytes / payload bytes", "×", _at("queue", "kernel_vs_payload")),
    Figure("  live agent, kernel write_bytes per reading", "B", _at("agent", "process_write_bytes_per_reading")),
    Figure("arm64 under qemu: encode loop CPU / native", "×", _at("emulated", "ratio_to_native")),
]


def rows(results: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    out = []
    for f in FIGURES:
        value = f.get(results)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            text, verdict = "n/a", "miss" if f.ok else "—"
        else:
            text = f"{value:,.{f.digits}f} {f.unit}".strip()
            verdict = ("pass" if f.ok(value) else "MISS") if f.ok else "—"
        out.append((f.label, text, f.target or "—", verdict))
    return out


def missing(results: dict[str, Any]) -> list[str]:
    """Figures with no value: a quick run must fill every one (the emulated one may be skipped)."""
    return [f.label for f in FIGURES if f.get(results) is None and not f.label.startswith("arm64")]


def table_text(results: dict[str, Any]) -> str:
    data = rows(results)
    widths = [max(len(r[i]) for r in [*data, ("figure", "value", "target", "")]) for i in range(4)]
    lines = [f"{'figure':<{widths[0]}}  {'value':>{widths[1]}}  {'target':<{widths[2]}}  result"]
    lines += [f"{a:<{widths[0]}}  {b:>{widths[1]}}  {c:<{widths[2]}}  {d}" for a, b, c, d in data]
    return "\n".join(lines)


def table_markdown(results: dict[str, Any]) -> str:
    lines = ["| figure | value | target | result |", "|---|---:|---|---|"]
    lines += [f"| {'↳ ' if a.startswith(' ') else ''}{a.strip()} | {b} | {c} | {d} |" for a, b, c, d in rows(results)]
    return "\n".join(lines)
