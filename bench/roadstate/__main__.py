"""`python -m bench.roadstate`: every incident detector and the LOS estimate on one simulated suite.

    python -m bench.roadstate                       # the evaluation suite (seed 1)
    python -m bench.roadstate --seed 2              # a held-out suite from the same distributions
    python -m bench.roadstate --incidents 10 --negative-days 1   # quicker
    python -m bench.roadstate --truth truth.jsonl   # also write each section's ground truth
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

from bench.roadstate.evaluate import evaluate, format_report
from bench.roadstate.suite import SuiteSpec, incident_sections, negative_days


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.roadstate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--incidents", type=int, default=60)
    parser.add_argument("--negative-days", type=int, default=3)
    parser.add_argument("--truth", type=Path, help="append every section's truth (JSON lines) to this file")
    parser.add_argument("--verbose", action="store_true", help="list missed incidents and false alarms")
    args = parser.parse_args(argv)
    spec = SuiteSpec(seed=args.seed, incidents=args.incidents, negative_days=args.negative_days)
    began = time.monotonic()
    runs = itertools.chain(incident_sections(spec), negative_days(spec))
    if args.truth:
        args.truth.write_text("", encoding="utf-8")

    def tee():  # type: ignore[no-untyped-def]
        for run in runs:
            if args.truth:
                run.write_truth(args.truth)
            yield run

    report = evaluate(tee())
    print(f"suite seed {args.seed}: {time.monotonic() - began:.0f} s")
    print(format_report(report))
    if args.verbose:
        for name, score in report.scores.items():
            print(f"{name}: missed {score.missed}; false alarms {score.false_in}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
