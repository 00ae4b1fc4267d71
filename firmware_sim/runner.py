"""Bring a scenario's devices up on loopback and ptys, and take them down again.

    async with Simulator(load_scenario("config/scenarios/demo.toml")) as sim:
        for ep in sim.endpoints:
            print(ep.device_id, ep.protocol, ep.address, ep.unit)
        await asyncio.sleep(60)

Serial devices run as named tasks in one TaskGroup owned by the simulator;
TCP devices are asyncio servers. Leaving the block cancels and closes all.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self

from firmware_sim.clock import SimClock
from firmware_sim.device import SimDevice, build_devices
from firmware_sim.scenario import Scenario, load_scenario
from firmware_sim.serve_serial import AsciiDevice, RtuBus
from firmware_sim.serve_tcp import ModbusTcpServer
from firmware_sim.traffic import RoadModel
from firmware_sim.truth import TruthWriter

EndpointProtocol = Literal["modbus-tcp", "modbus-rtu", "ascii"]


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where the agent reaches one simulated device."""

    device_id: str
    profile: str
    protocol: EndpointProtocol
    address: str  # host:port for TCP, the pty slave path for serial
    unit: int | None
    baudrate: int


class Simulator:
    """Async context manager: on enter every device answers; `endpoints` says where."""

    def __init__(
        self,
        scenario: Scenario,
        *,
        truth_path: Path | None = None,
        host: str = "127.0.0.1",
        clock: SimClock | None = None,
    ) -> None:
        self.scenario = scenario
        self.host = host
        self.truth_path = truth_path
        self.endpoints: list[Endpoint] = []
        self.devices: list[SimDevice] = []
        self.road: RoadModel | None = None
        # Tests pass a ManualClock to put the simulation at exact instants.
        self._given_clock = clock
        self.clock = clock or SimClock(scenario.time_scale)
        self._truth = TruthWriter(None)
        self._tcp: list[ModbusTcpServer] = []
        self._buses: list[RtuBus] = []
        self._ascii: list[AsciiDevice] = []
        self._group: asyncio.TaskGroup | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> Self:
        if self._group is not None:
            raise RuntimeError("Simulator is not re-entrant")
        self.road, self.devices = build_devices(self.scenario)
        self.endpoints = []
        self._truth = TruthWriter(self.truth_path)
        self.clock = self._given_clock or SimClock(self.scenario.time_scale)
        self._group = asyncio.TaskGroup()
        await self._group.__aenter__()
        try:
            await self._start()
        except BaseException:
            await self._stop()
            raise
        return self

    async def _start(self) -> None:
        assert self._group is not None
        by_bus: dict[str, list[SimDevice]] = {}
        for device in self.devices:
            spec = device.spec
            if spec.protocol == "modbus-tcp":
                server = ModbusTcpServer(device, self.clock, self._truth, self.host, spec.port)
                await server.start()
                self._tcp.append(server)
                self.endpoints.append(
                    Endpoint(spec.id, spec.profile, "modbus-tcp", server.address, spec.unit, spec.baudrate)
                )
            elif spec.protocol == "modbus-rtu":
                assert spec.bus is not None
                by_bus.setdefault(spec.bus, []).append(device)
            else:
                talker = AsciiDevice(device, self.clock, self._truth)
                self._ascii.append(talker)
                run = talker.run_free() if spec.free_running else talker.run_polled()
                self._spawn(run, f"sim[{spec.id}].ascii")
                self.endpoints.append(Endpoint(spec.id, spec.profile, "ascii", talker.pty.path, None, spec.baudrate))
        for bus in self.scenario.buses:
            members = by_bus.get(bus.id, [])
            if not members:
                continue
            rtu = RtuBus(bus.id, bus.baudrate, members, self.clock, self._truth)
            self._buses.append(rtu)
            self._spawn(rtu.run(), f"sim[{bus.id}].rtu")
            for device in sorted(members, key=lambda d: d.spec.unit):
                self.endpoints.append(
                    Endpoint(device.id, device.spec.profile, "modbus-rtu", rtu.pty.path, device.spec.unit, bus.baudrate)
                )
        order = {d.id: i for i, d in enumerate(self.devices)}
        self.endpoints.sort(key=lambda e: order[e.device_id])
        self._spawn(self._flush_truth(), "sim.truth-flush")

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        assert self._group is not None
        self._tasks.append(self._group.create_task(coro, name=name))

    async def _flush_truth(self) -> None:
        while True:
            await asyncio.sleep(0.5)
            self._truth.flush()

    def endpoint(self, device_id: str) -> Endpoint:
        return next(e for e in self.endpoints if e.device_id == device_id)

    def device(self, device_id: str) -> SimDevice:
        return next(d for d in self.devices if d.id == device_id)

    async def _stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        group, self._group = self._group, None
        try:
            if group is not None:
                await group.__aexit__(None, None, None)
        finally:
            for server in self._tcp:
                await server.close()
            for bus in self._buses:
                bus.close()
            for talker in self._ascii:
                talker.close()
            self._truth.close()
            self._tcp, self._buses, self._ascii, self._tasks = [], [], [], []

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._stop()

    async def run_for(self, seconds: float | None) -> None:
        """Serve until `seconds` of wall time pass (None: until cancelled)."""
        if seconds is None:
            await asyncio.Event().wait()
        else:
            await asyncio.sleep(seconds)


__all__ = ["Endpoint", "Simulator", "load_scenario"]
