"""Where the collector's CPU goes on the whole-system load: py-spy over a running collector.

    python -m bench.profile [--rate 5000] [--seconds 20] [--out FILE]

Starts the same private broker, influxd and collector as `python -m bench`'s whole-system
phase, runs the g60 load through `sim load`, and records the collector with py-spy
(`pip install py-spy`; needs ptrace rights, e.g. root) in raw (collapsed stack) format,
idle samples left out, every thread. Prints the functions with the most samples on the
stack (inclusive) and at the top of it (self), as shares of all the collector's samples.
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.mix import g60_mix
from bench.stack import run_load
from bench.system import Stack
from roadpulse.services import Influxd, Mosquitto


def summarise(raw: Path, top: int = 25) -> str:
    inclusive: collections.Counter[str] = collections.Counter()
    self_time: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        frames = stack.split(";")
        total += n
        self_time[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n
    out = [f"{total} samples (non-idle, all threads)", "", "inclusive:"]
    out += [f"  {100 * n / total:5.1f} %  {frame}" for frame, n in inclusive.most_common(top)]
    out += ["", "self:"]
    out += [f"  {100 * n / total:5.1f} %  {frame}" for frame, n in self_time.most_common(top)]
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=5000, help="readings/s of g60 traffic")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--out", type=Path, default=None, help="keep the raw py-spy output here")
    args = parser.parse_args()
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    with tempfile.TemporaryDirectory(prefix="rp-bench-prof-") as tmp:
        work = Path(tmp)
        broker, influx = Mosquitto(work / "mosquitto"), Influxd(work / "influxd")
        try:
            broker.start()
            influx.start()
            stack = Stack(work, broker, influx, g60_mix(), quick=False)
            collector = stack.collector("prof-collector", "prof", "bprof/v1").start()
            raw = args.out or work / "collector.raw"
            try:
                record = subprocess.Popen([spy, "record", "--pid", str(collector.pid), "--format", "raw",
                                           "--output", str(raw), "--duration", f"{args.seconds:g}", "--threads",
                                           "--nonblocking", "--gil"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                run_load(stack.load(args.rate, args.seconds, "bprof/v1"), broker.url, work / "load.json")
                _, err = record.communicate(timeout=120)
            finally:
                collector.stop()
            if not raw.exists():
                print(f"py-spy wrote nothing: {err.decode(errors='replace')[-500:]}", file=sys.stderr)
                return 1
            print(summarise(raw))
        finally:
            influx.stop()
            broker.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
