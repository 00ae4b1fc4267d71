"""The one place that talks to pymodbus: a Modbus link and its errors in our terms.

pymodbus moves its API between minor versions (it is pinned to 3.11), so every
call into it lives here. Callers see `ModbusLink.read()` returning registers or
bits, and `DeviceError`/`LinkError` with reasons from docs/protocol.md:
`timeout`, `exception:02`, `io`, `link`.

Reconnects are ours, not pymodbus's (its `reconnect_delay` starts a background
task we could not supervise): a lost link is reopened on the next request,
no sooner than roadpulse's backoff allows, and logged once when lost and once
when back.

Retries are ours too: pymodbus is built with `retries=0`, so one `read()` is one
attempt on the wire and holds a shared line for at most one timeout. The caller
(agent.sources.modbus.read_with_retries) retries, giving the line back in between.
"""

from __future__ import annotations

import asyncio
import logging
import termios
import time
from collections.abc import Awaitable, Callable
from typing import Literal

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.client.base import ModbusBaseClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException
from pymodbus.framer import FramerType
from pymodbus.pdu import ModbusPDU

from agent.codec.planning import Kind
from agent.sources.base import DeviceError, LinkError
from roadpulse.backoff import Backoff

log = logging.getLogger(__name__)


def _quiet_pymodbus() -> None:
    """pymodbus logs every slave timeout at ERROR with a frame dump; we raise and log state changes instead.

    Left alone when someone set a level on purpose (debugging a bus with pymodbus's frame log).
    """
    library = logging.getLogger("pymodbus")
    if library.level == logging.NOTSET:
        library.setLevel(logging.CRITICAL)

# A shared RS-485 line must not be closed because one slave is silent.
_NEVER_CLOSE_ON_SILENCE = 1_000_000

Trace = Callable[[bool, bytes], bytes]


class ModbusLink:
    """One pymodbus client: a TCP connection or a serial port, possibly shared by several slaves.

    Not safe for concurrent requests on a serial line: `agent.sources.modbus.bus.SerialBus` serialises them.
    """

    def __init__(
        self,
        name: str,
        make_client: Callable[[Trace], ModbusBaseClient],
        *,
        timeout: float,
        shared_line: bool,
        backoff: Backoff | None = None,
    ) -> None:
        _quiet_pymodbus()
        self.name = name
        self.timeout = timeout
        self._make_client = make_client
        # Bytes arrived during the current attempt: a timeout with bytes is a garbled answer, not silence.
        self._heard = False
        self._client: ModbusBaseClient | None = None
        self._shared_line = shared_line
        self._backoff = backoff or Backoff(base=1.0, cap=60.0)
        self._next_attempt = 0.0
        self._lost = False

    # ---- construction

    @classmethod
    def tcp(
        cls, host: str, port: int, *, timeout: float,
        transport: Literal["tcp", "rtu-over-tcp"] = "tcp", backoff: Backoff | None = None,
        shared_line: bool | None = None,
    ) -> ModbusLink:
        """Modbus TCP (MBAP header) or RTU frames over a TCP socket (serial device servers).

        `timeout` is the connect timeout and the default per-attempt timeout.
        `shared_line` (default: true for rtu-over-tcp) keeps the connection open however
        long one slave stays silent, since the others behind the gateway still answer.
        """
        framer = FramerType.SOCKET if transport == "tcp" else FramerType.RTU

        def make(trace: Trace) -> ModbusBaseClient:
            return AsyncModbusTcpClient(
                host, port=port, framer=framer, timeout=timeout, retries=0,
                reconnect_delay=0, name=f"{host}:{port}", trace_packet=trace,
            )

        shared = transport != "tcp" if shared_line is None else shared_line
        return cls(f"{transport}://{host}:{port}", make, timeout=timeout, shared_line=shared, backoff=backoff)

    @classmethod
    def serial(
        cls, port: str, *, baudrate: int, bytesize: int = 8, parity: str = "N", stopbits: int = 1,
        timeout: float, backoff: Backoff | None = None,
    ) -> ModbusLink:
        """Modbus RTU on a serial port (an RS-485 adapter)."""

        def make(trace: Trace) -> ModbusBaseClient:
            return AsyncModbusSerialClient(
                port, framer=FramerType.RTU, baudrate=baudrate, bytesize=bytesize, parity=parity,
                stopbits=stopbits, timeout=timeout, retries=0, reconnect_delay=0, name=port,
                trace_packet=trace,
            )

        return cls(f"rtu://{port}", make, timeout=timeout, shared_line=True, backoff=backoff)

    # ---- connection

    @property
    def connected(self) -> bool:
        return self._client is not None and self._client.connected

    async def connect(self) -> None:
        """Open the link now, or raise LinkError; honours the backoff after a failure."""
        if self.connected:
            return
        now = time.monotonic()
        if now < self._next_attempt:
            raise LinkError(f"{self.name} down, next attempt in {self._next_attempt - now:.1f} s")
        if self._client is None:
            # pymodbus clients bind the running loop when built, so they are made here, not in __init__.
            self._client = self._make_client(self._trace)
            if self._shared_line:
                self._client.set_max_no_responses(_NEVER_CLOSE_ON_SILENCE)
        try:
            opened = await self._client.connect()
        except (OSError, ValueError, termios.error) as exc:
            # pyserial raises these from open() for settings the port refuses (parity on some adapters).
            self._client.close()
            self._mark_lost(str(exc))
            raise LinkError(f"cannot open {self.name}: {exc}") from None
        if opened:
            self._backoff.reset()
            self._next_attempt = 0.0
            if self._lost:
                self._lost = False
                log.info("modbus link back", extra={"link": self.name, "event": "link_up"})
            return
        self._client.close()
        self._mark_lost("cannot open")
        raise LinkError(f"cannot open {self.name}")

    def _mark_lost(self, why: str) -> None:
        self._next_attempt = time.monotonic() + self._backoff.next()
        if not self._lost:
            self._lost = True
            log.warning("modbus link lost", extra={"link": self.name, "event": "link_down", "why": why})

    def _trace(self, sending: bool, data: bytes) -> bytes:
        if not sending:
            self._heard = True
        return data

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    # ---- requests

    async def read(
        self, kind: Kind, address: int, count: int, unit: int, *, answer_timeout_s: float | None = None,
        retry: bool = False,
    ) -> list[int] | list[bool]:
        """One attempt to read registers (holding, input) or bits (coil, discrete) from one slave.

        `answer_timeout_s` (default: the link's `timeout`) bounds the wait for the answer. `retry` only
        matters to a shared bus's queue (agent.sources.modbus.bus.SerialBus); a link has no queue.
        """
        del retry
        if not self.connected:
            if self._client is not None and not self._lost:
                self._mark_lost("connection dropped")
                self._next_attempt = 0.0  # the first reopen is immediate; backoff starts if it fails
            await self.connect()
        client = self._client
        assert client is not None, "connect() leaves a client or raises"
        call: Callable[..., Awaitable[ModbusPDU]] = {
            "holding": client.read_holding_registers,
            "input": client.read_input_registers,
            "coil": client.read_coils,
            "discrete": client.read_discrete_inputs,
        }[kind]
        # pymodbus reads the answer timeout from its params on every attempt. Requests on one
        # link never overlap (a bus's turn, or one device owning the link), so setting it here
        # cannot leak into another request; it is put back for the connect timeout.
        params = client.ctx.comm_params
        params.timeout_connect = self.timeout if answer_timeout_s is None else answer_timeout_s
        self._heard = False
        try:
            response = await call(address, count=count, device_id=unit)
        except ConnectionException as exc:
            self._mark_lost(str(exc))
            raise LinkError(f"{self.name}: {exc}") from None
        except ModbusIOException as exc:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                # pymodbus turns our cancellation into an IO error; structured concurrency needs it back.
                raise asyncio.CancelledError from exc
            if not self.connected:
                self._mark_lost(str(exc))
                raise LinkError(f"{self.name}: {exc}") from None
            text = str(exc)
            if "No response" not in text:
                reason = "io"
            elif self._heard:
                # Bytes came but no valid frame: bad CRC, garbage, or another unit's answer.
                reason, text = "io", "garbled answer (no valid frame before the timeout)"
            else:
                reason = "timeout"
            raise DeviceError(reason, f"unit {unit} {kind} {address}+{count}: {text}") from None
        except ModbusException as exc:
            raise DeviceError("io", f"unit {unit}: {exc}") from None
        finally:
            params.timeout_connect = self.timeout
        if response.isError():
            code = getattr(response, "exception_code", 0)
            raise DeviceError(f"exception:{code:02x}", f"unit {unit} {kind} {address}+{count}")
        if kind in ("coil", "discrete"):
            bits = list(response.bits[:count])
            if len(bits) != count:
                raise DeviceError("io", f"unit {unit}: {len(bits)} bits for {count}")
            return bits
        registers = list(response.registers)
        if len(registers) != count:
            raise DeviceError("io", f"unit {unit}: {len(registers)} registers for {count}")
        return registers
