"""Shared lines: several Modbus slaves on one half-duplex RS-485 line (or a gateway to one).

RS-485 is half duplex: one request on the line at a time, and some slaves need
a quiet pause after each answer before the next request. The lock is taken per
request, not per device poll, so a slow or silent slave delays the others by at
most one request's timeout (times its attempts), never by a whole poll.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from agent.codec.planning import Kind
from agent.config import AgentConfig
from agent.config import Bus as BusConfig
from agent.modbus_adapter import ModbusLink


class SerialBus:
    """One shared line: its Modbus link (serial port or TCP to a gateway), its lock and its pause."""

    def __init__(self, config: BusConfig, link: ModbusLink | None = None) -> None:
        self.config = config
        self.id = config.id
        self.pause_s = config.pause_ms / 1000
        self.link = link or _link_of(config)
        self._lock = asyncio.Lock()
        self._quiet_from = 0.0
        self.requests = 0

    @asynccontextmanager
    async def turn(self) -> AsyncIterator[ModbusLink]:
        """Hold the line for one request, after the pause since the previous answer."""
        async with self._lock:
            wait = self._quiet_from - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            try:
                yield self.link
            finally:
                self.requests += 1
                self._quiet_from = time.monotonic() + self.pause_s

    async def read(self, kind: Kind, address: int, count: int, unit: int) -> list[int] | list[bool]:
        async with self.turn() as link:
            return await link.read(kind, address, count, unit)

    def close(self) -> None:
        self.link.close()


def _link_of(config: BusConfig) -> ModbusLink:
    if config.tcp is not None:
        return ModbusLink.tcp(config.tcp.host, config.tcp.port, timeout=config.timeout_s, retries=config.retries,
                              transport=config.tcp.transport, shared_line=True)
    s = config.serial
    assert s is not None, "config.Bus validates exactly one link"
    return ModbusLink.serial(s.port, baudrate=s.baudrate, bytesize=s.bytesize, parity=s.parity,
                             stopbits=s.stopbits, timeout=config.timeout_s, retries=config.retries)


def build_buses(config: AgentConfig) -> dict[str, SerialBus]:
    """One SerialBus per [[buses]] entry; nothing is opened until the first request."""
    return {bus.id: SerialBus(bus) for bus in config.buses}
