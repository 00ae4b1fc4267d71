"""Acks in arrival order, each only once the message's content is durable. Pure.

MQTT 5 (4.6) wants PUBACKs in the order the PUBLISHes arrived; the collector settles
messages out of order (a parked message waits for its birth), so the ledger releases a
settled message only when everything before it is settled too.
"""

from __future__ import annotations

import time
from collections import deque


class Ticket:
    """One received message awaiting its ack. Built per message, never per reading."""

    __slots__ = ("arrived", "done", "generation", "mid", "qos")

    def __init__(self, mid: int, qos: int, generation: int, arrived: float = 0.0) -> None:
        self.mid = mid
        self.qos = qos
        self.generation = generation
        self.done = False
        self.arrived = arrived  # monotonic seconds


class AckLedger:
    def __init__(self) -> None:
        self._queue: deque[Ticket] = deque()
        self.generation = 0

    def arrive(self, mid: int, qos: int, now: float | None = None) -> Ticket:
        ticket = Ticket(mid, qos, self.generation, time.monotonic() if now is None else now)
        self._queue.append(ticket)
        return ticket

    def settle(self, tickets: list[Ticket]) -> list[Ticket]:
        """Mark these durable; return the tickets now ackable, in arrival order."""
        for ticket in tickets:
            ticket.done = True
        ready: list[Ticket] = []
        queue = self._queue
        while queue and queue[0].done:
            ticket = queue.popleft()
            if ticket.generation == self.generation:
                ready.append(ticket)
        return ready

    def new_connection(self) -> None:
        """Unacked messages of the old connection will be redelivered: forget their tickets."""
        self.generation += 1
        self._queue.clear()

    @property
    def pending(self) -> int:
        return len(self._queue)

    def oldest_age(self, now: float) -> float:
        """Seconds the oldest unacked message has waited (0 when none waits): a message that is
        never settled stops every ack after it, so this is what /healthz watches."""
        return now - self._queue[0].arrived if self._queue else 0.0
