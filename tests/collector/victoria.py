"""A private VictoriaMetrics single node for tests: free loopback port, data in a temp dir,
stopped (by PID) after. Debian's `victoria-metrics` package (1.79)."""

from __future__ import annotations

import json
import shutil
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from roadpulse.services import _Process


@dataclass
class VictoriaMetrics(_Process):
    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _log(self) -> Path:
        return self.data_dir / "victoria-metrics.log"

    def _command(self) -> list[str]:
        binary = shutil.which("victoria-metrics") or "/usr/bin/victoria-metrics"
        # A long retention: test data carries fixed timestamps, and VictoriaMetrics drops points
        # outside its retention with a 204 (logged only), which a test would read as a loss.
        return [binary, f"-storageDataPath={self.data_dir / 'data'}", f"-httpListenAddr={self.host}:{self.port}",
                "-retentionPeriod=100y", "-search.latencyOffset=0s", "-search.disableCache"]

    def export(self, match: str = '{__name__!=""}') -> list[dict[str, Any]]:
        """Every series matching `match`, with its values and times (`/api/v1/export`)."""
        urllib.request.urlopen(f"{self.url}/internal/force_flush", timeout=10).read()
        query = urllib.parse.urlencode({"match[]": match, "start": "0"})
        with urllib.request.urlopen(f"{self.url}/api/v1/export?{query}", timeout=30) as answer:
            return [json.loads(line) for line in answer.read().decode().splitlines() if line]

    def count_readings(self, exclude_prefix: str = "roadpulse_") -> int:
        """Readings stored: values of series that are not qualities (`_q`) or our own metrics."""
        return sum(len(series["values"]) for series in self.export()
                   if not series["metric"]["__name__"].endswith("_q")
                   and not series["metric"]["__name__"].startswith(exclude_prefix))

    def wait_count(self, expected: int, limit_s: float = 30.0) -> int:
        """The count once it reaches `expected`, or after `limit_s`: new points take a moment to show."""
        deadline = time.monotonic() + limit_s
        count = self.count_readings()
        while count < expected and time.monotonic() < deadline:
            time.sleep(0.3)
            count = self.count_readings()
        return count
