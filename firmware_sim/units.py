"""The units a simulated device can be set to write, from the model's SI values, and back.

Written apart from the agent's conversions (roadpulse.profiles.units) on purpose: the
simulator's ground truth stays in SI, the device writes °F or knots, and the tests prove the
agent's conversions against these. Definitions: 1 kn = 1852 m / 3600 s, 1 mph = 1609.344 m /
3600 s, °F = °C × 9/5 + 32, 1 mmHg = 133.322387415 Pa, 1 inHg = 25.4 mmHg.
"""

from __future__ import annotations

from collections.abc import Callable

_MMHG_HPA = 1.33322387415
Conversion = tuple[Callable[[float], float], Callable[[float], float]]  # (from SI, to SI)

# Letter -> (SI value -> device value, device value -> SI value), per quantity; SI is m/s, °C, hPa.
SPEED: dict[str, Conversion] = {
    "M": (lambda v: v, lambda d: d),
    "K": (lambda v: v * 3.6, lambda d: d / 3.6),
    "S": (lambda v: v * 3600 / 1609.344, lambda d: d * 1609.344 / 3600),
    "N": (lambda v: v * 3600 / 1852, lambda d: d * 1852 / 3600),
}
TEMPERATURE: dict[str, Conversion] = {
    "C": (lambda v: v, lambda d: d),
    "F": (lambda v: v * 9 / 5 + 32, lambda d: (d - 32) * 5 / 9),
}
PRESSURE: dict[str, Conversion] = {
    "H": (lambda v: v, lambda d: d),
    "P": (lambda v: v * 100, lambda d: d / 100),
    "B": (lambda v: v / 1000, lambda d: d * 1000),
    "M": (lambda v: v / _MMHG_HPA, lambda d: d * _MMHG_HPA),
    "I": (lambda v: v / (25.4 * _MMHG_HPA), lambda d: d * 25.4 * _MMHG_HPA),
}
QUANTITIES: dict[str, dict[str, Conversion]] = {"speed": SPEED, "temperature": TEMPERATURE, "pressure": PRESSURE}
# Decimals a device prints in each unit (a WXT prints 0.1 m/s, 0.1 °F, 0.1 hPa, 0.0001 bar, 0.01 inHg).
DECIMALS = {("speed", "M"): 1, ("speed", "K"): 1, ("speed", "S"): 1, ("speed", "N"): 1,
            ("temperature", "C"): 1, ("temperature", "F"): 1,
            ("pressure", "H"): 1, ("pressure", "P"): 0, ("pressure", "B"): 4, ("pressure", "M"): 1,
            ("pressure", "I"): 2}
# The SI unit a profile stores each quantity in, by the profile's spelling.
SI_UNITS = {"m/s": "speed", "°C": "temperature", "hPa": "pressure"}


def written(value: float, quantity: str, letter: str) -> str:
    """The text a device set to `letter` writes for an SI value (without the letter)."""
    to_device, _ = QUANTITIES[quantity][letter]
    return f"{to_device(value):.{DECIMALS[(quantity, letter)]}f}"


def to_si(text: str, quantity: str, letter: str) -> float:
    _, back = QUANTITIES[quantity][letter]
    return back(float(text))
