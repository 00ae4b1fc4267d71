"""The retention policies and continuous queries of docs/operations.md run on influxd 1.x and downsample."""

from __future__ import annotations

import re
import time
import urllib.request
from pathlib import Path

import pytest

from roadpulse.services import Influxd, influx_query

DOC = Path(__file__).resolve().parents[2] / "docs" / "operations.md"


def statements() -> list[str]:
    block = re.search(r"### InfluxDB 1\.x.*?```sql\n(.*?)```", DOC.read_text(), re.S)
    assert block, "docs/operations.md has no 1.x sql block"
    return [line for line in block.group(1).splitlines() if line and not line.startswith("--")]


def _write(db: Influxd, lines: str, rp: str = "raw") -> None:
    req = urllib.request.Request(f"{db.url}/write?db=roadpulse&rp={rp}&precision=ms", data=lines.encode(),
                                 method="POST")
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 204


@pytest.mark.slow
def test_policies_and_continuous_queries_downsample(influxd: Influxd) -> None:
    for statement in statements():
        body = influx_query(influxd.url, statement, "roadpulse", method="POST")
        assert "error" not in body["results"][0], (statement, body)
    cqs = influx_query(influxd.url, "SHOW CONTINUOUS QUERIES")["results"][0]["series"]
    names = {row[0] for s in cqs if s["name"] == "roadpulse" for row in s["values"]}
    assert names == {"traffic_1m", "env_1m", "traffic_1h"}
    # Two minutes of readings, written the way the collector writes them (one line per reading, with _err).
    t0 = (int(time.time()) // 3600 * 3600 - 3600) * 1000
    tags = "device=vds1,direction=N,gateway=gw1,lane=1,road=G60,site=S1"
    lines = []
    for i in range(8):
        t = t0 + i * 15_000
        lines += [f"traffic,{tags} speed={80 - i} {t}", f"traffic,{tags} volume={5 + i}i {t}",
                  f"weather,device=rws1,gateway=gw1,site=S1 visibility={150.0 + i} {t}",
                  f'weather,device=rws1,gateway=gw1,site=S1 rh_err="timeout" {t}']
    _write(influxd, "\n".join(lines))
    # Influxd runs here with continuous queries off: run each CQ's SELECT ... INTO for the written hour.
    for statement in statements():
        if not statement.startswith("CREATE CONTINUOUS QUERY"):
            continue
        select = re.search(r"BEGIN (.*) END$", statement).group(1)  # type: ignore[union-attr]
        window = f"WHERE time >= {t0}ms AND time < {t0 + 3_600_000}ms GROUP BY"
        body = influx_query(influxd.url, select.replace("GROUP BY", window, 1), "roadpulse", method="POST")
        assert "error" not in body["results"][0], (select, body)
    minute = influx_query(influxd.url, 'SELECT "volume", "speed", "speed_min" FROM "d1m"."traffic" '
                          'GROUP BY "site", "lane"', "roadpulse")["results"][0]["series"]
    assert minute[0]["tags"] == {"site": "S1", "lane": "1"}
    assert [row[1] for row in minute[0]["values"]] == [5 + 6 + 7 + 8, 9 + 10 + 11 + 12]
    hour = influx_query(influxd.url, 'SELECT "volume", "speed_min" FROM "d1h"."traffic"', "roadpulse")
    assert hour["results"][0]["series"][0]["values"][0][1:] == [sum(range(5, 13)), 73]
    env = influx_query(influxd.url, 'SELECT "min_visibility", "mean_visibility" FROM "d1m"."weather"', "roadpulse")
    assert env["results"][0]["series"][0]["values"][0][1] == 150.0
