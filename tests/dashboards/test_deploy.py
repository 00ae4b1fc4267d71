"""deploy/compose.yaml and the Grafana provisioning files parse and point at files that exist.

No container runs here: this checks what can be checked without Docker and Grafana.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from collector.config import load_collector_config
from roadpulse.dashboards.build import BOARDS
from roadpulse.dashboards.influxql import DATASOURCE_UID

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
PROVISIONING = DEPLOY / "grafana" / "provisioning"


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return data


def binds(service: dict[str, Any]) -> dict[str, Path]:
    """Container path -> host path of the service's bind mounts (named volumes left out)."""
    out = {}
    for volume in service.get("volumes", []):
        host, container = volume.split(":")[:2]
        if host.startswith("."):
            out[container] = (DEPLOY / host).resolve()
    return out


def test_compose_runs_the_four_services_on_one_namespace() -> None:
    services = compose()["services"]
    assert set(services) == {"influxdb", "mosquitto", "collector", "grafana"}
    for name in ("mosquitto", "collector", "grafana"):
        assert services[name]["network_mode"] == "service:influxdb"
    assert {"1883:1883", "3000:3000"} <= set(services["influxdb"]["ports"])


def test_every_bind_mount_exists() -> None:
    for name, service in compose()["services"].items():
        for container, host in binds(service).items():
            assert host.exists(), f"{name}: {host} (mounted at {container}) does not exist"
    secret = compose()["secrets"]["grafana-admin-password"]["file"]
    assert (DEPLOY / secret).resolve().parent.is_dir()  # the operator creates the file itself


def test_compose_uses_the_broker_and_collector_configs_the_tests_use() -> None:
    services = compose()["services"]
    assert binds(services["mosquitto"])["/roadpulse/mosquitto.conf"] == DEPLOY / "mosquitto.conf"
    config = binds(services["collector"])["/srv/roadpulse/config/collector.toml"]
    assert config == ROOT / "config" / "collector.example.toml"
    loaded = load_collector_config(config)
    # One network namespace: the shipped loopback addresses reach the other services.
    assert loaded.mqtt.url == "mqtt://127.0.0.1:1883"
    assert loaded.influx.url == "http://127.0.0.1:8086"
    assert loaded.influx.database == "roadpulse"
    assert services["influxdb"]["environment"]["INFLUXDB_DB"] == loaded.influx.database


def test_grafana_provisioning_matches_the_generated_files() -> None:
    grafana = compose()["services"]["grafana"]
    mounts = binds(grafana)
    assert mounts["/etc/grafana/provisioning"] == PROVISIONING
    (source,) = yaml.safe_load((PROVISIONING / "datasources" / "roadpulse.yaml").read_text())["datasources"]
    assert source["uid"] == DATASOURCE_UID
    assert source["type"] == "influxdb"
    assert source["jsonData"]["dbName"] == "roadpulse"
    (provider,) = yaml.safe_load((PROVISIONING / "dashboards" / "roadpulse.yaml").read_text())["providers"]
    dashboards = mounts[provider["options"]["path"]]
    assert sorted(p.stem for p in dashboards.glob("*.json")) == sorted(BOARDS)
    for path in dashboards.glob("*.json"):
        board = json.loads(path.read_text())
        uses = {t["datasource"]["uid"] for p in board["panels"] for t in p.get("targets", [])}
        assert uses == {DATASOURCE_UID}, path.name
    rules = yaml.safe_load((PROVISIONING / "alerting" / "roadpulse-rules.yaml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            assert {q["datasourceUid"] for q in rule["data"]} <= {DATASOURCE_UID, "__expr__"}
