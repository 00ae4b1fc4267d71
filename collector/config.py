"""The collector's TOML config. Validation opens no port; start-up and `config check` share it."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from roadpulse.configfile import Strict, load_model
from roadpulse.mqttconfig import EnvVar, HttpUrl, ListenAddress, MqttLinkConfig, MqttUrl, SecretFile, WritableDir


class CollectorSection(Strict):
    client_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")
    data_dir: WritableDir
    park_timeout_s: float = Field(default=10.0, gt=0)
    gap_grace_s: float = Field(default=30.0, gt=0)
    self_metrics_interval_s: float = Field(default=10.0, gt=0)
    # /healthz fails when a message has waited longer than this for its ack (a stalled ledger).
    unacked_max_age_s: float = Field(default=120.0, gt=0)


class MqttSection(MqttLinkConfig):
    """The shared MQTT/TLS/credentials model (roadpulse.mqttconfig) plus the collector's own keys."""

    url: MqttUrl
    share_group: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.\-]+$")
    session_expiry_s: int = Field(default=7 * 24 * 3600, ge=0)
    # Unacked QoS 1 messages the broker may send us (MQTT 5 receive maximum); batches are sealed
    # at half of it so the broker never stalls waiting for our acks. Mosquitto 2.0 honours a
    # value above its max_inflight_messages; larger batches cost less CPU per reading.
    receive_maximum: int = Field(default=1000, ge=2, le=65535)


class InfluxSection(Strict):
    """Where batches go: InfluxDB, or a server that takes its write API (VictoriaMetrics)."""

    url: HttpUrl
    # victoriametrics: also a cluster's vminsert (url `http://vminsert:8480/insert/0/influx`), docs/scaling.md
    server: Literal["influxdb", "victoriametrics"] = "influxdb"
    api: Literal["v1", "v2"] = "v1"
    database: str = "roadpulse"
    retention_policy: str | None = None
    username: str | None = None
    password_file: SecretFile | None = None
    password_env: EnvVar | None = None
    token_file: SecretFile | None = None
    token_env: EnvVar | None = None
    org: str | None = None
    bucket: str | None = None
    gzip: bool = True
    batch_max_lines: int = Field(default=10_000, ge=1)  # InfluxDB likes 5k-20k lines per POST
    batch_max_age_s: float = Field(default=1.0, gt=0)
    timeout_s: float = Field(default=10.0, gt=0)

    @model_validator(mode="after")
    def _v2_needs_target(self) -> InfluxSection:
        if self.api == "v2" and not (self.org and self.bucket):
            raise ValueError("api v2 needs org and bucket")
        return self


class SpoolSection(Strict):
    max_bytes: int = Field(default=1 << 30, ge=1 << 16)


class HttpSection(Strict):
    listen: ListenAddress | None = "127.0.0.1:9108"


class LimitsSection(Strict):
    """What one gateway (or anyone who can publish) can make the collector hold or spend.
    Each bound refuses the message as a dead letter `limit-...`, counted in `limits_hit`."""

    birth_max_bytes: int = Field(default=128 * 1024, ge=1024)
    birth_max_metrics: int = Field(default=1000, ge=1)
    births_per_gateway: int = Field(default=4, ge=1, le=64)
    message_max_readings: int = Field(default=5_000, ge=1)
    max_gateways: int = Field(default=10_000, ge=1)
    max_known_metrics: int = Field(default=1_000_000, ge=1)  # all kept births together (~1.5 KB each)
    # Not a refusal (a valid message is never dropped for being slow): counted in `slow_messages`.
    decode_max_ms: float = Field(default=50.0, gt=0)


class CollectorConfig(Strict):
    collector: CollectorSection
    mqtt: MqttSection
    influx: InfluxSection
    spool: SpoolSection = SpoolSection()
    http: HttpSection = HttpSection()
    limits: LimitsSection = LimitsSection()


def load_collector_config(path: Path | str) -> CollectorConfig:
    """Raises roadpulse.configfile.ConfigError naming the file, the key and the reason."""
    return load_model(path, CollectorConfig)
