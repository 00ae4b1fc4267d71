"""Regional weather along the road: temperature, humidity, fog, rain, wind, road surface state.

Values are closed-form functions of local time, elevation and seeded noise, so a
station can be read at any simulated instant in any order. Rain comes in seeded
events per day, shared by every station on the road (it is the same sky), which
also lets a rain gauge integrate it exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

from firmware_sim import noise

# NTCIP 1204 essSurfaceStatus values used here.
SURFACE_DRY, SURFACE_TRACE, SURFACE_WET, SURFACE_ICE_WARNING = 3, 4, 5, 7
SURFACE_DEW, SURFACE_FROST = 12, 13
FOG_ELEVATION_M = 700.0


@dataclass(frozen=True, slots=True)
class RainEvent:
    start_h: float  # hours since the scenario's local midnight of day 0
    duration_h: float
    mm_per_h: float


@lru_cache(maxsize=256)
def rain_events(seed: int, day: int) -> tuple[RainEvent, ...]:
    """Zero to three showers per day, the same for every station of one scenario."""
    gen = noise.rng(seed, "rain", day)
    events = []
    for _ in range(gen.choice((0, 1, 1, 2, 3))):
        events.append(RainEvent(day * 24 + gen.uniform(0, 22), gen.uniform(0.3, 3.0), gen.uniform(0.4, 9.0)))
    return tuple(events)


def _events_around(seed: int, hour: float) -> list[RainEvent]:
    day = math.floor(hour / 24)
    return [*rain_events(seed, day - 1), *rain_events(seed, day)]


def rain_rate(seed: int, hour: float) -> float:
    """Rain intensity in mm/h at an absolute local hour."""
    return sum(e.mm_per_h for e in _events_around(seed, hour) if e.start_h <= hour < e.start_h + e.duration_h)


def rain_total(seed: int, h0: float, h1: float) -> float:
    """Millimetres fallen between two local hours: exact, events are constant-rate."""
    total = 0.0
    first, last = math.floor(h0 / 24) - 1, math.floor(h1 / 24)
    for day in range(first, last + 1):
        for e in rain_events(seed, day):
            overlap = min(h1, e.start_h + e.duration_h) - max(h0, e.start_h)
            if overlap > 0:
                total += overlap * e.mm_per_h
    return total


def hours_since_rain(seed: int, hour: float) -> float:
    ends = [e.start_h + e.duration_h for e in _events_around(seed, hour) if e.start_h <= hour]
    if any(e.start_h <= hour < e.start_h + e.duration_h for e in _events_around(seed, hour)):
        return 0.0
    return hour - max(ends) if ends else 48.0


def _diurnal(hour: float) -> float:
    """-1 near 05:00, +1 near 15:00."""
    return math.sin(2 * math.pi * (hour - 9) / 24)


def _sun(hour: float) -> float:
    """0 at night, up to 1 at noon."""
    return max(0.0, math.sin(math.pi * ((hour % 24) - 6) / 12.5))


def dew_point(temp_c: float, rh: float) -> float:
    """Magnus formula."""
    a, b = 17.62, 243.12
    gamma = math.log(max(rh, 1.0) / 100) + a * temp_c / (b + temp_c)
    return b * gamma / (a - gamma)


def weather_at(seed: int, place: str, elevation_m: float, hour: float) -> dict[str, float | int]:
    """Every weather quantity a station may report, at an absolute local hour (0 = day 0 midnight)."""
    t = hour * 3600
    rain = rain_rate(seed, hour)
    air = 9.0 - 6.5 * elevation_m / 1000 + 6.0 * _diurnal(hour) + 1.2 * noise.smooth(t, seed, "air")
    air += 0.3 * noise.smooth(t, seed, place, "air", periods=(600.0, 170.0))
    air -= 2.0 if rain else 0.0
    rh = 68 - 22 * _diurnal(hour) + 8 * noise.smooth(t, seed, "rh") + (25 if rain else 0)
    rh += 12 * max(0.0, elevation_m - 400) / 1000
    rh = max(8.0, min(100.0, rh))
    dew = dew_point(air, rh)
    sun = _sun(hour)
    surface = air + (9.0 * sun if not rain else 1.5 * sun) - (1.8 if sun == 0 else 0.0)
    visibility = 20_000.0 / (1 + 0.6 * rain) * (1 - 0.3 * max(0.0, rh - 85) / 15)
    if elevation_m >= FOG_ELEVATION_M and rh >= 94:
        # Mountain fog: cloud sits on the road; denser higher up and at dawn.
        visibility = 60 + 400 * (1 - (rh - 94) / 6) * (0.6 + 0.4 * sun) * (1 + 0.3 * noise.smooth(t, seed, "fog"))
    wind = max(0.0, 2.5 + elevation_m / 600 + 1.5 * noise.smooth(t, seed, place, "wind", periods=(900.0, 240.0)))
    gust = wind * (1.4 + 0.2 * noise.unit(seed, place, "gust", int(t // 60))) + 0.5
    direction = (220 + 70 * noise.smooth(t, seed, "dir", periods=(7_200.0, 1_800.0))) % 360
    since_rain = hours_since_rain(seed, hour)
    if rain > 0 or since_rain < 1.0:
        state = SURFACE_ICE_WARNING if surface <= 0.5 else SURFACE_WET
    elif since_rain < 2.5:
        state = SURFACE_TRACE
    elif surface <= dew:
        state = SURFACE_FROST if surface <= 0 else SURFACE_DEW
    else:
        state = SURFACE_DRY
    return {
        "air_temp": round(air, 2),
        "surface_temp": round(surface, 2),
        "dew_point": round(dew, 2),
        "rh": round(rh, 1),
        "pressure": round(1013.25 * math.exp(-elevation_m / 8434) + 4 * noise.smooth(t, seed, "p"), 1),
        "visibility": round(visibility, 1),
        "precip_rate": round(rain, 2),
        "wind_speed": round(wind, 1),
        "wind_gust": round(gust, 1),
        "wind_dir": round(direction, 0),
        "surface_state": state,
        "sun": round(sun, 3),
    }
