"""The one reconnect backoff: capped exponential with full jitter."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass(slots=True)
class Backoff:
    """`next()` gives the delay before the next attempt; `reset()` after a success."""

    base: float = 0.5
    factor: float = 2.0
    cap: float = 30.0
    attempt: int = 0
    rng: random.Random = field(default_factory=random.Random)

    def next(self) -> float:
        ceiling = min(self.cap, self.base * self.factor ** min(self.attempt, 30))
        self.attempt += 1
        # Full jitter spreads reconnects of many gateways after a broker restart.
        return self.rng.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        self.attempt = 0
