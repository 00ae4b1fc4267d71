"""The road-state service's config file (TOML), validated as every roadpulse config is."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator

from roadpulse.configfile import Strict, load_model
from roadstate.engine import ALGORITHMS

Positive = Annotated[float, Field(gt=0)]


class MqttSection(Strict):
    url: str = "mqtt://127.0.0.1:1883"
    # Its own client id and persistent session: what arrives while the service is down waits
    # at the broker, apart from the collector's session.
    client_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.\-]{1,64}$")] = "roadpulse-roadstate"
    prefix: str = "rp/v1"
    keepalive_s: Annotated[int, Field(ge=5, le=3600)] = 30


class InfluxSection(Strict):
    url: str = "http://127.0.0.1:8086"
    database: str = "roadpulse"
    timeout_s: Positive = 10.0


class RoadSection(Strict):
    """One road direction: how to order its stations and what its design values are."""

    road: str
    direction: str
    # True when kilometre posts grow in the direction of travel.
    km_increasing: bool = True
    free_flow_kmh: Positive = 90.0
    capacity_veh_h_lane: Positive = 2100.0
    effective_length_m: Positive = 6.0


class ServiceSection(Strict):
    data_dir: Path
    interval_s: Annotated[float, Field(ge=10, le=900)] = 30.0
    # An interval is closed once data this much newer has arrived from the road.
    lateness_s: Annotated[float, Field(ge=0, le=3600)] = 60.0
    # Readings of this measurement with fields volume, occupancy, speed (and class_*) are detector bins.
    measurement: str = "traffic"
    algorithms: list[str] = Field(default_factory=lambda: ["roadpulse"])
    # Flush (write, checkpoint, acknowledge) at least this often while messages arrive.
    flush_s: Positive = 1.0

    @field_validator("algorithms")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(ALGORITHMS))
        if unknown or not value:
            raise ValueError(f"unknown algorithms {unknown}; choose from {sorted(ALGORITHMS)}")
        return value


class RoadstateConfig(Strict):
    mqtt: MqttSection = MqttSection()
    influxdb: InfluxSection = InfluxSection()
    roadstate: ServiceSection
    roads: list[RoadSection] = Field(default_factory=list)

    def road(self, road: str, direction: str) -> RoadSection:
        for r in self.roads:
            if r.road == road and r.direction == direction:
                return r
        return RoadSection(road=road, direction=direction)


def load_config(path: Path | str) -> RoadstateConfig:
    return load_model(path, RoadstateConfig)
