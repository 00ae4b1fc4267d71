"""Shared lines: several Modbus slaves on one half-duplex RS-485 line (or a gateway to one).

RS-485 is half duplex: one request on the line at a time, and some slaves need
a quiet pause after each answer before the next request. A turn is one attempt
of one request, never a whole poll and never a request with its retries, so a
silent slave holds the line for one timeout at a time. Retries queue behind
first attempts: a slave that failed once waits while healthy slaves are served,
so a silent slave delays another slave's poll by at most one of its own timeouts
(plus the requests of other slaves queued before it). On a line busy all the
time retries would wait indefinitely; such a line already overruns its polls.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager

from agent.codec.planning import Kind
from agent.sources.modbus.config import Bus as BusConfig
from agent.sources.modbus.link import ModbusLink


class SerialBus:
    """One shared line: its Modbus link (serial port or TCP to a gateway), its queue and its pause."""

    def __init__(self, config: BusConfig, link: ModbusLink | None = None) -> None:
        self.config = config
        self.id = config.id
        self.pause_s = config.pause_ms / 1000
        # Defaults for devices on this bus that set no timeout_s/retries of their own.
        self.timeout_s = config.timeout_s
        self.retries = config.retries
        self.link = link or _link_of(config)
        self._busy = False
        self._first_attempts: deque[asyncio.Future[None]] = deque()
        self._retries: deque[asyncio.Future[None]] = deque()
        self._quiet_from = 0.0
        self.requests = 0

    @asynccontextmanager
    async def turn(self, *, retry: bool = False) -> AsyncIterator[ModbusLink]:
        """Hold the line for one attempt, after the pause since the previous answer.

        First attempts are served in arrival order; a retry waits until no first
        attempt is waiting, so one slave's retries never sit between another's requests.
        """
        await self._acquire(retry)
        try:
            wait = self._quiet_from - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            yield self.link
        finally:
            self.requests += 1
            self._quiet_from = time.monotonic() + self.pause_s
            self._hand_on()

    async def _acquire(self, retry: bool) -> None:
        queue = self._retries if retry else self._first_attempts
        # A first attempt may pass waiting retries; a retry queues behind every waiting request.
        if not self._busy and not self._first_attempts and not queue:
            self._busy = True
            return
        handed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue.append(handed)
        try:
            await handed
        except asyncio.CancelledError:
            if handed.done() and not handed.cancelled():
                self._hand_on()  # the line was ours already: pass it on, or everyone waits forever
            else:
                with contextlib.suppress(ValueError):
                    queue.remove(handed)
            raise

    def _hand_on(self) -> None:
        """Give the line to the next first attempt; retries get it one loop turn later, if still free.

        The delay lets a device that just got its answer send its next request of the
        same poll (it does so without yielding), so a silent slave's retry never sits
        between two requests of a healthy slave's poll.
        """
        while self._first_attempts:
            handed = self._first_attempts.popleft()
            if not handed.done():
                handed.set_result(None)
                return
        self._busy = False
        if self._retries:
            asyncio.get_running_loop().call_soon(self._offer_to_retry)

    def _offer_to_retry(self) -> None:
        if self._busy or self._first_attempts:
            return  # a first attempt took the line; the retry is offered again when it ends
        while self._retries:
            handed = self._retries.popleft()
            if not handed.done():
                self._busy = True
                handed.set_result(None)
                return

    async def read(
        self, kind: Kind, address: int, count: int, unit: int, *, answer_timeout_s: float | None = None,
        retry: bool = False,
    ) -> list[int] | list[bool]:
        """One attempt in one turn; `answer_timeout_s` defaults to the bus's."""
        async with self.turn(retry=retry) as link:
            return await link.read(kind, address, count, unit, answer_timeout_s=(
                self.timeout_s if answer_timeout_s is None else answer_timeout_s))

    def close(self) -> None:
        self.link.close()


def _link_of(config: BusConfig) -> ModbusLink:
    if config.tcp is not None:
        return ModbusLink.tcp(config.tcp.host, config.tcp.port, timeout=config.timeout_s,
                              transport=config.tcp.transport, shared_line=True)
    s = config.serial
    assert s is not None, "config.Bus validates exactly one link"
    return ModbusLink.serial(s.port, baudrate=s.baudrate, bytesize=s.bytesize, parity=s.parity,
                             stopbits=s.stopbits, timeout=config.timeout_s)


def build_buses(buses: Iterable[BusConfig]) -> dict[str, SerialBus]:
    """One SerialBus per [[buses]] entry; nothing is opened until the first request."""
    return {bus.id: SerialBus(bus) for bus in buses}
