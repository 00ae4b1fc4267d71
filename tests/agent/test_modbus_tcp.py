"""ModbusSource against a pymodbus server: every type and order, TCP and RTU over TCP, link loss."""

from __future__ import annotations

import asyncio
import logging
import math

import pytest
from known_registers import COILS, DISCRETE, INPUTS, all_types_profile, expected_values, holding_image
from modbus_peers import device_context, free_port, tcp_server

from agent.catalog import DeviceEntry
from agent.config import Device, TcpLink
from agent.sources import create_source
from agent.sources.base import DeviceError, LinkError, SourceReading
from roadpulse.wire import Quality

pytestmark = pytest.mark.slow


def _entry(port: int, transport: str = "tcp", unit: int = 1) -> DeviceEntry:
    profile = all_types_profile()
    device = Device(id="dev", profile="all_types", unit=unit, timeout_s=0.5, retries=0,
                    tcp=TcpLink(host="127.0.0.1", port=port, transport=transport))  # type: ignore[arg-type]
    return DeviceEntry(device, profile, {r.name: i for i, r in enumerate(profile.registers)})


def _context():  # type: ignore[no-untyped-def]
    return device_context(holding=holding_image(), inputs=INPUTS, coils=COILS, discrete=DISCRETE)


def _check(readings: list[SourceReading]) -> None:
    expected = expected_values()
    got = {r.name: r for r in readings}
    assert set(got) == set(expected)
    for name, value in expected.items():
        reading = got[name]
        if value is None:
            assert (reading.quality, reading.reason) == (Quality.BAD, "invalid"), name
        elif isinstance(value, float):
            assert reading.quality == Quality.GOOD, name
            assert isinstance(reading.value, float)
            assert math.isclose(reading.value, value, rel_tol=1e-9), name
        else:
            assert (reading.value, reading.quality) == (value, Quality.GOOD), name


@pytest.mark.parametrize("transport", ["tcp", "rtu-over-tcp"])
def test_every_type_and_order(transport: str) -> None:
    async def main() -> None:
        async with tcp_server({1: _context()}, rtu_framing=transport != "tcp") as port:
            source = create_source(_entry(port, transport))
            try:
                _check(await source.read())
            finally:
                await source.close()

    asyncio.run(main())


def test_missing_unit_is_a_device_error_not_a_crash() -> None:
    async def main() -> None:
        async with tcp_server({1: _context()}) as port:
            source = create_source(_entry(port, unit=9))
            # pymodbus answers exception 0x0B (gateway target failed) for an unknown unit
            with pytest.raises(DeviceError):
                await source.read()
            await source.close()

    asyncio.run(main())


def test_dropped_link_is_logged_once_and_recovers(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="agent.sources.modbus.link")

    async def main() -> None:
        port = free_port()
        entry = _entry(port)
        source = create_source(entry)
        with pytest.raises(LinkError):
            await source.read()
        with pytest.raises(LinkError):
            await source.read()  # backing off: no new attempt, no new log line
        # the server appears on the same port: the next attempt after the backoff finds it
        from modbus_peers import ModbusServerContext, ModbusTcpServer

        server = ModbusTcpServer(ModbusServerContext(devices={1: _context()}, single=False),
                                 address=("127.0.0.1", port))
        await server.serve_forever(background=True)
        try:
            for _ in range(40):
                try:
                    _check(await source.read())
                    break
                except LinkError:
                    await asyncio.sleep(0.1)
            else:
                pytest.fail("link did not come back")
        finally:
            await server.shutdown()
        await source.close()

    asyncio.run(main())
    events = [getattr(r, "event", None) for r in caplog.records]
    assert events.count("link_down") == 1
    assert events.count("link_up") == 1


@pytest.mark.parametrize("transport", ["tcp", "rtu-over-tcp"])
def test_gateway_bus_shares_one_connection_between_units(transport: str) -> None:
    from agent.config import AgentConfig
    from agent.sources.modbus.bus import build_buses

    async def main() -> None:
        async with tcp_server({1: _context(), 7: _context()}, rtu_framing=transport != "tcp") as port:
            config = AgentConfig.model_validate({
                "agent": {"gateway_id": "gw-1"},
                "buses": [{"id": "gw", "tcp": {"host": "127.0.0.1", "port": port, "transport": transport},
                           "timeout_s": 0.5, "retries": 0}],
                "devices": [{"id": f"plc{u}", "profile": "all_types", "bus": "gw", "unit": u} for u in (1, 7)],
            })
            buses = build_buses(config.buses)
            profile = all_types_profile()
            sources = [create_source(DeviceEntry(d, profile, {}), bus=buses["gw"]) for d in config.devices]
            try:
                async with asyncio.TaskGroup() as tg:
                    reads = [tg.create_task(s.read(), name=f"read[{i}]") for i, s in enumerate(sources)]
                for task in reads:
                    _check(task.result())
                assert buses["gw"].requests == 2 * 4  # 4 planned reads per device, one connection
            finally:
                for bus in buses.values():
                    bus.close()

    asyncio.run(main())


def test_a_bus_needs_exactly_one_link() -> None:
    from pydantic import ValidationError

    from agent.config import Bus

    with pytest.raises(ValidationError, match="exactly one"):
        Bus(id="b")
