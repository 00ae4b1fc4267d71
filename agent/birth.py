"""The birth: what every alias means, plus the agent's own health metrics, in one retained message.

Health metrics get aliases after the catalogue's, under measurement `roadpulse_agent`, so a
collector decodes health envelopes with the same birth and can exclude them from reading counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import roadpulse
from agent.catalog import Catalog
from roadpulse.wire import Birth, MetricDef, TimeFlag

HEALTH_MEASUREMENT = "roadpulse_agent"
# The pseudo-device that carries gateway-wide health metrics.
AGENT_DEVICE = "agent"

# (field, unit, type) of gateway-wide health metrics.
GATEWAY_HEALTH: tuple[tuple[str, str, str], ...] = (
    ("queue_readings", "", "i"),
    ("queue_bytes", "B", "i"),
    ("oldest_unsent_age_s", "s", "f"),
    ("readings_taken", "", "i"),
    ("readings_acked", "", "i"),
    ("readings_evicted", "", "i"),
    ("readings_dropped", "", "i"),
    ("messages_published", "", "i"),
    ("publish_latency_ms", "ms", "f"),
    ("publish_latency_max_ms", "ms", "f"),
    ("reconnects", "", "i"),
    ("storage_errors", "", "i"),
    ("queue_damaged_bytes", "B", "i"),
    ("disk_bytes_written", "B", "i"),
    ("clock_flags", "", "i"),
    ("clock_jumps", "", "i"),
    ("cpu_percent", "%", "f"),
    ("rss_bytes", "B", "i"),
    ("disk_free_bytes", "B", "i"),
)
# (field, unit, type) per configured device.
DEVICE_HEALTH: tuple[tuple[str, str, str], ...] = (
    ("polls", "", "i"),
    ("poll_errors", "", "i"),
    ("poll_overruns", "", "i"),
)


@dataclass(frozen=True, slots=True)
class HealthAliases:
    gateway: dict[str, int]
    # device id -> field -> alias
    devices: dict[str, dict[str, int]]
    metrics: list[MetricDef]


def health_aliases(catalog: Catalog) -> HealthAliases:
    alias = max((m.alias for m in catalog.metrics), default=-1) + 1
    metrics: list[MetricDef] = []
    gateway: dict[str, int] = {}
    for name, unit, kind in GATEWAY_HEALTH:
        metrics.append(MetricDef(alias, AGENT_DEVICE, HEALTH_MEASUREMENT, name, unit, kind, {}))
        gateway[name] = alias
        alias += 1
    devices: dict[str, dict[str, int]] = {}
    for entry in catalog.devices:
        per: dict[str, int] = {}
        for name, unit, kind in DEVICE_HEALTH:
            metrics.append(MetricDef(alias, entry.device.id, HEALTH_MEASUREMENT, name, unit, kind, {}))
            per[name] = alias
            alias += 1
        devices[entry.device.id] = per
    return HealthAliases(gateway, devices, metrics)


def device_list(catalog: Catalog) -> list[dict[str, Any]]:
    return [
        {"id": e.device.id, "profile": e.device.profile, "driver": e.profile.driver,
         "tags": {**e.profile.tags, **e.device.tags}}
        for e in catalog.devices
    ]


def make_birth(catalog: Catalog, health: HealthAliases, *, gateway: str, boot: str, next_seq: int,
               ts_ms: int, time_flags: TimeFlag) -> Birth:
    return Birth(
        gateway=gateway, boot=boot, seq=next_seq, ts_ms=ts_ms, agent_version=roadpulse.__version__,
        config_hash=catalog.config_hash, devices=device_list(catalog),
        metrics=[*catalog.metrics, *health.metrics], time_flags=time_flags,
    )
