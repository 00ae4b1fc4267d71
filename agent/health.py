"""The agent's own metrics: sampled from /proc and the queue, sent as a `health` envelope.

Counters are metrics, not log lines: the collector stores them under measurement
`roadpulse_agent` (aliases from agent.birth), so stored-reading counts can exclude them.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from agent.birth import HealthAliases
from agent.stats import AgentStats
from roadpulse.wire import Reading

Number = int | float


@dataclass(slots=True)
class ProcessSampler:
    """CPU share since the previous sample, resident memory, and free space under the queue."""

    data_dir: Path
    _cpu: float | None = None
    _at: float = field(default_factory=time.monotonic)

    def sample(self) -> dict[str, Number]:
        times = os.times()
        cpu = times.user + times.system
        now = time.monotonic()
        percent = 0.0
        if self._cpu is not None and now > self._at:
            percent = 100.0 * (cpu - self._cpu) / (now - self._at)
        self._cpu, self._at = cpu, now
        values: dict[str, Number] = {"cpu_percent": round(percent, 2), "rss_bytes": rss_bytes()}
        try:
            st = os.statvfs(self.data_dir)
            values["disk_free_bytes"] = st.f_bavail * st.f_frsize
        except OSError:
            pass
        return values


def rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def health_readings(aliases: HealthAliases, gateway_values: Mapping[str, Number],
                    device_values: Mapping[str, Mapping[str, Number]], ts_ms: int) -> list[Reading]:
    """Readings for the health envelope; unknown names are skipped (the birth defines what exists)."""
    readings = [Reading(aliases.gateway[k], ts_ms, v) for k, v in gateway_values.items() if k in aliases.gateway]
    for device, values in device_values.items():
        per = aliases.devices.get(device, {})
        readings.extend(Reading(per[k], ts_ms, v) for k, v in values.items() if k in per)
    return readings


def delivery_values(stats: AgentStats) -> dict[str, Number]:
    """End-to-end delivery, for operators: a queue that does not drain while `unconfirmed_messages`
    stays up and `messages_resent` climbs means collectors that store but never confirm (older
    than confirmations, or a broker ACL without the ack topic), or a share stranded on a dead member.
    Cumulative since start, except `unconfirmed_messages` (held now). Taken after `Outbox.refresh`."""
    return {"readings_confirmed": stats.readings_confirmed, "messages_resent": stats.messages_resent,
            "confirmations": stats.confirmations, "unconfirmed_messages": stats.unconfirmed_messages}


def latency_summary(samples: list[float]) -> tuple[float, float]:
    """(mean, max) of PUBACK latencies since the last health message, in ms."""
    if not samples:
        return 0.0, 0.0
    return round(sum(samples) / len(samples), 3), round(max(samples), 3)
