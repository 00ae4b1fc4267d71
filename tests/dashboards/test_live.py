"""Proof on live data: the g60 devices through the whole pipeline into a private influxd, then every
panel's query and every alert rule run the way Grafana would run them (tests/dashboards/grafana_sim.py).

One run has faults and conditions injected (fog, a tunnel CO spike, a water level over its warning
level, a detector that never answers, a malformed message, InfluxDB down for 4 s, an incident
written as the road-state service writes it (that service is not in this branch), the gateway
stopping); one run is clean. "Agent queue backlog growing" is proven quiet here and firing in
test_backlog.py: the agent sends no health report while its link is down, so a growing backlog
shows only on a link that is slow but up, which that test builds.
Alert windows are scaled to a run of seconds (alerts.Timing); the rules are otherwise the shipped ones.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from grafana_foundation_sdk.cog.encoder import JSONEncoder

from roadpulse.dashboards import alerts
from roadpulse.dashboards.build import BOARDS, dashboard_json
from roadpulse.demo import GATEWAY
from roadpulse.services import Influxd, Mosquitto, influx_query

from . import pipeline
from .grafana_sim import evaluate, expand, series_of

SCENARIOS = Path(__file__).resolve().parents[2] / "config" / "scenarios"
TIMING = alerts.Timing(health_interval_s=1.0, silent_intervals=3, device_down_s=8.0, growth_window_s=4.0,
                       spool_age_s=2.0, counter_bucket_s=1.0, window_s=60.0, pending="0s")
ROAD_STATE = ("road_state", "incident")
INTERVAL_MS = 2000
pytestmark = pytest.mark.slow
# Panels a run may leave empty, and why: the query still has to run and, with data, have its shape.
MAY_BE_EMPTY = {
    # The shipped agent sends a quality only with no value (stored as <field>_err); `_q` fields
    # come from doubtful time (tf_q) or a future driver's uncertain readings, which this run has none of.
    "Readings with a quality flag, by device and field (count of <field>_q)",
}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Both runs, once for the module: (db, Run) per scenario."""
    root = tmp_path_factory.mktemp("live")
    out: dict[str, Any] = {}
    with Influxd(root / "influxd") as db:
        for name, seconds in (("faults", 18.0), ("clean", 12.0)):
            db.create_database(name)
            work = root / name
            work.mkdir()
            with Mosquitto(work / "mosquitto") as broker:
                async def inject(run: pipeline.Run, broker: Mosquitto = broker, name: str = name) -> None:
                    if name != "faults":
                        return
                    await asyncio.sleep(4)
                    # Not msgpack: the collector must dead-letter it.
                    await asyncio.to_thread(subprocess.run, ["mosquitto_pub", "-h", broker.host, "-p",
                                            str(broker.port), "-q", "1", "-t", f"rp/v1/{GATEWAY}/data",
                                            "-m", "not msgpack"], check=True)
                    # InfluxDB down for 4 s: the collector spools.
                    await asyncio.to_thread(db.stop)
                    await asyncio.sleep(4)
                    await asyncio.to_thread(db.start)
                    run.marks["influx_back"] = pipeline.now_ms()
                    await asyncio.sleep(1)
                    await asyncio.to_thread(write_road_state, db.url, name, pipeline.now_ms())

                out[name] = asyncio.run(pipeline.run(SCENARIOS / f"alerts-g60-{name}.toml", work, broker.url,
                                                     db.url, name, seconds=seconds, during=inject))
        out["url"] = db.url
        # Query while influxd still runs: the tests below receive the answers' runner.
        yield out


def write_road_state(url: str, db: str, now: int) -> None:
    """An incident and the level of service around it, as the road-state service writes them
    (docs/road-state.md of the roadstate lane): that service is not in this branch."""
    lines = []
    for i, (segment, los) in enumerate((("K016+000-K018+000", "D"), ("K018+000-K020+000", "F"))):
        tags = f"direction=N,road=G60,segment={segment}"
        for k in range(3):
            t = now - 6000 + 2000 * k
            lines.append(f'road_state,{tags} flow=1500.0,speed={60.0 - 25 * i},density=40.0,los="{los}",'
                         f'los_index={"ABCDEF".index(los) + 1}i,congestion_level={3 + i}i,delay_ratio=0.4,'
                         f"stations_ok=2i,from_km={16.0 + 2 * i},to_km={18.0 + 2 * i} {t}")
    start = now - 4000
    lines.append(f'incident,algorithm=roadpulse,direction=N,road=G60,segment=K018+000-K020+000 '
                 f'id="G60/N/K018+000-K020+000/roadpulse/{start}",start_ms={start}i,end_ms=0i,active=1i,'
                 f'state="active",km=19.0,kp="K019+000",confidence=0.9,duration_s=0i {start}')
    req = urllib.request.Request(f"{url}/write?db={db}&precision=ms", data="\n".join(lines).encode(), method="POST")
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 204


def runner(live: dict[str, Any], db: str) -> Any:
    return lambda q: influx_query(live["url"], q, db)


def panel_targets() -> list[tuple[str, str, dict[str, Any]]]:
    found = []
    for name, make in BOARDS.items():
        board = dashboard_json(make)
        for panel in board["panels"]:  # type: ignore[attr-defined]
            for target in panel.get("targets", []):
                found.append((name, panel["title"], target))
    return found


def group_tags(query: str) -> set[str]:
    clause = query.rpartition("GROUP BY")[2]
    return set(re.findall(r'"([A-Za-z_]+)"', clause)) if "GROUP BY" in query else set()


def test_the_faulty_run_stored_every_reading(live: dict[str, Any]) -> None:
    from roadpulse.services import count_readings, sum_reading_counts

    for name in ("faults", "clean"):
        assert live[name].sent > 1000
        # Points the test wrote as the road-state service would are not the agent's readings.
        written = sum_reading_counts(influx_query(live["url"], 'SELECT count(*) FROM "road_state", "incident"', name))
        assert (written > 0) == (name == "faults")
        # The malformed message is a dead letter, not a reading: sent = stored holds in both runs.
        assert count_readings(live["url"], name) - written == live[name].sent, name


@pytest.mark.parametrize(("board", "title", "target"), panel_targets(), ids=lambda v: v if isinstance(v, str) else "")
def test_every_panel_query_returns_data_of_its_shape(live: dict[str, Any], board: str, title: str,
                                                     target: dict[str, Any]) -> None:
    if any(f'FROM "{m}"' in target["query"] for m in ROAD_STATE):
        body = influx_query(live["url"], "SHOW MEASUREMENTS", "faults")
        names = {v[0] for s in body["results"][0].get("series", []) for v in s["values"]}
        if not names & set(ROAD_STATE):
            pytest.skip("no road_state/incident data: the roadstate service is not in this branch")
    run = live["faults"]
    board_vars = {v["name"]: None for v in dashboard_json(BOARDS[board])["templating"]["list"]}  # type: ignore[index]
    for variables in (board_vars, {**board_vars, **({"gateway": [GATEWAY]} if "gateway" in board_vars else {})}):
        text = expand(target["query"], from_ms=run.started_ms - 1000, to_ms=run.ended_ms, interval_ms=INTERVAL_MS,
                      variables=variables)
        series = series_of(influx_query(live["url"], text, "faults"))
        if not series and title in MAY_BE_EMPTY:
            continue
        assert series, f"{board}: {title}: no data for {text}"
        assert any(values for values in series.values()), f"{board}: {title}: only nulls for {text}"
        for labels in series:
            assert {k for k, _ in labels if k != "__col"} == group_tags(target["query"]), (title, labels)
        if "GROUP BY time(" in target["query"]:
            assert max(len(v) for v in series.values()) >= 2, f"{board}: {title}: one point is no time series"


def rules() -> dict[str, dict[str, Any]]:
    plain = {}
    for group in alerts.groups(TIMING).values():
        for rule in group:
            as_json = json.loads(json.dumps(rule, cls=JSONEncoder))
            plain[as_json["uid"]] = as_json
    return plain


def labels_of(fired: dict[Any, float], key: str) -> set[str]:
    return {dict(labels).get(key, "") for labels in fired}


# uid -> (label naming what fired, the value it must name, or None for "fires"), at the moment polling stopped.
WHILE_RUNNING = {
    "roadpulse-visibility-200m": ("device", "rws-k15"),
    "roadpulse-tunnel-co": ("device", "tunnel-k15"),
    "roadpulse-water-hydro-k15": ("device", "hydro-k15"),
    "roadpulse-device-down": ("device", "vds-k08.0"),
    "roadpulse-dead-letters": ("collector", "demo-collector"),
    "roadpulse-new-incident": ("segment", "K018+000-K020+000"),
}
# When the outage it was given ended.
AFTER_OUTAGE = {
    "roadpulse-spool-filling": ("collector", "demo-collector", "influx_back"),
}
# After the agent stopped (its death sent, no more health reports): evaluated when the collector stopped.
AFTER_STOP = {
    "roadpulse-gateway-silent": ("gateway", GATEWAY),
    "roadpulse-gateway-death": ("collector", "demo-collector"),
}


@pytest.mark.parametrize("uid", sorted(WHILE_RUNNING | AFTER_STOP))
def test_rule_fires_on_its_injected_condition(live: dict[str, Any], uid: str) -> None:
    run = live["faults"]
    key, value = (WHILE_RUNNING | AFTER_STOP)[uid]
    now = run.agent_stopped_ms if uid in WHILE_RUNNING else run.ended_ms - 300
    fired = evaluate(rules()[uid], runner(live, "faults"), now)
    assert value in labels_of(fired, key), f"{uid}: fired for {fired}"
    if uid == "roadpulse-device-down":
        assert labels_of(fired, "device") == {"vds-k08.0"}, "only the detector that never answers is down"


@pytest.mark.parametrize("uid", sorted(AFTER_OUTAGE))
def test_rule_fires_when_its_outage_ends(live: dict[str, Any], uid: str) -> None:
    # Evaluated at the moment the outage ended, on what InfluxDB holds after the run: the health
    # reports and self-metrics of the outage were queued or spooled and arrived afterwards,
    # with their own times (Grafana, evaluating live, sees them once they arrive).
    run = live["faults"]
    key, value, mark = AFTER_OUTAGE[uid]
    fired = evaluate(rules()[uid], runner(live, "faults"), run.marks[mark])
    assert value in labels_of(fired, key), f"{uid}: fired for {fired}"


@pytest.mark.parametrize("uid", sorted(rules()))
def test_rule_stays_quiet_on_the_clean_run(live: dict[str, Any], uid: str) -> None:
    run = live["clean"]
    raw: dict[str, Any] = {}
    fired = evaluate(rules()[uid], runner(live, "clean"), run.agent_stopped_ms, raw=raw)
    assert fired == {}, f"{uid} fired on a clean run: {fired}"
    if uid != "roadpulse-new-incident":  # the clean run has no road-state points
        assert all(raw.values()), f"{uid}: quiet only because a query found nothing: {raw}"


def test_gateway_rules_are_quiet_while_the_gateway_reports(live: dict[str, Any]) -> None:
    run = live["faults"]
    for uid in AFTER_STOP:
        assert evaluate(rules()[uid], runner(live, "faults"), run.agent_stopped_ms - 500) == {}, uid
