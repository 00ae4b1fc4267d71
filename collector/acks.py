"""Acks in arrival order, each only once the message's content is durable. Pure.

MQTT 5 (4.6) wants PUBACKs in the order the PUBLISHes arrived; the collector settles
messages out of order (a parked message waits for its birth), so the ledger releases a
settled message only when everything before it is settled too.
"""

from __future__ import annotations

from collections import deque


class Ticket:
    """One received message awaiting its ack. Built per message, never per reading."""

    __slots__ = ("done", "generation", "mid", "qos")

    def __init__(self, mid: int, qos: int, generation: int) -> None:
        self.mid = mid
        self.qos = qos
        self.generation = generation
        self.done = False


class AckLedger:
    def __init__(self) -> None:
        self._queue: deque[Ticket] = deque()
        self.generation = 0

    def arrive(self, mid: int, qos: int) -> Ticket:
        ticket = Ticket(mid, qos, self.generation)
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
