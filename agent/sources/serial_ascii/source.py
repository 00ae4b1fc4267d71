"""Serial ASCII driver: devices that talk text (Vaisala WXT ASCII, NMEA 0183, custom lines).

The port is watched with the event loop's reader callback, so bytes are framed
and parsed as they arrive and the OS buffer never overflows between polls of a
free-running device. Polled devices get their command each `read()` and the
first frame with any profile field answers it.
"""

from __future__ import annotations

import asyncio
import logging
import termios
import time
from collections import Counter

import serial

from agent.codec.frames import FieldValue, Framer, frame_parser
from agent.config import Device
from agent.sources.base import DeviceError, LinkError, SourceReading
from agent.sources.links import SerialLink
from agent.sources.serial_ascii import COUNTERS as SERIAL_ASCII_COUNTERS
from roadpulse.backoff import Backoff
from roadpulse.profiles import AnyProfile, SerialProfile
from roadpulse.wire import Quality

log = logging.getLogger(__name__)


def open_serial(link: SerialLink) -> serial.Serial:
    """Open a port for non-blocking reads; raises LinkError when it is missing or busy."""
    try:
        return serial.Serial(
            link.port, baudrate=link.baudrate, bytesize=link.bytesize, parity=link.parity,
            stopbits=link.stopbits, timeout=0, exclusive=True,
        )
    except (serial.SerialException, OSError, ValueError, termios.error) as exc:
        raise LinkError(f"{link.port}: {exc}") from None


class SerialAsciiSource:
    """One ASCII device on a serial port of its own."""

    def __init__(self, device: Device, profile: SerialProfile, *, backoff: Backoff | None = None) -> None:
        if device.serial is None:
            raise ValueError(f"device {device.id!r}: a serial_ascii device needs 'serial'")
        self.device = device
        self.profile = profile
        self.link = device.serial
        self.framer = Framer(profile.framing)
        self.parser = frame_parser(profile.parser, profile.fields, profile.pattern)
        self._port: serial.Serial | None = None
        self._latest: dict[str, tuple[FieldValue, int]] = {}
        self._frame_arrived = asyncio.Event()
        self._backoff = backoff or Backoff(base=1.0, cap=60.0)
        self._next_attempt = 0.0
        self._lost = False

    @property
    def counters(self) -> Counter[str]:
        """Frames seen, and frames skipped by reason (garbage, overlong, checksum, parse, ...)."""
        return self.framer.counters + self.parser.counters

    def driver_counters(self) -> dict[str, int]:
        """The counters under their stable names (agent.sources.serial_ascii.COUNTERS)."""
        seen = self.counters
        return {name: seen[name.removeprefix("frames_") if name != "frames_received" else "frames"]
                for name in SERIAL_ASCII_COUNTERS}

    # ---- port life

    async def connect(self) -> None:
        if self._port is not None:
            return
        now = time.monotonic()
        if now < self._next_attempt:
            raise LinkError(f"{self.link.port} down, next attempt in {self._next_attempt - now:.1f} s")
        try:
            port = open_serial(self.link)
        except LinkError as err:
            self._mark_lost(str(err))
            raise
        self._port = port
        self.framer.reset()
        asyncio.get_running_loop().add_reader(port.fileno(), self._on_readable)
        self._backoff.reset()
        self._next_attempt = 0.0
        if self._lost:
            self._lost = False
            log.info("serial port back", extra={"device": self.device.id, "port": self.link.port,
                                                "event": "link_up"})

    def _mark_lost(self, why: str) -> None:
        self._next_attempt = time.monotonic() + self._backoff.next()
        if not self._lost:
            self._lost = True
            log.warning("serial port lost", extra={"device": self.device.id, "port": self.link.port,
                                                   "event": "link_down", "why": why})

    def _drop(self, why: str) -> None:
        self._close_port()
        self._mark_lost(why)
        self._next_attempt = 0.0  # reopen at once on the next read; backoff applies if that fails
        self._frame_arrived.set()  # wake a waiting read so it sees the loss now, not at its timeout

    def _close_port(self) -> None:
        if self._port is None:
            return
        port, self._port = self._port, None
        asyncio.get_running_loop().remove_reader(port.fileno())
        try:
            port.close()
        except (serial.SerialException, OSError):
            log.debug("closing a lost port failed", extra={"port": self.link.port})

    async def close(self) -> None:
        self._close_port()

    # ---- incoming bytes (called by the event loop)

    def _on_readable(self) -> None:
        if self._port is None:
            return
        try:
            data = self._port.read(4096)
        except (serial.SerialException, OSError) as exc:
            self._drop(str(exc))
            return
        now_ms = int(time.time() * 1000)
        for frame in self.framer.feed(data):
            values = self.parser.parse(frame)
            if values:
                for name, value in values.items():
                    self._latest[name] = (value, now_ms)
                self._frame_arrived.set()

    # ---- polls

    async def read(self) -> list[SourceReading]:
        await self.connect()
        port = self._port
        assert port is not None, "connect() leaves a port or raises"
        if self.profile.poll is not None:
            self._latest.clear()
            self.framer.reset()
            self._frame_arrived.clear()
            try:
                port.reset_input_buffer()
                port.write(self.profile.poll.encode("ascii"))
            except (serial.SerialException, OSError) as exc:
                self._drop(str(exc))
                raise LinkError(f"{self.link.port}: {exc}") from None
        if not self._latest:
            self._frame_arrived.clear()
            try:
                async with asyncio.timeout(self.device.timeout_s):
                    await self._frame_arrived.wait()
            except TimeoutError:
                raise DeviceError("timeout", f"no frame within {self.device.timeout_s} s") from None
            if self._port is None:
                raise LinkError(f"{self.link.port} lost while waiting")
        latest, self._latest = self._latest, {}
        readings = []
        fallback_ts = int(time.time() * 1000)
        for fld in self.profile.fields:
            if fld.name not in latest:
                readings.append(SourceReading(fld.name, None, fallback_ts, Quality.BAD, "missing"))
                continue
            value, ts_ms = latest[fld.name]
            quality = Quality.BAD if value.reason else Quality.GOOD
            readings.append(SourceReading(fld.name, value.value, ts_ms, quality, value.reason))
        return readings


def serial_source_for(device: Device, profile: AnyProfile, bus: object | None) -> SerialAsciiSource:
    """Build the source for one device; ASCII devices never share a bus."""
    if not isinstance(profile, SerialProfile):
        raise ValueError(f"device {device.id!r}: profile {profile.name!r} is not a serial_ascii profile")
    if bus is not None:
        raise ValueError(f"device {device.id!r}: serial_ascii devices have a port of their own, not a bus")
    return SerialAsciiSource(device, profile)
