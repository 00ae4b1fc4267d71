"""The committed Grafana files are what the code builds, and they decode with the SDK's own types."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.alerting import Rule
from grafana_foundation_sdk.models.dashboard import Dashboard

from roadpulse.dashboards import alerts
from roadpulse.dashboards.build import ALERTS, BOARDS, DEPLOY, main, rendered, stale
from roadpulse.dashboards.influxql import DATASOURCE_UID, InfluxQLQuery, Select

from .grafana_sim import expand

ROOT = Path(__file__).resolve().parents[2]
REQUIRED_VARIABLES = {"overview": {"road", "direction", "site", "gateway"}, "weather": {"road", "site", "gateway"},
                      "devices": {"gateway"}, "pipeline": {"gateway"}}


def boards() -> dict[str, dict[str, Any]]:
    return {name: json.loads((DEPLOY / "dashboards" / f"{name}.json").read_text()) for name in BOARDS}


def targets(board: dict[str, Any]) -> list[dict[str, Any]]:
    return [t for p in board["panels"] for t in p.get("targets", [])]


def test_committed_files_are_what_the_code_builds() -> None:
    assert stale() == [], "run: python -m roadpulse.dashboards"
    assert main(["--check"]) == 0


def test_check_fails_on_a_hand_edited_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--out", str(tmp_path)]) == 0
    edited = tmp_path / "dashboards" / "weather.json"
    edited.write_text(edited.read_text().replace("Visibility", "Visibilty", 1))
    assert main(["--check", "--out", str(tmp_path)]) == 1
    assert "weather.json" in capsys.readouterr().err


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_dashboard_decodes_with_the_sdk_types_unchanged(name: str) -> None:
    text = rendered()[Path("dashboards") / f"{name}.json"]
    plain = json.loads(text)
    decoded = Dashboard.from_json(plain)
    assert json.loads(json.dumps(decoded, cls=JSONEncoder)) == plain
    assert decoded.uid == f"roadpulse-{name}"
    assert decoded.title
    for panel in decoded.panels or []:
        for target in getattr(panel, "targets", None) or []:
            assert isinstance(target, InfluxQLQuery), f"{name}: {panel.title}: a target the SDK did not type"


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_every_query_expands_fully_with_the_dashboard_variables(name: str) -> None:
    board = boards()[name]
    variables = {v["name"]: None for v in board["templating"]["list"]}
    assert REQUIRED_VARIABLES.get(name, set()) <= set(variables)
    for variable in board["templating"]["list"]:
        assert variable["datasource"]["uid"] == DATASOURCE_UID
        expand(variable["query"], from_ms=0, to_ms=1, interval_ms=1000, variables=variables)
    assert targets(board), name
    for target in targets(board):
        assert target["datasource"]["uid"] == DATASOURCE_UID
        text = expand(target["query"], from_ms=0, to_ms=1, interval_ms=1000, variables=variables)
        assert text.startswith("SELECT ")
        assert "time >=" in text or "now()" in text


def test_alert_rules_decode_with_the_sdk_types() -> None:
    provisioning = yaml.safe_load(rendered()[ALERTS])
    assert provisioning["apiVersion"] == 1
    rules = [r for g in provisioning["groups"] for r in g["rules"]]
    uids = {r["uid"] for r in rules}
    assert {"roadpulse-gateway-silent", "roadpulse-gateway-death", "roadpulse-device-down", "roadpulse-agent-backlog",
            "roadpulse-spool-filling", "roadpulse-dead-letters", "roadpulse-visibility-200m", "roadpulse-tunnel-co",
            "roadpulse-water-hydro-k15", "roadpulse-new-incident"} <= uids
    for r in rules:
        decoded = Rule.from_json({**r, "folderUID": "x", "orgID": 1, "ruleGroup": "g"})
        assert decoded.condition in {q.ref_id for q in decoded.data}
        refs = [q["refId"] for q in r["data"]]
        assert len(refs) == len(set(refs))
        for q in r["data"]:
            if q["datasourceUid"] != "__expr__":
                assert isinstance(InfluxQLQuery.from_json(q["model"]), InfluxQLQuery)
                assert q["relativeTimeRange"]["from"] > 0


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        ({"road": None}, '"road" =~ /^.*$/'),
        ({"road": ["G60"]}, '"road" =~ /^G60$/'),
        ({"road": ["G60", "S1.a"]}, '"road" =~ /^(G60|S1\\.a)$/'),
    ],
)
def test_variables_expand_as_grafana_writes_regex_values(variables: dict[str, list[str] | None], expected: str) -> None:
    query = str(Select("traffic", ('mean("speed")',), ("road",)))
    text = expand(query, from_ms=1000, to_ms=2000, interval_ms=500, variables=variables)
    assert text == f'SELECT mean("speed") FROM "traffic" WHERE {expected} AND time >= 1000ms and time <= 2000ms ' \
                   "GROUP BY time(500ms) fill(none)"


def test_water_rules_follow_the_station_file() -> None:
    (station,) = [s for s in alerts.load_stations() if s.device == "hydro-k15"]
    rule = json.loads(json.dumps(alerts.water_rule(station, alerts.Timing()).build(), cls=JSONEncoder))
    (condition,) = [q for q in rule["data"] if q["refId"] == "C"]
    assert condition["model"]["conditions"][0]["evaluator"]["params"] == [station.warning_m]
