"""Deterministic randomness addressed by name, so any value can be recomputed out of order.

Every random draw is keyed by (seed, device, quantity, index) rather than taken
from one shared generator: serving a request early or late, or skipping one,
never shifts the values of the others. `random.Random` seeded with a str hashes
it with SHA-512, which is stable across processes (unlike `hash()`).
"""

from __future__ import annotations

import math
import random
from functools import lru_cache


def rng(*key: object) -> random.Random:
    """A generator owned by one key: the same key always gives the same sequence."""
    return random.Random(":".join(str(k) for k in key))


def unit(*key: object) -> float:
    """One uniform draw in [0, 1) for one key."""
    return rng(*key).random()


def gauss(*key: object) -> float:
    """One standard normal draw for one key."""
    return rng(*key).gauss(0.0, 1.0)


def smooth(t: float, *key: object, periods: tuple[float, ...] = (3_600.0, 1_370.0, 410.0)) -> float:
    """Slowly varying noise in about [-1, 1]: sines with seeded phases, readable at any t."""
    phases = _phases(":".join(str(k) for k in key), len(periods))
    total = 0.0
    for period, phase in zip(periods, phases, strict=True):
        total += math.sin(2 * math.pi * t / period + phase)
    return total / len(periods)


@lru_cache(maxsize=4096)
def _phases(key: str, count: int) -> tuple[float, ...]:
    gen = rng(key, "smooth")
    return tuple(gen.uniform(0, 2 * math.pi) for _ in range(count))


def stochastic_round(x: float, *key: object) -> int:
    """Round so that the expected value is x: counts of vehicles, bucket tips."""
    low = math.floor(x)
    return int(low + (1 if unit(*key) < x - low else 0))
