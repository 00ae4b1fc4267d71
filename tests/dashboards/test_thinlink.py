"""A gateway on a thin link (3 KB/s, a weak 4G cell) holds its session and gets past its birth.

The g60 devices' birth is ~36 KB: 12 s on this link. With the PUBACK timeout fixed at 10 s, the
session dropped every 10 s and nothing after the birth was ever sent. The publisher now gives a
message time for its bytes (agent/publisher.py `ack_timeout`).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from agent.publisher import ACK_TIMEOUT_S, SLOW_LINK_BYTES_PER_S, ack_timeout
from roadpulse.services import Influxd, Mosquitto, count_readings

from . import pipeline
from .slowlink import SlowLink, Throttle
from .test_live import SCENARIOS

RATE = 3000.0  # bytes/s, each way
DB = "thin"


def test_ack_timeout_grows_with_the_message() -> None:
    assert ack_timeout(0) == ACK_TIMEOUT_S
    # 36 KB at the slowest link assumed: well past what it takes at RATE (12 s).
    assert ack_timeout(36_000) == ACK_TIMEOUT_S + 36_000 / SLOW_LINK_BYTES_PER_S
    assert ack_timeout(36_000) > 36_000 / RATE + 1


@pytest.mark.slow
def test_a_thin_link_gets_past_the_birth(tmp_path: Path) -> None:
    root = tmp_path
    db, broker = Influxd(root / "influxd"), Mosquitto(root / "mosquitto")
    with db, broker:
        db.create_database(DB)

        async def through_thin_link() -> tuple[pipeline.Run, SlowLink]:
            async with SlowLink(broker.port, up=Throttle(bytes_per_s=RATE), down=Throttle(bytes_per_s=RATE)) as link:
                run = await pipeline.run(SCENARIOS / "alerts-g60-clean.toml", root, broker.url, db.url, DB,
                                         seconds=25.0, agent_mqtt_url=link.url)
            return run, link

        run, link = asyncio.run(through_thin_link())
        stored = count_readings(db.url, DB)
    assert link.connections == 1, f"the session dropped on a {RATE:.0f} B/s link ({link.connections} connections)"
    # The birth (~36 KB) crossed, and data after it: readings are stored, fewer than taken (the link is thin).
    assert link.bytes_up > 36_000
    assert 0 < stored < run.sent, (stored, run.sent)
