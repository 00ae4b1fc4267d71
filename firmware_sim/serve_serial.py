"""Serial devices on pseudo-terminals: a Modbus RTU bus with several units, and ASCII talkers.

The agent opens the pty's slave path as it would /dev/ttyUSB0. We keep a slave
fd open ourselves: on Linux the master reads EIO once the last slave fd closes,
which would end the device each time the agent reconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import fcntl
import logging
import os
import struct
import termios
import tty

from firmware_sim.clock import SimClock
from firmware_sim.device import SimDevice
from firmware_sim.faults import PROTOCOL_FAULTS, mutate_line, mutate_rtu
from firmware_sim.frames import AsciiSettings, nmea_answer, vaisala_answer, vaisala_crc
from firmware_sim.modbus import answer, rtu_response, split_rtu
from firmware_sim.registers import Image
from firmware_sim.truth import Served, TruthWriter
from roadpulse.profiles import ModbusProfile, SerialProfile

log = logging.getLogger("firmware_sim.serial")
# Unread bytes a free-running device lets pile up before the line drops them (nobody listening).
_BACKLOG_LIMIT = 2048


class Pty:
    """One pseudo-terminal pair in raw mode; bytes from the slave side arrive on `reader`."""

    def __init__(self) -> None:
        self.master, self._slave = os.openpty()
        tty.setraw(self._slave)
        os.set_blocking(self.master, False)
        self.path = os.ttyname(self._slave)
        self.reader = asyncio.StreamReader()
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self.master, self._on_readable)

    def _on_readable(self) -> None:
        try:
            data = os.read(self.master, 4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            return
        if data:
            self.reader.feed_data(data)

    def write(self, data: bytes) -> None:
        try:
            os.write(self.master, data)
        except BlockingIOError:
            log.debug("pty full, frame dropped", extra={"pty": self.path})

    def drop_backlog(self) -> None:
        """Discard what nobody read: a real line does not keep old frames for a late listener."""
        pending = struct.unpack("i", fcntl.ioctl(self._slave, termios.FIONREAD, b"\0\0\0\0"))[0]
        if pending > _BACKLOG_LIMIT:
            termios.tcflush(self._slave, termios.TCIFLUSH)

    def close(self) -> None:
        self._loop.remove_reader(self.master)
        for fd in (self.master, self._slave):
            with contextlib.suppress(OSError):
                os.close(fd)


def _line_time(nbytes: int, baudrate: int) -> float:
    # 10 bits per byte on the wire (start, 8 data, stop).
    return nbytes * 10 / baudrate


class RtuBus:
    """Several Modbus RTU units on one pty. RS-485 is half duplex: requests are answered one at a time."""

    def __init__(
        self, bus_id: str, baudrate: int, devices: list[SimDevice], clock: SimClock, truth: TruthWriter
    ) -> None:
        self.bus_id = bus_id
        self.baudrate = baudrate
        self.units = {d.spec.unit: d for d in devices}
        self.clock = clock
        self.truth = truth
        self.pty = Pty()
        self._requests = 0
        # A silent interval of 3.5 characters ends a frame; a pty gives no timing, so be generous.
        self._gap = max(0.05, _line_time(4, baudrate))

    async def run(self) -> None:
        buffer = b""
        while True:
            try:
                chunk = await asyncio.wait_for(self.pty.reader.read(512), self._gap if buffer else None)
            except TimeoutError:
                buffer = b""  # an incomplete frame followed by silence is discarded
                continue
            requests, buffer, _ = split_rtu(buffer + chunk)
            for request in requests:
                reply = self._reply(request.unit, request.pdu)
                if reply is None:
                    continue
                # Slave turnaround plus the time the reply takes on the wire.
                await asyncio.sleep(0.003 + _line_time(len(reply), self.baudrate))
                self.pty.write(reply)

    def _reply(self, unit: int, pdu: bytes) -> bytes | None:
        device = self.units.get(unit)
        t = self.clock.now()
        if device is None or device.offline(t):
            return None  # other slaves (or a rebooting one) stay silent
        self._requests += 1
        snap = device.snapshot(t)
        image = device.image(snap)
        response, kind, start, count = answer(pdu, image.words, device.ends)
        frame = rtu_response(unit, response)
        for fault in PROTOCOL_FAULTS:
            if device.plan.hits(device.id, fault, t, self._requests) is not None:
                return mutate_rtu(frame, fault, device.plan.seed, device.id, self._requests)
        if not response[0] & 0x80 and count:
            _record(self.truth, device, image, (kind, start, count), faults=snap.faults, clock=self.clock, t=t)
        return frame

    def close(self) -> None:
        self.pty.close()


def _record(
    truth: TruthWriter,
    device: SimDevice,
    image: Image,
    read: tuple[str, int, int],
    *,
    faults: tuple[str, ...],
    clock: SimClock,
    t: float,
) -> None:
    if isinstance(device.profile, ModbusProfile):
        truth.record(
            device.id,
            image.served(device.profile, *read),
            sim_time=device.start_epoch + t,
            wall_time=clock.wall(),
            faults=faults,
        )


class AsciiDevice:
    """A Vaisala-style polled station or a free-running NMEA talker on its own pty."""

    def __init__(self, device: SimDevice, clock: SimClock, truth: TruthWriter) -> None:
        self.device = device
        self.clock = clock
        self.truth = truth
        self.pty = Pty()
        self._frames = 0
        self.address = "0"

    @property
    def settings(self) -> AsciiSettings:
        """The device's units and layout, as its scenario entry sets them."""
        spec = self.device.spec
        return AsciiSettings(speed=spec.speed_unit, temperature=spec.temperature_unit, pressure=spec.pressure_unit,
                             layout=spec.nmea_layout, reference=spec.mwv_reference)

    def _faulted(self, line: str, t: float) -> bytes | None:
        device = self.device
        self._frames += 1
        for fault in PROTOCOL_FAULTS:
            if device.plan.hits(device.id, fault, t, self._frames) is not None:
                return mutate_line(line, fault, device.plan.seed, device.id, self._frames)
        return line.encode("ascii")

    def vaisala(self, message: str, t: float, *, crc: bool = False) -> tuple[str, list[Served]]:
        """The answer to `0R<message>` (`0r<message>` with a CRC) and the points it carries, as sent."""
        profile = self.device.profile
        assert isinstance(profile, SerialProfile)
        settings = dataclasses.replace(self.settings, crc=crc)
        return vaisala_answer(profile, self.device.snapshot(t).values, self.address, message, settings)

    def _crc_query(self, command: str) -> str | None:
        """The message of a CRC-mode query `0r<n><crc>`, or None (a wrong CRC gets no data, as on a WXT)."""
        if len(command) == 6 and command[:2] == f"{self.address}r" and command[2] in "01235":
            return command[2] if vaisala_crc(command[:3]) == command[3:] else None
        return None

    async def run_polled(self) -> None:
        while True:
            line = await self.pty.reader.readline()
            command = line.decode("ascii", "replace").strip()
            t = self.clock.now()
            if not command or self.device.offline(t):
                continue
            if command == "?":
                reply = f"{self.address}\r\n"
                points: list[Served] = []
            elif len(command) == 3 and command[0] == self.address and command[1] == "R" and command[2] in "01235":
                reply, points = self.vaisala(command[2], t)
            elif (message := self._crc_query(command)) is not None:
                reply, points = self.vaisala(message, t, crc=True)
            else:
                reply, points = f"{self.address}TX,Unknown cmd\r\n", []
            data = self._faulted(reply, t)
            if data is None:
                continue
            await asyncio.sleep(0.02 + _line_time(len(data), self.device.spec.baudrate))
            self.pty.write(data)
            if points and data == reply.encode("ascii"):
                snap = self.device.snapshot(t)
                self.truth.record(
                    self.device.id,
                    points,
                    sim_time=self.device.start_epoch + t,
                    wall_time=self.clock.wall(),
                    faults=snap.faults,
                )

    async def run_free(self) -> None:
        """Talk every interval whether anyone listens or not, as NMEA sensors do."""
        interval = self.device.spec.interval_s
        while True:
            t = self.clock.now()
            if not self.device.offline(t):
                self.pty.drop_backlog()
                self._emit(t)
            next_t = (self.device.interval_of(t) + 1) * interval
            await asyncio.sleep(max(0.001, self.clock.wall_delay(next_t - self.clock.now())))

    def _emit(self, t: float) -> None:
        snap = self.device.snapshot(t)
        profile = self.device.profile
        assert isinstance(profile, SerialProfile)
        served: list[Served] = []
        if profile.parser == "nmea":
            for line, points in nmea_answer(profile, snap.values, self.device.clock(t), self.settings):
                if self._send(line, t):
                    served += points  # each sentence stands alone: a corrupted one loses only its fields
        else:
            line, points = self.vaisala("0", t)
            if self._send(line, t):
                served = points
        if served:
            self.truth.record(
                self.device.id,
                served,
                sim_time=self.device.start_epoch + t,
                wall_time=self.clock.wall(),
                faults=snap.faults,
            )

    def _send(self, line: str, t: float) -> bool:
        """Write one line, faults applied; True when it went out intact."""
        data = self._faulted(line, t)
        if data is None:
            return False
        self.pty.write(data)
        return data == line.encode("ascii")

    def close(self) -> None:
        self.pty.close()
