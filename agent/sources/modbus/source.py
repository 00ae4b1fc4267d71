"""Modbus driver: reads a device's profile registers in as few requests as planning allows.

Over a shared RS-485 bus each attempt takes the bus's turn; over TCP it goes
straight to the link. Retries are done here, one attempt per turn, so a silent
slave holds the line for one timeout at a time. A request that still times out
marks the whole device bad and backs it off (so a dead slave costs the bus
`retries + 1` timeouts per backoff period, not per poll); an exception answer
(other than a gateway's "target unreachable") marks only the points of that
request bad.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from typing import Protocol

from agent.codec.planning import Kind, ReadBlock, Span, plan_reads
from agent.codec.registers import DecodeError, apply_point, decode, register_count
from agent.config import Device
from agent.sources.base import DeviceError, LinkError, SourceReading
from agent.sources.modbus import COUNTERS as MODBUS_COUNTERS
from agent.sources.modbus.bus import SerialBus
from agent.sources.modbus.config import Bus
from agent.sources.modbus.link import ModbusLink
from roadpulse.backoff import Backoff
from roadpulse.profiles import AnyProfile, ModbusProfile, Register
from roadpulse.wire import Quality

# Failures that say nothing about one request, only that the slave is unreachable:
# no answer, a garbled one, or a gateway reporting that its target is gone (0x0A, 0x0B).
DEVICE_WIDE = frozenset({"timeout", "io", "exception:0a", "exception:0b"})
# Worth another attempt: no answer, or one garbled on the line. An exception answer would be the same again.
RETRYABLE = frozenset({"timeout", "io"})


class RegisterReader(Protocol):
    """A ModbusLink (TCP) or a SerialBus (RS-485): one attempt in, registers or bits out.

    `retry` marks a repeated attempt: a bus serves it after waiting first attempts.
    """

    async def read(
        self, kind: Kind, address: int, count: int, unit: int, *, answer_timeout_s: float | None = None,
        retry: bool = False,
    ) -> list[int] | list[bool]: ...


def request_timing(device: Device, bus: Bus | None) -> tuple[float, int]:
    """(timeout_s, retries) per attempt for a device: its own when set in the config, else its bus's."""
    if bus is None:
        return device.timeout_s, device.retries
    given = device.model_fields_set
    return (device.timeout_s if "timeout_s" in given else bus.timeout_s,
            device.retries if "retries" in given else bus.retries)


async def read_with_retries(
    reader: RegisterReader, kind: Kind, address: int, count: int, unit: int, *,
    answer_timeout_s: float, retries: int, counters: Counter[str] | None = None,
) -> list[int] | list[bool]:
    """One request: up to `retries + 1` attempts, each its own turn on a shared line.

    `counters` (MODBUS_COUNTERS names) counts attempts and how they failed.
    """
    tally: Counter[str] = Counter() if counters is None else counters
    attempt = 0
    while True:
        tally["modbus_requests"] += 1
        try:
            return await reader.read(kind, address, count, unit, answer_timeout_s=answer_timeout_s, retry=attempt > 0)
        except LinkError:
            tally["modbus_link_errors"] += 1
            raise
        except DeviceError as err:
            if err.reason == "timeout":
                tally["modbus_timeouts"] += 1
            elif err.reason == "io":
                tally["modbus_garbled"] += 1
            else:
                tally["modbus_exceptions"] += 1
            if err.reason not in RETRYABLE or attempt >= retries:
                raise
        attempt += 1
        tally["modbus_retries"] += 1


class SharedLine(RegisterReader, Protocol):
    """A SerialBus as a device sees it: a reader with the bus's config (its default timeout and retries)."""

    @property
    def config(self) -> Bus: ...


class Connectable(Protocol):
    async def connect(self) -> None: ...

    def close(self) -> None: ...


def span_of(reg: Register) -> Span:
    count = 1 if reg.kind in ("coil", "discrete") else register_count(reg.type, reg.length)
    return Span(reg.kind, reg.address, count)


def decode_register(reg: Register, words: Sequence[int] | Sequence[bool], ts_ms: int) -> SourceReading:
    """One point's reading from exactly the words (or the bit) it occupies."""
    if reg.kind in ("coil", "discrete"):
        return SourceReading(reg.name, bool(words[0]), ts_ms)
    try:
        raw = decode([int(w) for w in words], reg.type, reg.order, bit=reg.bit, byte=reg.byte)
    except DecodeError as err:
        return SourceReading(reg.name, None, ts_ms, Quality.BAD, f"decode: {err}")
    scaled = apply_point(raw, scale=reg.scale, offset=reg.offset, invalid=reg.invalid)
    if scaled.reason:
        return SourceReading(reg.name, None, ts_ms, Quality.BAD, scaled.reason)
    return SourceReading(reg.name, scaled.value, ts_ms)


class ModbusSource:
    """One Modbus slave, described by a ModbusProfile."""

    def __init__(
        self, device: Device, profile: ModbusProfile, reader: RegisterReader, *,
        owned_link: Connectable | None = None, backoff: Backoff | None = None,
        timeout_s: float | None = None, retries: int | None = None,
    ) -> None:
        self.device = device
        self.profile = profile
        self.unit = device.unit
        self.timeout_s = device.timeout_s if timeout_s is None else timeout_s
        self.retries = device.retries if retries is None else retries
        self.counters: Counter[str] = Counter(dict.fromkeys(MODBUS_COUNTERS, 0))
        self._reader = reader
        # A TCP device owns its link; a bus device shares the bus's link, which the runner closes.
        self._owned_link = owned_link
        self._spans = [span_of(r) for r in profile.registers]
        self.blocks: list[ReadBlock] = plan_reads(self._spans, profile.max_gap)
        self._backoff = backoff or Backoff(base=device.interval_s, cap=max(device.interval_s, 300.0))
        self._retry_at = 0.0
        self._last_reason = ""

    def driver_counters(self) -> dict[str, int]:
        return dict(self.counters)

    async def connect(self) -> None:
        if self._owned_link is not None:
            await self._owned_link.connect()

    async def close(self) -> None:
        if self._owned_link is not None:
            self._owned_link.close()

    async def read(self) -> list[SourceReading]:
        now = time.monotonic()
        if now < self._retry_at:
            raise DeviceError(self._last_reason, f"backing off for {self._retry_at - now:.1f} s")
        ts_ms = int(time.time() * 1000)
        by_index: dict[int, SourceReading] = {}
        for block in self.blocks:
            try:
                words = await read_with_retries(
                    self._reader, block.kind, block.address, block.count, self.unit,
                    answer_timeout_s=self.timeout_s, retries=self.retries, counters=self.counters,
                )
            except LinkError:
                raise
            except DeviceError as err:
                if err.reason in DEVICE_WIDE:
                    self._last_reason = err.reason
                    self._retry_at = time.monotonic() + self._backoff.next()
                    raise
                for index in block.points:
                    by_index[index] = SourceReading(
                        self.profile.registers[index].name, None, ts_ms, Quality.BAD, err.reason
                    )
                continue
            for index in block.points:
                reg, span = self.profile.registers[index], self._spans[index]
                start = block.offset_of(span)
                by_index[index] = decode_register(reg, words[start : start + span.count], ts_ms)
        self._backoff.reset()
        self._retry_at = 0.0
        return [by_index[i] for i in range(len(self._spans))]


def modbus_source_for(device: Device, profile: AnyProfile, bus: object | None) -> ModbusSource:
    """Wire a device to its link: a shared bus, or a TCP link of its own."""
    if not isinstance(profile, ModbusProfile):
        raise ValueError(f"device {device.id!r}: profile {profile.name!r} is not a modbus profile")
    if device.bus is not None:
        if not isinstance(bus, SerialBus):
            raise ValueError(f"device {device.id!r} is on bus {device.bus!r}, but no bus was given")
        timeout_s, retries = request_timing(device, bus.config)
        return ModbusSource(device, profile, bus, timeout_s=timeout_s, retries=retries)
    if device.tcp is not None:
        link = ModbusLink.tcp(
            device.tcp.host, device.tcp.port, timeout=device.timeout_s, transport=device.tcp.transport,
        )
        return ModbusSource(device, profile, link, owned_link=link)
    if device.serial is not None:
        s = device.serial
        # A Modbus device alone on its serial port: a bus of one, without the lock.
        link = ModbusLink.serial(
            s.port, baudrate=s.baudrate, bytesize=s.bytesize, parity=s.parity, stopbits=s.stopbits,
            timeout=device.timeout_s,
        )
        return ModbusSource(device, profile, link, owned_link=link)
    raise ValueError(f"device {device.id!r} has no link")
