"""Modbus TCP slave for one simulated device: MBAP in, PDU answered from the device's registers."""

from __future__ import annotations

import asyncio
import contextlib

from firmware_sim.clock import SimClock
from firmware_sim.device import SimDevice
from firmware_sim.faults import PROTOCOL_FAULTS, garbage_bytes, mutate_pdu_tcp
from firmware_sim.modbus import GATEWAY_NO_RESPONSE, Mbap, answer, exception_pdu, tcp_response
from firmware_sim.truth import TruthWriter
from roadpulse.profiles import ModbusProfile


class ModbusTcpServer:
    """Listens on host:port (0 = a free port); a link flap or reboot drops and refuses connections."""

    def __init__(self, device: SimDevice, clock: SimClock, truth: TruthWriter, host: str, port: int) -> None:
        self.device = device
        self.clock = clock
        self.truth = truth
        self.host = host
        self.port = port
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._requests = 0

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        await self._server.wait_closed()
        self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            if self.device.offline(self.clock.now()):
                return
            while True:
                header = Mbap.parse(await reader.readexactly(7))
                if not 2 <= header.length <= 254 or header.protocol != 0:
                    return  # not Modbus: a real device drops the connection
                pdu = await reader.readexactly(header.length - 1)
                frame = self._respond(header, pdu)
                if frame is None:
                    continue
                writer.write(frame)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    def _respond(self, header: Mbap, pdu: bytes) -> bytes | None:
        device, t = self.device, self.clock.now()
        if device.offline(t):
            raise ConnectionResetError("simulated link down")
        self._requests += 1
        if header.unit not in (device.spec.unit, 0, 255):
            return tcp_response(header, exception_pdu(pdu[0] if pdu else 0, GATEWAY_NO_RESPONSE))
        snap = device.snapshot(t)
        image = device.image(snap)
        response, kind, start, count = answer(pdu, image.words, device.ends)
        key = (device.plan.seed, device.id, self._requests)
        for fault in PROTOCOL_FAULTS:
            if device.plan.hits(device.id, fault, t, self._requests) is None:
                continue
            if fault == "garbage":
                return garbage_bytes(*key) + tcp_response(header, response)
            if fault == "partial":
                return tcp_response(header, response)[:6]
            mutated = mutate_pdu_tcp(response, fault, *key)
            return None if mutated is None else tcp_response(header, mutated)
        if not response[0] & 0x80 and count and isinstance(device.profile, ModbusProfile):
            self.truth.record(
                device.id,
                image.served(device.profile, kind, start, count),
                sim_time=device.start_epoch + t,
                wall_time=self.clock.wall(),
                faults=snap.faults,
            )
        return tcp_response(header, response)
