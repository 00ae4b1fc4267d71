"""The agent's counters, in one object: the runner, the intake, the outbox and the publisher all count here.

Queue depth and disk figures are a snapshot of the queue's own stats, taken by
`Outbox.refresh` (the queue stays the source of truth for them).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from agent.schedule import DeviceStats


@dataclass(slots=True)
class AgentStats:
    # Taking readings (agent.intake)
    readings_taken: int = 0
    # Readings never persisted because the disk refused them for too long (never counted as taken).
    readings_dropped: int = 0
    storage_errors: int = 0
    # The queue, as last refreshed (agent.outbox)
    queue_readings: int = 0
    queue_bytes: int = 0
    readings_evicted: int = 0
    disk_bytes_written: int = 0
    # The MQTT session (agent.publisher)
    connected: bool = False
    connects: int = 0
    reconnects: int = 0
    messages_published: int = 0
    messages_replayed: int = 0
    readings_acked: int = 0
    # End-to-end delivery (agent.confirmations): settled by a collector's confirmation, sent again, held.
    readings_confirmed: int = 0
    messages_resent: int = 0
    confirmations: int = 0
    unconfirmed_messages: int = 0
    births: int = 0
    rebirths: int = 0
    # Births of earlier boots sent ahead of their backlog or on a rebirth naming them.
    earlier_births: int = 0
    bad_commands: int = 0
    undecodable_records: int = 0
    # Publish-to-PUBACK times since the last health message (drained by it).
    latency_ms: list[float] = field(default_factory=list)
    health_published: int = 0
    devices: dict[str, DeviceStats] = field(default_factory=dict)
