"""Helpers for collector tests that run real services."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.collector.victoria import VictoriaMetrics

if TYPE_CHECKING:
    from collector.run import Collector

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def victoria(tmp_path: Path) -> Iterator[VictoriaMetrics]:
    """A private VictoriaMetrics, stopped (by PID) after the test."""
    if shutil.which("victoria-metrics") is None:
        pytest.fail("victoria-metrics not installed: run scripts/setup.sh")
    service = VictoriaMetrics(tmp_path / "victoria")
    service.start()
    try:
        yield service
    finally:
        service.stop()


async def wait_for(predicate: Callable[[], bool], limit_s: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + limit_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {limit_s}s")
        await asyncio.sleep(0.1)


@contextlib.asynccontextmanager
async def running(collector: Collector) -> AsyncIterator[Collector]:
    """The collector's run() in a task group, connected with its subscriptions acknowledged;
    stopped cleanly (flush, acks, disconnect) on leaving."""
    stop = asyncio.Event()
    async with asyncio.TaskGroup() as tg:
        tg.create_task(collector.run(stop), name="collector")
        await wait_for(lambda: collector.stats.mqtt_connected)
        try:
            yield collector
        finally:
            stop.set()


def wait_until(predicate: Callable[[], bool], timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout}s")
        time.sleep(0.2)


def stop_collector_process(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM (a clean stop drains and acks), SIGKILL only if it hangs."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def start_collector_process(config: Path, log: Path) -> subprocess.Popen[bytes]:
    """`python -m collector.run FILE` in its own session, so a SIGKILL hits only it."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "collector.run", str(config)], cwd=ROOT, env=env,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
