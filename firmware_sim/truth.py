"""The ground-truth file: one JSON line per value the simulator served or emitted.

Tests compare what reached the database against it. A line holds the device,
the profile point, `raw` (what is on the wire: the register value after byte
order, or the field's text in an ASCII frame), `value` (what a correct decoder
gets from exactly that: scale, offset, the register's or the frame's rounding
and units applied; null for an invalid sentinel), `invalid`, simulated time
(Unix s) and wall time (Unix s).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

Value = int | float | bool | str | None
# One point as served: (point name, raw as on the wire, decoded engineering value).
Served = tuple[str, Any, Value]


class TruthWriter:
    """Append-only JSONL; a no-op when no path is given, so serving code never checks."""

    def __init__(self, path: Path | None) -> None:
        self._fh: IO[str] | None = path.open("w", encoding="utf-8") if path is not None else None
        self.lines = 0

    def record(
        self,
        device_id: str,
        served: Iterable[Served],
        *,
        sim_time: float,
        wall_time: float,
        faults: Iterable[str] = (),
    ) -> None:
        if self._fh is None:
            return
        fault_list = list(faults)
        for name, raw, value in served:
            row = {
                "device_id": device_id,
                "point": name,
                "raw": raw,
                "value": value,
                "invalid": value is None,
                "sim_time": round(sim_time, 3),
                "wall_time": round(wall_time, 3),
            }
            if fault_list:
                row["faults"] = fault_list
            self._fh.write(json.dumps(row, separators=(",", ":")) + "\n")
            self.lines += 1

    def flush(self) -> None:
        if self._fh is not None:
            self._fh.flush()

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def read_truth(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]
