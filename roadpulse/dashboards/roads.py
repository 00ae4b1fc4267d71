"""The road dashboards: network overview, weather and visibility, tunnels, bridges, flood and water,
city grid cells. Field names are those of the shipped profiles (config/profiles/)."""

from __future__ import annotations

import tomllib
from pathlib import Path

from grafana_foundation_sdk.builders import dashboard as dash
from pydantic import Field, ValidationError

from roadpulse.configfile import ConfigError, Strict, errors_of
from roadpulse.dashboards.influxql import Select, call
from roadpulse.dashboards.panels import CONGESTION, VISIBILITY, board, graph, grid, stat, states, tag_variable

WATER_LEVELS = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "water-levels.toml"
NOW = "time > now() - 15m"
ROAD_VARS = ("road", "direction", "site", "gateway")
SPOT_VARS = ("road", "site", "gateway")
SEGMENT = ("site", "device", "direction")


class Station(Strict):
    device: str
    name: str = ""
    gateway: str | None = None
    warning_m: float
    guaranteed_m: float


class Stations(Strict):
    stations: list[Station] = Field(default_factory=list)


def load_stations(path: Path = WATER_LEVELS) -> list[Station]:
    try:
        return Stations.model_validate(tomllib.loads(path.read_text())).stations
    except ValidationError as exc:
        raise ConfigError(path, errors_of(exc)) from None


def variables(*names: str) -> list[dash.QueryVariable]:
    labels = {"road": "Road", "direction": "Direction", "site": "Site", "gateway": "Gateway"}
    made = []
    for name in names:
        where = '"road" =~ /^$road$/' if name != "road" and "road" in names else ""
        made.append(tag_variable(name, labels[name], "traffic" if name == "direction" else None, where=where))
    return made


def overview() -> dash.Dashboard:
    def seg(*fields: str, **kw: object) -> Select:
        return Select("traffic", fields, ROAD_VARS, group_by=SEGMENT, **kw)  # type: ignore[arg-type]

    alias = "$tag_site $tag_device $tag_direction"
    worst = Select("traffic", (call("mean", "speed", alias="speed"), call("mean", "occupancy", alias="occupancy"),
                               call("sum", "volume", alias="volume")),
                   ROAD_VARS, group_by=SEGMENT, interval=None, time_filter="time > now() - 5m")
    los = Select("road_state", (call("last", "los_index"),), ("road", "direction"), group_by=("segment",))
    incidents = Select("incident", ('"id"', '"state"', '"km"', '"kp"', '"confidence"', '"duration_s"', '"active"'),
                       ("road", "direction"), group_by=("segment", "algorithm"), interval=None)
    los_map = {i + 1: (c, col) for i, (c, col) in enumerate(
        zip("ABCDEF", ("green", "green", "yellow", "orange", "red", "dark-red"), strict=True))}
    return board("roadpulse-overview", "Road network overview",
                 "Per detector station and direction: speed, volume and occupancy; the worst segments now; "
                 "level of service and incidents from the road-state service.", variables(*ROAD_VARS), [
        ("Traffic", [
            graph("Speed", seg(call("mean", "speed")), unit="velocitykmh", alias=alias, steps=CONGESTION,
                  description="Mean lane speed per station; colours follow the congestion scale."),
            graph("Volume", seg(call("sum", "volume") + " * 3600000 / $__interval_ms"), unit="veh/h",
                  alias=alias, description="Vehicles per hour, all lanes of a station and direction."),
            graph("Occupancy", seg(call("mean", "occupancy")), unit="percent", alias=alias),
            grid("Worst segments now (last 5 min, slowest first)", worst, steps=CONGESTION, sort_by="speed"),
        ]),
        ("Road state", [
            states("Level of service per segment", los, mapping=los_map, alias="$tag_segment",
                   description="HCM level of service from the road-state service (road_state.los_index)."),
            grid("Incidents", incidents, sort_by="Time", descending=True,
                 description="Incidents detected by the road-state service, newest first."),
        ]),
    ])


def weather() -> dash.Dashboard:
    def wx(*fields: str, **kw: object) -> Select:
        return Select("weather", fields, SPOT_VARS, group_by=("site", "device"), **kw)  # type: ignore[arg-type]

    alias = "$tag_site $tag_device"
    surface = {0: ("undefined", "text"), 1: ("other", "text"), 2: ("error", "purple"), 3: ("dry", "green"),
               4: ("trace moisture", "light-green"), 5: ("wet", "blue"), 6: ("chemically wet", "light-blue"),
               7: ("ice warning", "red"), 8: ("ice watch", "orange"), 9: ("snow warning", "red"),
               10: ("snow watch", "orange"), 11: ("absorption", "blue"), 12: ("dew", "light-blue"),
               13: ("frost", "red"), 14: ("absorption at dewpoint", "blue")}
    return board("roadpulse-weather", "Weather and visibility",
                 "Fog bands (Art. 81: < 200 m 60 km/h, < 100 m 40 km/h, < 50 m 20 km/h and leave), road "
                 "surface temperature and state (NTCIP 1204), wind.", variables(*SPOT_VARS), [
        ("Visibility", [
            graph("Visibility", wx(call("min", "visibility")), unit="lengthm", alias=alias, steps=VISIBILITY),
            stat("Visibility now", wx(call("last", "visibility"), interval=None, time_filter=NOW), unit="lengthm",
                 alias=alias, steps=VISIBILITY, w=12),
        ]),
        ("Road surface", [
            graph("Surface, air and dew point temperature",
                  wx(call("mean", "surface_temp", alias="surface"), call("mean", "air_temp", alias="air"),
                     call("mean", "dew_point", alias="dew point")),
                  unit="celsius", alias="$tag_device $col",
                  steps=((None, "blue"), (0, "green")), description="Surface at or below 0 °C is shown blue."),
            states("Surface state", wx(call("last", "surface_state")), mapping=surface, alias=alias),
        ]),
        ("Wind and rain", [
            graph("Wind speed and gust", wx(call("mean", "wind_speed", alias="speed"),
                                            call("max", "wind_gust", alias="gust"),
                                            call("max", "wind_speed_max", alias="max")),
                  unit="velocityms", alias="$tag_device $col"),
            graph("Wind direction", wx(call("mean", "wind_dir")), unit="degree", alias=alias),
            graph("Precipitation and humidity", wx(call("mean", "precip_rate", alias="rain mm/h"),
                                                   call("mean", "rh", alias="rh %")), alias="$tag_device $col"),
        ]),
    ])


def tunnels() -> dash.Dashboard:
    def tn(*fields: str, **kw: object) -> Select:
        return Select("tunnel", fields, SPOT_VARS, group_by=("site", "device"), **kw)  # type: ignore[arg-type]

    alias = "$tag_site $tag_device"
    return board("roadpulse-tunnels", "Tunnels",
                 "CO (25 ppm normal, 50 ppm as a 1-h mean, 75 ppm peak), NO₂, visibility as extinction K "
                 "(0.005 normal, 0.009 alarm, 0.012 close) and ventilation.", variables(*SPOT_VARS), [
        ("Air quality", [
            graph("CO", tn(call("max", "co_ppm")), unit="ppm", alias=alias,
                  steps=((None, "green"), (25, "yellow"), (50, "orange"), (75, "red"))),
            graph("NO₂", tn(call("max", "no2_ppm")), unit="ppm", alias=alias),
            graph("Extinction K", tn(call("max", "extinction")), unit="none", alias=alias,
                  steps=((None, "green"), (0.005, "yellow"), (0.009, "orange"), (0.012, "red"))),
            stat("CO now", tn(call("last", "co_ppm"), interval=None, time_filter=NOW), unit="ppm", alias=alias,
                 steps=((None, "green"), (25, "yellow"), (50, "orange"), (75, "red")), w=12),
        ]),
        ("Ventilation and light", [
            graph("Air velocity", tn(call("mean", "air_velocity")), unit="velocityms", alias=alias),
            graph("Visibility", tn(call("min", "visibility")), unit="lengthm", alias=alias),
            graph("Portal luminance", tn(call("mean", "luminance")), unit="cd/m²", alias=alias),
        ]),
    ])


def bridges() -> dash.Dashboard:
    def br(*fields: str, **kw: object) -> Select:
        return Select("bridge", fields, SPOT_VARS, group_by=("site", "device"), **kw)  # type: ignore[arg-type]

    summary = br(call("max", "accel_peak", alias="accel peak"), call("mean", "accel_rms", alias="accel rms"),
                 call("min", "strain_min", alias="strain min"), call("max", "strain_max", alias="strain max"),
                 call("mean", "mode_freq", alias="mode freq"), interval=None)
    return board("roadpulse-bridges", "Bridges",
                 "Edge summaries of 100 Hz acceleration and 20 Hz strain per interval. The shipped bridge "
                 "profile has no displacement channel; the first modal frequency stands in for stiffness.",
                 variables(*SPOT_VARS), [
        ("Structure", [
            graph("Acceleration (rms and peak)", br(call("mean", "accel_rms", alias="rms"),
                                                    call("max", "accel_peak", alias="peak")),
                  unit="mg", alias="$tag_device $col"),
            graph("Strain (min, mean, max)", br(call("min", "strain_min", alias="min"),
                                                call("mean", "strain_mean", alias="mean"),
                                                call("max", "strain_max", alias="max")),
                  unit="µε", alias="$tag_device $col"),
            graph("First modal frequency", br(call("mean", "mode_freq")), unit="hertz", alias="$tag_device"),
            graph("Deck temperature", br(call("mean", "deck_temp")), unit="celsius", alias="$tag_device"),
            grid("Summary over the time range", summary),
        ]),
    ])


def flood(stations: list[Station] | None = None) -> dash.Dashboard:
    stations = load_stations() if stations is None else stations

    def hy(*fields: str, **kw: object) -> Select:
        return Select("hydrology", fields, SPOT_VARS, group_by=("site", "device"), **kw)  # type: ignore[arg-type]

    per_station = [
        graph(f"Water level: {s.name or s.device}",
              Select("hydrology", (call("mean", "water_level"),), SPOT_VARS,
                     where=(f"\"device\" = '{s.device}'",) + ((f"\"gateway\" = '{s.gateway}'",) if s.gateway else ()),
                     group_by=("device",)),
              unit="lengthm", alias="$tag_device",
              steps=((None, "green"), (s.warning_m, "orange"), (s.guaranteed_m, "red")),
              description=f"Warning level {s.warning_m} m (orange), guaranteed level {s.guaranteed_m} m (red), "
                          "from deploy/grafana/water-levels.toml.")
        for s in stations]
    return board("roadpulse-flood", "Flood and water",
                 "Water level against each gauging point's warning and guaranteed levels; rain intensity.",
                 variables(*SPOT_VARS), [
        ("Water level", [graph("Water level, all stations", hy(call("mean", "water_level")), unit="lengthm",
                               alias="$tag_device"), *per_station]),
        ("Rain", [
            graph("Rain intensity (gauges)", hy(call("mean", "rain_rate")), unit="mm/h", alias="$tag_device"),
            graph("Rain intensity (weather stations)", Select("weather", (call("mean", "precip_rate"),), SPOT_VARS,
                                                              group_by=("site", "device")),
                  unit="mm/h", alias="$tag_device"),
        ]),
    ])


def city() -> dash.Dashboard:
    def cell(*fields: str, **kw: object) -> Select:
        return Select("city", fields, ("site", "gateway"), group_by=("site", "device"), **kw)  # type: ignore[arg-type]

    return board("roadpulse-city", "City grid cells", "Air quality, noise and street-light power per grid cell.",
                 variables("site", "gateway"), [
        ("Cells", [
            graph("Particulates", cell(call("mean", "pm25", alias="PM2.5"), call("mean", "pm10", alias="PM10")),
                  unit="µg/m³", alias="$tag_device $col"),
            graph("NO₂", cell(call("mean", "no2")), unit="µg/m³", alias="$tag_device",
                  steps=((None, "green"), (40, "yellow"), (200, "red"))),
            graph("Noise", cell(call("mean", "noise_db")), unit="dB", alias="$tag_device",
                  steps=((None, "green"), (55, "yellow"), (70, "red"))),
            graph("Street-light power", cell(call("mean", "lamp_power")), unit="kwatt", alias="$tag_device"),
        ]),
    ])
