"""influxd's raw ingest of the same readings as one line per reading (v1) and one line per series and time (v2).

    python bench/ingest_shapes.py [--readings 300000] [--repeat 2]

`sim load`'s shape (bench/system.py, the limits phase): 32-reading messages of 100 gateways,
ten sensors per device at one time. Both bodies go through `bench.system.raw_ingest`
(pre-built, gzip level 1, 10,000 lines per POST, two connections) into a private influxd,
alternating; influxd's CPU per reading is read from /proc over each write.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.mix import g60_mix
from bench.system import Stack, raw_ingest
from roadpulse.services import Influxd, Mosquitto


def bodies(readings: int, seed: int = 1) -> tuple[list[str], list[str], int]:
    rng = random.Random(seed)
    v1: list[str] = []
    v2: list[str] = []
    ts = 1_795_000_000_000
    count = 0
    for message in range(readings // 32):
        gateway = f"limgw{message % 100}"
        ts += 10
        devices: dict[int, list[str]] = {}
        for alias in range(32):
            value = round(100 * rng.random(), 2)
            v1.append(f"loadtest,device={gateway}-dev{alias // 10},gateway={gateway} s{alias % 10}={value!r} {ts}")
            devices.setdefault(alias // 10, []).append(f"s{alias % 10}={value!r}")
            count += 1
        v2 += [f"loadtest,device={gateway}-dev{device},gateway={gateway} {','.join(fields)} {ts}"
               for device, fields in devices.items()]
    return v1, v2, count


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--readings", type=int, default=300_000)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    v1, v2, count = bodies(args.readings)
    lost = False
    with tempfile.TemporaryDirectory(prefix="rp-ingest-") as tmp:
        work = Path(tmp)
        with Mosquitto(work / "mosquitto") as broker, Influxd(work / "influxd") as influx:
            stack = Stack(work, broker, influx, g60_mix(), False)
            for run in range(args.repeat):
                for name, lines in (("v1", v1), ("v2", v2)):
                    result = raw_ingest(stack, (lines, count), f"shape_{name}_{run}")
                    lost |= result["stored"] != count
                    print(f"run {run + 1} {name}: {len(lines):,} lines, {result['per_s']:,.0f} readings/s, "
                          f"influxd {result['influxd_us']:.2f} µs per reading, "
                          f"stored {result['stored']:,} of {count:,}",
                          flush=True)
    return 1 if lost else 0


if __name__ == "__main__":
    sys.exit(main())
