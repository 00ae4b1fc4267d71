"""Modbus peers for driver tests: a pymodbus TCP server, and RTU slaves on a pty that the test drives.

The pty peer is written by hand (not pymodbus) so tests control the wire:
silence, exception answers, garbage and unplugging are one attribute away.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import tty
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from pymodbus.datastore import (
    ModbusDeviceContext,
    ModbusSequentialDataBlock,
    ModbusServerContext,
)
from pymodbus.framer import FramerType
from pymodbus.server import ModbusTcpServer


def crc16(data: bytes) -> bytes:
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc.to_bytes(2, "little")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def device_context(
    holding: list[int] | None = None, inputs: list[int] | None = None,
    coils: list[bool] | None = None, discrete: list[bool] | None = None,
) -> ModbusDeviceContext:
    """A slave whose register 0 is the first value given (the context adds 1 to addresses)."""
    return ModbusDeviceContext(
        hr=ModbusSequentialDataBlock(1, holding or [0] * 10),
        ir=ModbusSequentialDataBlock(1, inputs or [0] * 10),
        co=ModbusSequentialDataBlock(1, coils or [False] * 10),
        di=ModbusSequentialDataBlock(1, discrete or [False] * 10),
    )


@contextlib.asynccontextmanager
async def tcp_server(
    devices: dict[int, ModbusDeviceContext], *, rtu_framing: bool = False, port: int | None = None
) -> AsyncIterator[int]:
    """A pymodbus server on a loopback port (a free one unless given); yields the port."""
    port = port or free_port()
    context = ModbusServerContext(devices=devices, single=False)
    server = ModbusTcpServer(
        context, address=("127.0.0.1", port), framer=FramerType.RTU if rtu_framing else FramerType.SOCKET
    )
    await server.serve_forever(background=True)
    try:
        yield port
    finally:
        await server.shutdown()


@dataclass
class FakeSlave:
    holding: dict[int, int] = field(default_factory=dict)
    inputs: dict[int, int] = field(default_factory=dict)
    coils: dict[int, bool] = field(default_factory=dict)
    discrete: dict[int, bool] = field(default_factory=dict)
    silent: bool = False
    exception: int | None = None
    garbage: bytes | None = None
    requests: int = 0


class RtuPeer:
    """RTU slaves on the master side of a pty. `path` is what the agent opens."""

    def __init__(self, slaves: dict[int, FakeSlave], *, reply_delay: float = 0.0) -> None:
        self.slaves = slaves
        self.reply_delay = reply_delay
        self.request_times: list[float] = []
        # A request that arrives while another is still unanswered: RS-485 would garble both.
        self.overlaps = 0
        self._pending = False
        self.master, self.slave_fd = os.openpty()
        tty.setraw(self.slave_fd)
        self.path = os.ttyname(self.slave_fd)
        self._buffer = bytearray()
        self.log: list[tuple[int, int, int, int]] = []  # (unit, fc, address, count) per request
        self.active = 0
        self.max_active = 0
        asyncio.get_running_loop().add_reader(self.master, self._readable)

    def _readable(self) -> None:
        try:
            self._buffer += os.read(self.master, 4096)
        except OSError:
            return
        while len(self._buffer) >= 8:
            frame = bytes(self._buffer[:8])
            if crc16(frame[:6]) != frame[6:]:
                del self._buffer[:1]  # resynchronise byte by byte
                continue
            del self._buffer[:8]
            loop = asyncio.get_running_loop()
            self.request_times.append(loop.time())
            if self._pending:
                self.overlaps += 1
            self._pending = True
            loop.call_later(self.reply_delay, self._answer, frame)

    def _answer(self, frame: bytes) -> None:
        self._pending = False
        if self.master < 0:
            return
        unit, fc = frame[0], frame[1]
        address, count = int.from_bytes(frame[2:4], "big"), int.from_bytes(frame[4:6], "big")
        self.log.append((unit, fc, address, count))
        slave = self.slaves.get(unit)
        if slave is None or slave.silent:
            if slave is not None:
                slave.requests += 1
            return
        slave.requests += 1
        if slave.garbage is not None:
            os.write(self.master, slave.garbage)
            return
        pdu = self._pdu(slave, fc, address, count)
        body = bytes([unit]) + pdu
        os.write(self.master, body + crc16(body))

    @staticmethod
    def _pdu(slave: FakeSlave, fc: int, address: int, count: int) -> bytes:
        if slave.exception is not None:
            return bytes([fc | 0x80, slave.exception])
        table: dict[int, int] | dict[int, bool]
        table = {1: slave.coils, 2: slave.discrete, 3: slave.holding, 4: slave.inputs}.get(fc, {})
        wanted = range(address, address + count)
        if fc not in (1, 2, 3, 4) or any(a not in table for a in wanted):
            return bytes([fc | 0x80, 2 if fc in (1, 2, 3, 4) else 1])
        if fc in (1, 2):
            packed = bytearray((count + 7) // 8)
            for i, a in enumerate(wanted):
                if table[a]:
                    packed[i // 8] |= 1 << (i % 8)
            return bytes([fc, len(packed)]) + bytes(packed)
        data = b"".join(int(table[a]).to_bytes(2, "big") for a in wanted)
        return bytes([fc, len(data)]) + data

    def unplug(self) -> None:
        """Close the master side: the agent's port reads fail like a pulled USB adapter."""
        with contextlib.suppress(ValueError, OSError):
            asyncio.get_running_loop().remove_reader(self.master)
        with contextlib.suppress(OSError):
            os.close(self.master)
        self.master = -1

    def close(self) -> None:
        if self.master >= 0:
            self.unplug()
        with contextlib.suppress(OSError):
            os.close(self.slave_fd)
