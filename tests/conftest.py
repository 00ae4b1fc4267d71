"""Shared fixtures: private Mosquitto and InfluxDB processes, stopped even when a test fails."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from roadpulse.services import Influxd, Mosquitto


def _require(binary: str) -> None:
    if shutil.which(binary) is None and not Path(f"/usr/sbin/{binary}").exists():
        pytest.fail(f"{binary} is not installed: run the README's test command, which installs it")


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    """A broker of this test's own on a free loopback port, with roadpulse's shipped settings."""
    _require("mosquitto")
    broker = Mosquitto(tmp_path / "mosquitto")
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def influxd(tmp_path: Path) -> Iterator[Influxd]:
    """An InfluxDB 1.x of this test's own, with database `roadpulse` created."""
    _require("influxd")
    server = Influxd(tmp_path / "influxd")
    server.start()
    try:
        server.create_database("roadpulse")
        yield server
    finally:
        server.stop()
