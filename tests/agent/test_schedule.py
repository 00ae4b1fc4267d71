"""Poll timing and report-by-exception, as tables; then the loop with a fake source."""

from __future__ import annotations

import asyncio
import logging
import random

import pytest

from agent.catalog import DeviceEntry
from agent.config import Device, TcpLink
from agent.schedule import DeviceStats, PollClock, ReportFilter, poll_forever
from agent.sources.base import DeviceError, SourceReading
from roadpulse.profiles import ModbusProfile, Register
from roadpulse.wire import Quality, Reading


def test_aligned_clock_polls_on_wall_clock_multiples() -> None:
    clock = PollClock(30.0, align=True)
    assert clock.first(1_000_012.3) == 1_000_020.0  # the next :00 or :30
    assert clock.after(1_000_021.0) == (1_000_050.0, 0)


def test_unaligned_clock_polls_at_once_then_every_interval() -> None:
    clock = PollClock(10.0)
    assert clock.first(100.0) == 100.0
    assert clock.after(101.5) == (110.0, 0)
    assert clock.after(110.2) == (120.0, 0)


@pytest.mark.parametrize(("ended_at", "due", "missed"), [(125.0, 130.0, 1), (139.9, 140.0, 2), (120.0, 130.0, 1)])
def test_overrun_slots_are_skipped_and_counted(ended_at: float, due: float, missed: int) -> None:
    clock = PollClock(10.0)
    clock.first(100.0)
    clock.after(101.0)  # slot 110
    assert clock.after(ended_at) == (due, missed)


def test_aligned_clock_realigns_after_the_wall_clock_steps_back() -> None:
    clock = PollClock(30.0, align=True)
    clock.first(10_000.0)
    assert clock.after(5_000.0) == (5_010.0, 0)


def test_jitter_delays_without_moving_the_grid() -> None:
    clock = PollClock(10.0, jitter=2.0, rng=random.Random(1))
    dues = [clock.first(100.0)] + [clock.after(100.0 + 10 * (i - 1) + 2.5)[0] for i in range(1, 50)]
    for i, due in enumerate(dues):
        assert 100.0 + 10 * i <= due <= 100.0 + 10 * i + 2.0


def _r(value: object, ts_s: float, quality: Quality = Quality.GOOD, reason: str = "") -> SourceReading:
    return SourceReading("x", value, int(ts_s * 1000), quality, reason)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("deadband", "silence", "series", "sent"),
    [
        (None, None, [(1.0, 0), (1.0, 1)], [True, True]),
        (0.5, None, [(1.0, 0), (1.4, 1), (1.6, 2), (1.2, 3)], [True, False, True, False]),
        # compared with the last sent value: slow drift still gets through
        (0.5, None, [(1.0, 0), (1.3, 1), (1.6, 2)], [True, False, True]),
        (0.5, 60.0, [(1.0, 0), (1.0, 30), (1.0, 60), (1.0, 61)], [True, False, True, False]),
        (0.0, None, [(5, 0), (5, 1), (6, 2)], [True, False, True]),
        (1.0, None, [("a", 0), ("a", 1), ("b", 2)], [True, False, True]),
        (1.0, None, [(True, 0), (False, 1)], [True, True]),
    ],
)
def test_report_by_exception(
    deadband: float | None, silence: float | None, series: list[tuple[object, float]], sent: list[bool]
) -> None:
    flt = ReportFilter(deadband, silence)
    assert [flt.should_send(_r(v, t)) for v, t in series] == sent


def test_quality_changes_are_always_sent() -> None:
    flt = ReportFilter(10.0, None)
    assert flt.should_send(_r(1.0, 0))
    assert flt.should_send(_r(None, 1, Quality.BAD, "timeout"))
    assert not flt.should_send(_r(None, 2, Quality.BAD, "timeout"))
    assert flt.should_send(_r(1.0, 3))


class FlakySource:
    def __init__(self, plan: list[object]) -> None:
        self.plan = plan
        self.calls = 0
        self.done = asyncio.Event()

    async def connect(self) -> None: ...

    async def close(self) -> None: ...

    async def read(self) -> list[SourceReading]:
        step = self.plan[min(self.calls, len(self.plan) - 1)]
        self.calls += 1
        if self.calls >= len(self.plan):
            self.done.set()
        if isinstance(step, DeviceError):
            raise step
        return [SourceReading("temp", step, 1000)]  # type: ignore[arg-type]


def _entry(interval: float = 0.02) -> DeviceEntry:
    device = Device(id="d1", profile="p", interval_s=interval, tcp=TcpLink(host="h"))
    profile = ModbusProfile(driver="modbus", name="p", measurement="m",
                            registers=[Register(name="temp", address=0)])
    return DeviceEntry(device, profile, {"temp": 7})


def test_poll_forever_emits_marks_failures_and_logs_state_changes_once(caplog: pytest.LogCaptureFixture) -> None:
    asyncio.run(_poll_with_failures(caplog))


async def _poll_with_failures(caplog: pytest.LogCaptureFixture) -> None:
    timeout = DeviceError("timeout")
    source = FlakySource([1, timeout, timeout, timeout, 2, 3])
    emitted: list[Reading] = []

    async def emit(readings: list[Reading]) -> None:
        emitted.extend(readings)

    stats = DeviceStats()
    caplog.set_level(logging.INFO, logger="agent.schedule")
    task = asyncio.create_task(poll_forever(_entry(), source, emit, stats=stats))
    await asyncio.wait_for(source.done.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    values = [(r.alias, r.value, r.quality, r.reason) for r in emitted[:6]]
    assert values[0] == (7, 1, Quality.GOOD, "")
    assert values[1] == (7, None, Quality.BAD, "timeout")
    assert (7, 2, Quality.GOOD, "") in values
    assert stats.errors == 3
    events = [r.event for r in caplog.records if hasattr(r, "event")]  # type: ignore[attr-defined]
    assert events == ["device_down", "device_up"]


def test_slow_poll_counts_overruns_instead_of_queueing() -> None:
    asyncio.run(_slow_poll())


async def _slow_poll() -> None:
    class Slow(FlakySource):
        async def read(self) -> list[SourceReading]:
            await asyncio.sleep(0.075)
            return await super().read()

    source = Slow([1])
    stats = DeviceStats()

    async def emit(readings: list[Reading]) -> None:
        return None

    task = asyncio.create_task(poll_forever(_entry(0.02), source, emit, stats=stats))
    await asyncio.sleep(0.4)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert stats.overruns >= 3 * stats.polls - 3
    assert stats.polls <= 6
