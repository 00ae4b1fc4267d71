"""End-to-end confirmations (issue #10): tell each agent which of its batches are durable here.

The collector PUBACKs a message once its content is durable, but a PUBACK goes to the broker,
which may lose what it holds (restarted empty, a stranded shared-subscription share). So every
data message's `(gateway, boot, seq)` is noted when it arrives (`note`, from the ingest), and
once the batch carrying its ticket is written, spooled or dead-lettered (`settled`, from the
sink), the seq goes into a per-gateway `Coalescer`; `run` publishes at most one confirmation
per gateway per interval on `{prefix}/{gw}/ack` (roadpulse.wire.confirm), QoS 1.

Kept out of the ingest and the sink on purpose: they call three hooks (see docs/reliability.md,
*Collector hook points*) and know nothing else about confirmations.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from collector.acks import Ticket
from roadpulse.wire import Topics, parse_topic
from roadpulse.wire.confirm import Confirmation, Ranges, encode_confirmation, merge_ranges, peek_data_id

log = logging.getLogger(__name__)
CONFIRM_INTERVAL_S = 1.0
# Gateways whose per-gateway duplicate count is kept (the rest are summed as "other").
MAX_GATEWAYS = 100_000


@dataclass(slots=True)
class _Pending:
    acks: dict[str, list[int]] = field(default_factory=dict)  # boot -> seqs not yet confirmed


@dataclass(slots=True)
class Coalescer:
    """Seqs made durable, per gateway and boot; at most one confirmation per gateway per interval. Pure."""

    interval_s: float = CONFIRM_INTERVAL_S
    _pending: dict[str, _Pending] = field(default_factory=dict)
    _last_sent: dict[str, float] = field(default_factory=dict)

    def add(self, gateway: str, boot: str, seq: int) -> None:
        self._pending.setdefault(gateway, _Pending()).acks.setdefault(boot, []).append(seq)

    def due(self, now: float, ts_ms: int) -> list[Confirmation]:
        """Confirmations to send now: gateways with something pending whose last one is `interval_s` old."""
        out: list[Confirmation] = []
        for gateway in list(self._pending):
            if now - self._last_sent.get(gateway, -1e18) < self.interval_s:
                continue
            pending = self._pending.pop(gateway)
            acks: dict[str, Ranges] = {}
            for boot, seqs in pending.acks.items():
                ranges: Ranges = []
                for seq in sorted(set(seqs)):
                    if ranges and seq == ranges[-1][1] + 1:
                        ranges[-1] = (ranges[-1][0], seq)
                    else:
                        ranges.append((seq, seq))
                acks[boot] = merge_ranges(ranges, [])
            self._last_sent[gateway] = now
            out.append(Confirmation(gateway, ts_ms, acks))
        if len(self._last_sent) > MAX_GATEWAYS:
            self._last_sent = {g: t for g, t in self._last_sent.items() if now - t < self.interval_s}
        return out

    def put_back(self, confirmation: Confirmation) -> None:
        """A confirmation that could not be sent (no connection): send it with the next one."""
        for boot, ranges in confirmation.acks.items():
            seqs = self._pending.setdefault(confirmation.gateway, _Pending()).acks.setdefault(boot, [])
            for first, last in ranges:
                seqs.extend(range(first, last + 1))
        self._last_sent.pop(confirmation.gateway, None)

    @property
    def pending(self) -> int:
        return sum(len(s) for p in self._pending.values() for s in p.acks.values())


class Confirmer:
    """The collector's confirmations: ticket bookkeeping, duplicates per gateway, the publishing task."""

    def __init__(self, prefix: str, publish: Callable[[str, bytes], None], connected: Callable[[], bool], *,
                 interval_s: float = CONFIRM_INTERVAL_S) -> None:
        self._prefix = prefix
        self._publish = publish
        self._connected = connected
        self.coalescer = Coalescer(interval_s)
        self._names: dict[Ticket, tuple[str, str, int]] = {}
        self.duplicates: dict[str, int] = {}
        self.confirmations_sent = 0
        self.seqs_confirmed = 0

    # ---- hooks

    def note(self, ticket: Ticket, gateway: str, boot: str, seq: int, *, duplicate: bool = False) -> None:
        """A data message arrived (ingest): confirm it when the batch carrying `ticket` is durable."""
        self._names[ticket] = (gateway, boot, seq)
        if duplicate:
            key = gateway if gateway in self.duplicates or len(self.duplicates) < MAX_GATEWAYS else "other"
            self.duplicates[key] = self.duplicates.get(key, 0) + 1

    def note_dead(self, ticket: Ticket, topic: str, payload: bytes) -> None:
        """A message is being dead-lettered (ingest): a data message that still names itself is confirmed too."""
        where = parse_topic(topic, self._prefix)
        if where is None or where[1] != "data":
            return
        found = peek_data_id(payload)
        if found is not None and found[0] == where[0]:
            self._names[ticket] = found

    def settled(self, tickets: list[Ticket]) -> None:
        """These tickets' batch is durable (sink): their seqs join the next confirmations."""
        names = self._names
        for ticket in tickets:
            name = names.pop(ticket, None)
            if name is not None:
                self.coalescer.add(*name)

    # ---- the task

    def flush(self, now: float) -> int:
        """Publish what is due; returns the confirmations published."""
        if not self._connected():
            return 0
        sent = 0
        for confirmation in self.coalescer.due(now, int(time.time() * 1000)):
            try:
                self._publish(Topics(confirmation.gateway, self._prefix).ack, encode_confirmation(confirmation))
            except (OSError, ValueError) as exc:
                log.warning("confirmation not sent", extra={"gateway": confirmation.gateway, "error": str(exc)})
                self.coalescer.put_back(confirmation)
                continue
            sent += 1
            self.seqs_confirmed += confirmation.seqs()
        self.confirmations_sent += sent
        return sent

    async def run(self) -> None:
        """Flush every tenth of the interval: a first confirmation goes out quickly, then coalesced."""
        while True:
            await asyncio.sleep(self.coalescer.interval_s / 10)
            self.flush(time.monotonic())

    def metrics_lines(self, client_id: str, ts_ms: int) -> str:
        """Duplicates per gateway, as line protocol for the collector's self-metrics."""
        rows = [f"roadpulse_collector_gateway,collector={client_id},gateway={gw} duplicates={n}i {ts_ms}"
                for gw, n in sorted(self.duplicates.items())]
        rows.append(f"roadpulse_collector_confirm,collector={client_id} confirmations={self.confirmations_sent}i,"
                    f"seqs_confirmed={self.seqs_confirmed}i,pending={self.coalescer.pending}i {ts_ms}")
        return "\n".join(rows)
