"""What each kind of device measures in one interval, as engineering values keyed by point name.

A model answers `values(n, boot_s)` for interval n (simulated time n·interval).
Point names are the profile point names; a profile picks the subset it maps.
None means the sensor has no valid value (warming up after a boot, a dropout):
the wire format then carries the vendor's invalid sentinel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

from firmware_sim import noise, weather
from firmware_sim.detector import bin_lanes
from firmware_sim.traffic import HOURLY_SHARE, Aggregate, RoadModel

Value = int | float | bool | str | None
Values = dict[str, Value]
MAX_LANES = 8


@dataclass(frozen=True, slots=True)
class Place:
    """Where a device sits and what it is: enough to make its values reproducible."""

    seed: int
    device_id: str
    km: float
    elevation_m: float
    local0_h: float  # local hour of day at simulated time 0
    interval_s: float

    def hour(self, t: float) -> float:
        return self.local0_h + t / 3600


class ValueModel(Protocol):
    place: Place

    def values(self, n: int, boot_s: float) -> Values: ...


def _dropout(place: Place, n: int, what: str, rate: float = 0.004) -> bool:
    return noise.unit(place.seed, place.device_id, what, n) < rate


class _AtDetectorCell:
    """A device whose values follow the traffic at its kilometre (the road model's nearest cell)."""

    def __init__(self, place: Place, road: RoadModel) -> None:
        self.place = place
        self.road = road
        self.cell = road.detector(place.km)

    def last_bin(self, n: int) -> Aggregate:
        """Traffic over the last completed interval before poll n."""
        t_len = self.place.interval_s
        b = max(0, n - 1)
        return self.road.aggregate(self.cell, b * t_len, (b + 1) * t_len)


class TrafficModel(_AtDetectorCell):
    """Detector station: per-lane bins from the road model at the station's cell."""

    def values(self, n: int, boot_s: float) -> Values:
        t_len = self.place.interval_s
        b = max(0, n - 1)  # the last completed bin
        agg = self.last_bin(n)
        lanes = self.road.road.lanes
        out: Values = {"interval_s": t_len}
        key = (self.place.seed, self.place.device_id, b)
        for i, lane in enumerate(bin_lanes(agg, lanes, t_len, self.road.road.free_flow_kmh, *key), start=1):
            out[f"lane{i}_volume"] = lane.volume
            out[f"lane{i}_occupancy"] = lane.occupancy_pct
            out[f"lane{i}_speed"] = lane.speed_kmh
            out[f"lane{i}_short"] = lane.short
            out[f"lane{i}_medium"] = lane.medium
            out[f"lane{i}_long"] = lane.long
        for i in range(lanes + 1, MAX_LANES + 1):
            # A detector card has more channels than the road has lanes: unconnected ones send sentinels.
            for what in ("volume", "occupancy", "speed", "short", "medium", "long"):
                out[f"lane{i}_{what}"] = None
        return out


class WeatherModel:
    """Road weather station (NTCIP 1204 quantities) and the Vaisala WXT / NMEA wind subsets."""

    def __init__(self, place: Place) -> None:
        self.place = place

    def values(self, n: int, boot_s: float) -> Values:
        p = self.place
        t = n * p.interval_s
        hour = p.hour(t)
        w = weather.weather_at(p.seed, p.device_id, p.elevation_m, hour)
        out: Values = dict(w)
        speed = float(w["wind_speed"])
        gen = noise.rng(p.seed, p.device_id, "wxt", n)
        out["wind_speed_min"] = round(max(0.0, speed * gen.uniform(0.4, 0.8)), 1)
        out["wind_speed_max"] = w["wind_gust"]
        direction = float(w["wind_dir"])
        out["wind_dir_min"] = round((direction - gen.uniform(10, 40)) % 360)
        out["wind_dir_max"] = round((direction + gen.uniform(10, 40)) % 360)
        boot_h = p.hour(boot_s)
        out["rain_accum"] = round(weather.rain_total(p.seed, boot_h, hour), 2)
        out["rain_duration"] = round(
            3600
            * sum(
                min(hour, e.start_h + e.duration_h) - max(boot_h, e.start_h)
                for d in range(math.floor(boot_h / 24) - 1, math.floor(hour / 24) + 1)
                for e in weather.rain_events(p.seed, d)
                if min(hour, e.start_h + e.duration_h) > max(boot_h, e.start_h)
            )
        )
        out["heater_temp"] = round(float(w["air_temp"]) + (4.0 if float(w["air_temp"]) < 3 else 0.5), 1)
        out["supply_voltage"] = round(12.1 + 0.3 * noise.smooth(t, p.seed, p.device_id, "vs"), 1)
        out["ref_voltage"] = 3.498
        if float(w["wind_speed"]) < 0.3:
            # Vaisala marks direction invalid in calm air.
            out["wind_dir"] = out["wind_dir_min"] = out["wind_dir_max"] = None
        if _dropout(p, n, "visibility"):
            out["visibility"] = None
        if _dropout(p, n, "surface"):
            out["surface_temp"] = None
        return out


class TunnelModel(_AtDetectorCell):
    """Tunnel environment: CO and haze rise with traffic, more so when it crawls."""

    def values(self, n: int, boot_s: float) -> Values:
        p = self.place
        t = n * p.interval_s
        agg = self.last_bin(n)
        load = agg.flow_per_lane / self.road.diagram.capacity  # 0..1
        crawl = 1 - agg.speed / self.road.diagram.free_flow  # 0 free, ~1 stopped
        co = 4 + 22 * load * (1 + 2 * crawl) + 1.5 * noise.smooth(t, p.seed, p.device_id, "co")
        extinction = 0.0008 + 0.006 * load * (1 + 1.5 * crawl) + 0.0003 * noise.smooth(t, p.seed, p.device_id, "k")
        extinction = max(0.0002, extinction)
        # Jet fans push with the traffic; piston effect adds with speed.
        velocity = 1.2 + 2.5 * load * agg.speed / self.road.diagram.free_flow
        velocity += 0.8 * noise.smooth(t, p.seed, p.device_id, "air", periods=(900.0, 120.0))
        sun = float(weather.weather_at(p.seed, p.device_id, p.elevation_m, p.hour(t))["sun"])
        rain = weather.rain_rate(p.seed, p.hour(t))
        luminance = 6500 * sun * (0.35 if rain else 1.0) * (1 + 0.1 * noise.smooth(t, p.seed, p.device_id, "l"))
        return {
            "co_ppm": round(max(0.0, co), 1),
            "extinction": round(extinction, 5),
            "visibility": round(2.99 / extinction, 0),
            "air_velocity": round(velocity, 2),
            "luminance": round(max(0.0, luminance), 0),
            "no2_ppm": round(max(0.0, 0.02 + 0.4 * load * (1 + crawl)), 3),
        }


class BridgeModel(_AtDetectorCell):
    """Structural health: 100 Hz acceleration and 20 Hz strain per interval, summarised at the edge.

    Raw streams would be ~160,000 points/s for a province; a bridge node sends features.
    """

    ACCEL_HZ = 100
    STRAIN_HZ = 20
    MODE_HZ = 2.35

    def values(self, n: int, boot_s: float) -> Values:
        p = self.place
        t0 = n * p.interval_s
        agg = self.last_bin(n)
        temp = float(weather.weather_at(p.seed, p.device_id, p.elevation_m, p.hour(t0))["air_temp"])
        gen = noise.rng(p.seed, p.device_id, "bridge", n)
        trucks = agg.vehicles * 0.15
        amplitude = 0.004 + 0.012 * trucks / max(1.0, p.interval_s / 10)  # m/s²
        freq = self.MODE_HZ * (1 - 0.003 * (temp - 15))  # stiffer when cold
        phase = gen.uniform(0, 2 * math.pi)
        count = int(p.interval_s * self.ACCEL_HZ)
        accel = [
            amplitude * math.sin(2 * math.pi * freq * i / self.ACCEL_HZ + phase) + gen.gauss(0, 0.002)
            for i in range(count)
        ]
        rms = math.sqrt(sum(a * a for a in accel) / count)
        peak = max(abs(a) for a in accel)
        crossings = sum(1 for i in range(1, count) if accel[i - 1] < 0 <= accel[i])
        thermal = -11.5 * (temp - 15)  # με: steel-concrete deck contracting in the cold
        strains = [
            thermal + 35 * trucks / max(1.0, p.interval_s / 10) * max(0.0, math.sin(i / 7 + phase)) + gen.gauss(0, 2.0)
            for i in range(int(p.interval_s * self.STRAIN_HZ))
        ]
        return {
            "accel_rms": round(rms * 1000 / 9.80665, 3),  # mg
            "accel_peak": round(peak * 1000 / 9.80665, 3),
            "mode_freq": round(crossings / p.interval_s, 3),
            "strain_mean": round(sum(strains) / len(strains), 1),
            "strain_min": round(min(strains), 1),
            "strain_max": round(max(strains), 1),
            "deck_temp": round(temp + 1.5, 1),
            "samples": count,
        }


class CityModel:
    """City grid cell: air quality and noise follow the daily traffic curve; streetlights follow the sun."""

    LAMP_KW = 4.2

    def __init__(self, place: Place) -> None:
        self.place = place

    def _power(self, hour: float) -> float:
        h = hour % 24
        if 6.5 <= h < 18.5:
            return 0.05  # metering and controller only
        return self.LAMP_KW * (0.6 if 0.5 <= h < 5.0 else 1.0)

    def values(self, n: int, boot_s: float) -> Values:
        p = self.place
        t = n * p.interval_s
        hour = p.hour(t)
        share = HOURLY_SHARE[int(hour % 24)] / max(HOURLY_SHARE)
        key = (p.seed, p.device_id)
        pm25 = 18 + 30 * share + 8 * noise.smooth(t, *key, "pm") + (12 if 0 <= hour % 24 < 6 else 0)
        # Energy counter: whole quarter hours integrated exactly, then the running part.
        quarter = 0.25
        whole = math.floor(hour / quarter)
        energy = sum(self._power(i * quarter) * quarter for i in range(math.floor(p.local0_h / quarter), whole))
        energy += self._power(hour) * (hour - whole * quarter)
        return {
            "pm25": round(max(1.0, pm25), 1),
            "pm10": round(max(2.0, pm25 * 1.7 + 6 * noise.smooth(t, *key, "pm10")), 1),
            "no2": round(max(2.0, 12 + 45 * share + 6 * noise.smooth(t, *key, "no2")), 1),
            "noise_db": round(48 + 20 * math.log10(1 + 9 * share) + 1.5 * noise.gauss(*key, "db", n), 1),
            "lamp_power": round(self._power(hour) * (1 + 0.01 * noise.gauss(*key, "kw", n)), 3),
            "lamp_energy": round(12_345.0 + energy, 1),
        }


class HydroModel:
    """Tipping-bucket gauge (0.2 mm per tip, counted since boot) and a river level from a linear reservoir."""

    TIP_MM = 0.2
    TAU_H = 3.0
    BASE_M = 1.35
    M_PER_MM = 0.012

    def __init__(self, place: Place) -> None:
        self.place = place

    def values(self, n: int, boot_s: float) -> Values:
        p = self.place
        hour = p.hour(n * p.interval_s)
        tips = math.floor(weather.rain_total(p.seed, p.hour(boot_s), hour) / self.TIP_MM + 1e-9)
        storage = 0.0
        for day in range(math.floor(hour / 24) - 3, math.floor(hour / 24) + 1):
            for e in weather.rain_events(p.seed, day):
                if hour <= e.start_h:
                    continue
                end = min(hour, e.start_h + e.duration_h)
                filled = e.mm_per_h * self.TAU_H * (1 - math.exp(-(end - e.start_h) / self.TAU_H))
                storage += filled * math.exp(-(hour - end) / self.TAU_H)
        level = self.BASE_M + self.M_PER_MM * storage + 0.004 * noise.smooth(n, p.seed, p.device_id, "lvl")
        return {
            "rain_tips": tips,
            "rain_rate": round(weather.rain_rate(p.seed, hour), 2),
            "water_level": round(level, 3),
            "battery": round(12.6 + 0.2 * noise.smooth(n * p.interval_s, p.seed, p.device_id, "bat"), 2),
        }
