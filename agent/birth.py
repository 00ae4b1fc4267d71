"""The birth: what every alias means, plus the agent's own health metrics, in one retained message.

Health metrics get aliases after the catalogue's, under measurement `roadpulse_agent`, so a
collector decodes health envelopes with the same birth and can exclude them from reading counts.
`BirthStore` keeps each boot's birth on disk while the queue still holds records of that boot.
"""

from __future__ import annotations

import bisect
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import roadpulse
from agent.catalog import Catalog
from roadpulse.wire import Birth, MetricDef, TimeFlag

log = logging.getLogger(__name__)
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
    # End-to-end delivery (agent.confirmations; 0 with delivery = "broker"): agent.health.delivery_values.
    ("readings_confirmed", "", "i"),
    ("messages_resent", "", "i"),
    ("confirmations", "", "i"),
    ("unconfirmed_messages", "", "i"),
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


_BIRTH_FILE = re.compile(r"^(\d{1,20})-([0-9A-Za-z_.-]{1,64})\.msgpack$")


@dataclass(frozen=True, slots=True)
class StoredBirth:
    # Records of this boot are the queue ids from `first_id` up to the next boot's `first_id`.
    first_id: int
    boot: str
    path: Path


class BirthStore:
    """The encoded birth of every boot that may still have records in the durable queue.

    The backlog is replayed with the (boot, seq) it was sealed under, so its aliases are those
    of that boot's birth, which a collector may never have seen (the link was down all that
    boot long, or its cache was lost). One file per boot, `{first_id:020}-{boot}.msgpack`,
    written atomically before the boot's first batch is sealed. Queue ids grow across restarts,
    so a boot's records are one id range starting at `first_id`: the boot of a record is a
    bisect, and a birth can go once the queue holds no record of its range.
    """

    def __init__(self, directory: Path, entries: list[StoredBirth]) -> None:
        self._dir = directory
        self._entries = sorted(entries, key=lambda e: e.first_id)
        self._by_boot = {e.boot: e for e in self._entries}

    @classmethod
    def open(cls, directory: Path) -> BirthStore:
        directory.mkdir(parents=True, exist_ok=True)
        entries: list[StoredBirth] = []
        for path in directory.iterdir():
            match = _BIRTH_FILE.match(path.name)
            if match is None:
                # A temporary file a crash left behind (or a stranger): never a valid birth.
                if path.name.endswith(".tmp"):
                    path.unlink(missing_ok=True)
                continue
            entries.append(StoredBirth(int(match[1]), match[2], path))
        return cls(directory, entries)

    @property
    def boots(self) -> list[str]:
        return [e.boot for e in self._entries]

    def save(self, boot: str, first_id: int, payload: bytes) -> None:
        """Write the birth durably (temp file, fsync, rename, fsync of the folder). Raises OSError."""
        if boot in self._by_boot:
            return
        path = self._dir / f"{first_id:020d}-{boot}.msgpack"
        if _BIRTH_FILE.match(path.name) is None:
            raise ValueError(f"not a boot id: {boot!r}")
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            view = memoryview(payload)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        dir_fd = os.open(self._dir, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        entry = StoredBirth(first_id, boot, path)
        self._entries.append(entry)
        self._entries.sort(key=lambda e: e.first_id)
        self._by_boot[boot] = entry

    def load(self, boot: str) -> bytes | None:
        """The stored birth of `boot`, or None. `boot` may come from the network: it is only a key."""
        entry = self._by_boot.get(boot)
        if entry is None:
            return None
        try:
            return entry.path.read_bytes()
        except OSError as exc:
            log.warning("stored birth unreadable", extra={"boot": boot, "error": str(exc)})
            return None

    def boot_of(self, record_id: int) -> str | None:
        """The boot a queued record was sealed under, or None if it predates every stored birth."""
        index = bisect.bisect_right([e.first_id for e in self._entries], record_id) - 1
        return self._entries[index].boot if index >= 0 else None

    def prune(self, *, oldest_id: int | None, current_boot: str, current_first_id: int) -> list[str]:
        """Delete the births of earlier boots that have no record left; return their boots.

        `oldest_id` is the queue's oldest unacknowledged record (None: the queue is empty);
        records from `current_first_id` on belong to the running boot.
        """
        earlier = [e for e in self._entries if e.boot != current_boot]
        if not earlier:
            return []
        ends = [e.first_id for e in earlier[1:]] + [current_first_id]
        dropped: list[str] = []
        for entry, next_first in zip(earlier, ends, strict=True):
            end = min(next_first, current_first_id)
            # first_id >= end: left over from a queue folder that was wiped (ids restarted).
            if entry.first_id < end and oldest_id is not None and oldest_id < end:
                continue
            try:
                entry.path.unlink(missing_ok=True)
            except OSError as exc:
                log.warning("cannot delete a stored birth", extra={"boot": entry.boot, "error": str(exc)})
                continue
            dropped.append(entry.boot)
        if dropped:
            self._entries = [e for e in self._entries if e.boot not in dropped]
            self._by_boot = {e.boot: e for e in self._entries}
        return dropped
