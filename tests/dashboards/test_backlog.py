"""Proof on live data for "Agent queue backlog growing": the g60 devices of the clean run, with the
agent's link to the broker slow but up (tests/dashboards/slowlink.py), through the whole pipeline.

The link adds DELAY_S each way. The agent keeps a few messages in flight and waits a round trip
for each PUBACK, so it sends fewer readings than it takes and its queue grows while the session
stays up and the health reports keep coming. The queue is small, so the run also reaches the
queue's cap: the rule must fire while the queue grows, and keep firing once it is full and
evicting (when it no longer grows). The same rule stays quiet on the clean run over a direct
link (test_live.py, `test_rule_stays_quiet_on_the_clean_run`). Windows are test_live's TIMING.

Delay rather than a byte rate: at 3 KB/s this agent's birth (36 KB for these devices) does not
get its PUBACK within the publisher's 10 s, so the session drops and the link is not "up".
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from roadpulse.demo import GATEWAY
from roadpulse.services import Influxd, Mosquitto, count_readings, influx_query

from . import pipeline
from .grafana_sim import evaluate
from .slowlink import SlowLink, Throttle
from .test_live import SCENARIOS, TIMING, labels_of, rules

pytestmark = pytest.mark.slow
UID = "roadpulse-agent-backlog"
DB = "slow"
# A round trip of 1 s: 8 messages in flight, of at most 10 readings, is at most 80 readings/s out,
# against the ~370 readings/s the g60 devices give when polled every second.
DELAY_S = 0.5
AGENT = {"publish": "max_readings = 10", "queue": f"max_bytes = {96 * 1024}"}


@pytest.fixture(scope="module")
def slow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("slowlink")
    # Not `as`: services' __enter__ is typed as its private base class.
    db, broker = Influxd(root / "influxd"), Mosquitto(root / "mosquitto")
    with db, broker:
        db.create_database(DB)

        async def through_slow_link() -> tuple[pipeline.Run, SlowLink]:
            async with SlowLink(broker.port, up=Throttle(delay_s=DELAY_S), down=Throttle(delay_s=DELAY_S)) as link:
                run = await pipeline.run(SCENARIOS / "alerts-g60-clean.toml", root, broker.url, db.url, DB,
                                         seconds=20.0, agent_mqtt_url=link.url, agent_sections=AGENT)
            return run, link

        run, link = asyncio.run(through_slow_link())
        yield {"url": db.url, "run": run, "link": link, "health": health_points(db.url)}


def health_points(url: str) -> list[dict[str, Any]]:
    """The agent's own health reports, oldest first, as stored."""
    body = influx_query(url, 'SELECT "queue_readings", "readings_evicted", "reconnects", "oldest_unsent_age_s" '
                             "FROM \"roadpulse_agent\" WHERE \"device\" = 'agent'", DB, epoch="ms")
    (series,) = body["results"][0]["series"]
    return [dict(zip(series["columns"], row, strict=True)) for row in series["values"]]


def fire(slow: dict[str, Any], now_ms: int) -> tuple[set[str], dict[str, Any]]:
    raw: dict[str, Any] = {}
    fired = evaluate(rules()[UID], lambda q: influx_query(slow["url"], q, DB), now_ms, raw=raw)
    return labels_of(fired, "gateway"), raw


def test_the_link_was_slow_but_up(slow: dict[str, Any]) -> None:
    link, health, run = slow["link"], slow["health"], slow["run"]
    assert link.connections == 1, "the agent reconnected: the link was not up throughout"
    assert {p["reconnects"] for p in health} == {0}
    # Reports keep their 1 s schedule behind a 1 s round trip (they used to come every ~2 s: the
    # interval was slept after each PUBACK), so a 20 s run has well over 10.
    assert len(health) >= 15, len(health)
    # Readings got through, but fewer than the agent took: the rest waited in its queue or were evicted.
    stored = count_readings(slow["url"], DB)
    assert 0 < stored < run.sent
    assert health[-1]["readings_evicted"] > 0


def test_rule_fires_while_the_queue_grows(slow: dict[str, Any]) -> None:
    health = slow["health"]
    first = health[0]["time"]
    growing = [p for p in health if not p["readings_evicted"] and p["time"] - first >= TIMING.growth_window_s * 1000]
    assert growing, f"the queue was full before a whole window of growth: {health}"
    for point in growing:
        fired, raw = fire(slow, point["time"])
        assert fired == {GATEWAY}, f"not firing at {point}: {raw}"
        # Nothing evicted yet: it fired on growth and on the age of the oldest unsent reading.
        assert not any(any(v) for v in raw["E"].values()), raw["E"]


def test_rule_keeps_firing_once_the_queue_is_full(slow: dict[str, Any]) -> None:
    health, run = slow["health"], slow["run"]
    full = [p for p in health if p["readings_evicted"] and p["time"] <= run.agent_stopped_ms]
    assert full, f"the queue never filled: {health}"
    fired, raw = fire(slow, full[-1]["time"])
    assert fired == {GATEWAY}, raw
    assert sum(sum(v) for v in raw["E"].values()) > 0, raw["E"]
