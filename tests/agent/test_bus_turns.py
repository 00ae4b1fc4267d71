"""The shared line's turns, with a fake link: one attempt per turn, retries after first attempts."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from agent.codec.planning import Kind
from agent.config import Bus, Device, SerialLink
from agent.sources.base import DeviceError
from agent.sources.modbus.bus import SerialBus
from agent.sources.modbus.source import read_with_retries, request_timing

DEAD = 2


class FakeLink:
    """Answers every unit after `delay`, except DEAD, which stays silent for the attempt's timeout."""

    def __init__(self, delay: float = 0.01) -> None:
        self.delay = delay
        self.log: list[tuple[int, float | None]] = []  # (unit, answer timeout) per attempt
        self.active = 0

    async def read(self, kind: Kind, address: int, count: int, unit: int, *, answer_timeout_s: float | None = None,
                   retry: bool = False) -> list[int]:
        del kind, retry
        self.active += 1
        assert self.active == 1, "two requests on a half-duplex line"
        self.log.append((unit, answer_timeout_s))
        try:
            if unit == DEAD:
                await asyncio.sleep(answer_timeout_s or 0.1)
                raise DeviceError("timeout", f"unit {unit}")
            await asyncio.sleep(self.delay)
            return [address] * count
        finally:
            self.active -= 1

    def close(self) -> None:
        pass


def _bus(link: FakeLink) -> SerialBus:
    config = Bus(id="line", serial=SerialLink(port="/dev/null"), pause_ms=0, timeout_s=0.05, retries=1)
    return SerialBus(config, link=link)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("healthy", "order"),
    [((1,), [DEAD, 1, 1, DEAD, DEAD]), ((1, 3), [DEAD, 1, 3, 1, 3, DEAD, DEAD])],
)
def test_retries_wait_for_first_attempts_and_never_split_a_poll(healthy: tuple[int, ...], order: list[int]) -> None:
    async def main() -> list[int]:
        link = FakeLink()
        bus = _bus(link)
        counters: Counter[str] = Counter()

        async def dead() -> None:
            with pytest.raises(DeviceError):
                await read_with_retries(bus, "holding", 0, 1, DEAD, answer_timeout_s=0.05, retries=2,
                                        counters=counters)

        async def healthy_poll(unit: int) -> None:
            for block in (0, 20):  # two requests, as a poll of two read blocks
                assert await read_with_retries(bus, "holding", block, 2, unit, answer_timeout_s=0.05,
                                               retries=1) == [block, block]

        async with asyncio.TaskGroup() as tg:
            tg.create_task(dead(), name="poll[dead]")
            await asyncio.sleep(0)  # the silent slave's first attempt holds the line
            for unit in healthy:
                tg.create_task(healthy_poll(unit), name=f"poll[{unit}]")
        assert (counters["modbus_requests"], counters["modbus_retries"], counters["modbus_timeouts"]) == (3, 2, 3)
        return [unit for unit, _ in link.log]

    # Whole healthy polls go between the silent slave's first attempt and its retries.
    assert asyncio.run(main()) == order


def test_exception_answers_are_not_retried() -> None:
    class Refusing(FakeLink):
        async def read(self, kind: Kind, address: int, count: int, unit: int, *,
                       answer_timeout_s: float | None = None, retry: bool = False) -> list[int]:
            self.log.append((unit, answer_timeout_s))
            raise DeviceError("exception:02")

    async def main() -> None:
        link = Refusing()
        counters: Counter[str] = Counter()
        with pytest.raises(DeviceError):
            await read_with_retries(_bus(link), "holding", 0, 1, 1, answer_timeout_s=0.05, retries=3,
                                    counters=counters)
        assert len(link.log) == 1
        assert counters["modbus_exceptions"] == 1

    asyncio.run(main())


def test_a_cancelled_request_hands_the_line_on() -> None:
    async def main() -> None:
        link = FakeLink(delay=0.2)
        bus = _bus(link)
        holder = asyncio.create_task(bus.read("holding", 0, 1, 1), name="holder")
        await asyncio.sleep(0.01)
        waiter = asyncio.create_task(bus.read("holding", 0, 1, 3), name="waiter")
        await asyncio.sleep(0.01)
        waiter.cancel()
        holder.cancel()
        for task in (holder, waiter):
            with pytest.raises(asyncio.CancelledError):
                await task
        link.delay = 0.0
        async with asyncio.timeout(1):
            assert await bus.read("holding", 5, 1, 4) == [5]

    asyncio.run(main())


@pytest.mark.parametrize(
    ("device_keys", "expected"),
    [({}, (0.5, 1)), ({"timeout_s": 2.0}, (2.0, 1)), ({"retries": 0}, (0.5, 0)),
     ({"timeout_s": 1.0, "retries": 1}, (1.0, 1))],  # explicit values equal to the defaults still win
)
def test_a_device_on_a_bus_uses_its_own_timing_when_it_sets_one(
    device_keys: dict[str, float], expected: tuple[float, int]
) -> None:
    bus = Bus(id="line", serial=SerialLink(port="/dev/ttyUSB0"))
    device = Device.model_validate({"id": "d", "profile": "p", "bus": "line", **device_keys})
    assert request_timing(device, bus) == expected
    assert request_timing(Device(id="t", profile="p", tcp={"host": "h"}), None) == (1.0, 1)  # type: ignore[arg-type]
