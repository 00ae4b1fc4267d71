"""The C loop alone, this tree's build against a commit's, loaded side by side in one process.

    python bench/fastlines_ab.py --against 91d1958 [--repeat 40]

Each build's `lines` formats the same messages (tests/collector/traffic.py, 200 × 50 readings)
with its own table (a commit before data model v2 takes the 4-tuple table, which is made from
this tree's); best of --repeat, per reading. Messages: every reading its own time and series
(nothing to group), polls (25 per time, 5 fields per series), and 25 per time of distinct series.
"""

from __future__ import annotations

import argparse
import importlib.machinery
import importlib.util
import struct
import sys
import sysconfig
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import msgpack

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.collector_cpu import extract  # noqa: E402
from collector.output.influxdb import LINE_PROTOCOL  # noqa: E402
from roadpulse.wire import encode_data  # noqa: E402
from tests.collector.traffic import make_batch, make_birth  # noqa: E402

SUFFIX = sysconfig.get_config_var("EXT_SUFFIX")


def load(path: Path) -> ModuleType:
    loader = importlib.machinery.ExtensionFileLoader("collector._fastlines", str(path))
    spec = importlib.util.spec_from_file_location("collector._fastlines", path, loader=loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def old_table(native: Any) -> list[Any]:
    """The table of the loop before v2: (prefix, kind, decimals, nil) per alias."""
    return [None if e is None else (e[0], *struct.unpack("=5i", e[2])[:2], e[1]) for e in native[0]]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--against", metavar="REV", required=True)
    parser.add_argument("--repeat", type=int, default=40)
    args = parser.parse_args()
    mine = load(ROOT / "collector" / f"_fastlines{SUFFIX}")
    with tempfile.TemporaryDirectory(prefix="rp-fastlines-") as tmp:
        theirs = load(extract(args.against, Path(tmp)) / "collector" / f"_fastlines{SUFFIX}")
        for per_poll, per_series in ((1, 1), (25, 5), (25, 1)):
            birth = make_birth("gw", "b", metrics=50, per_series=per_series)
            native = LINE_PROTOCOL.compile(birth).templates.native
            assert native is not None
            messages = []
            for seq in range(200):
                message = msgpack.unpackb(encode_data(make_batch(birth, seq, 50, per_poll=per_poll)),
                                          strict_map_key=False)
                messages.append((message["r"], message["bt"]))
            readings = sum(len(flat) // 3 for flat, _ in messages)
            best = {"this tree": 1e9, args.against: 1e9}
            loops = (("this tree", mine.lines, native), (args.against, theirs.lines, old_table(native)))
            for _ in range(args.repeat):
                for name, lines, table in loops:
                    began = time.perf_counter()
                    for flat, base in messages:
                        lines(flat, base, table, None)
                    best[name] = min(best[name], time.perf_counter() - began)
            figures = [f"{name} {seconds / readings * 1e9:.0f} ns per reading" for name, seconds in best.items()]
            print(f"--per-poll {per_poll} --per-series {per_series}: " + ", ".join(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
