"""Fuzz the collector's decoder in process: hostile births and data, judged case by case.

    python -m tests.lineproto.fuzz --cases 1000000 --seed 1          # the >= 10^6 run of issue #16
    python -m tests.lineproto.fuzz --cases 100000 --seed 1 --workers 1
    python -m tests.lineproto.fuzz --seed 1 --only 4242              # one case, shown in full

Cases come from tests/lineproto/hostile.py (case i of seed s is always the same) and are
judged by its `judge`, the property of the Hypothesis tests: so a count here is a test
failure there. Reported: injections (more points than readings, or a point under another
gateway's tag), wrong points (a point that is not its reading's metric), missing points,
invalid lines (not strict line protocol), lines starting with `#`, lines that make influxd
answer 500, exceptions that escaped, messages over the time bound (CPU time of the decode,
so a busy machine does not count), C loop and Python path disagreeing, and the outcomes,
dead letters by reason. Each case runs one loop (alternating: even cases the C loop, odd ones the
Python path); every 8th case runs both and compares them. At most 2 worker processes; the
run stops dispatching at --time-limit and says so. Exit status 1 when anything is found.
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import msgpack

from tests.lineproto.adapter import DeadLetter, Outcome, decode_for_test
from tests.lineproto.hostile import PROBLEMS, hostile_case, judge

CHUNK = 2000
EXAMPLES = 5  # case numbers kept per finding, to rerun with --only
FINDINGS = (*PROBLEMS, "exception", "slow")


@dataclass(slots=True)
class Tally:
    cases: int = 0
    counts: Counter[str] = field(default_factory=Counter)  # findings, per case
    outcomes: Counter[str] = field(default_factory=Counter)
    dead_letters: Counter[str] = field(default_factory=Counter)  # the message's and the births'
    exceptions: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[int]] = field(default_factory=dict)
    slowest: tuple[float, int] = (0.0, -1)  # seconds, case

    def add(self, other: Tally) -> None:
        self.cases += other.cases
        self.counts.update(other.counts)
        self.outcomes.update(other.outcomes)
        self.dead_letters.update(other.dead_letters)
        self.exceptions.update(other.exceptions)
        for name, cases in other.examples.items():
            kept = self.examples.setdefault(name, [])
            kept.extend(cases[: EXAMPLES - len(kept)])
        self.slowest = max(self.slowest, other.slowest)

    def found(self, name: str, case: int) -> None:
        self.counts[name] += 1
        kept = self.examples.setdefault(name, [])
        if len(kept) < EXAMPLES:
            kept.append(case)


def _rng(seed: int, case: int) -> random.Random:
    return random.Random(seed * 1_000_003 + case)


def _loops(case: int) -> tuple[bool, ...]:
    if case % 8 == 0:
        return (True, False)
    return (case % 2 == 0,)


def run_chunk(job: tuple[int, int, int, float]) -> Tally:
    seed, start, stop, slow_s = job
    tally = Tally()
    for case_no in range(start, stop):
        case = hostile_case(_rng(seed, case_no))
        tally.cases += 1
        found: set[str] = set()
        seen: list[Outcome] = []
        for native in _loops(case_no):
            try:
                outcome = decode_for_test(case.topic, case.payload, case.births, native=native)
            except Exception as exc:  # the finding: an exception escaped message handling
                found.add("exception")
                tally.exceptions[f"{type(exc).__name__}: {str(exc)[:60]}"] += 1
                continue
            seen.append(outcome)
            worst = max(outcome.seconds)
            tally.slowest = max(tally.slowest, (worst, case_no))
            if worst > slow_s:
                found.add("slow")
            found.update(judge(case, outcome))
        if len(seen) == 2 and seen[0] != seen[1]:
            found.add("loop-mismatch")
        if seen:
            _count_outcome(tally, seen[0])
        for name in found:
            tally.found(name, case_no)
    return tally


def _count_outcome(tally: Tally, outcome: Outcome) -> None:
    message = outcome.message
    tally.outcomes[type(message).__name__] += 1
    if isinstance(message, DeadLetter):
        tally.dead_letters[message.reason] += 1
    for reason in outcome.births:
        if reason is not None:
            tally.dead_letters[f"(birth) {reason}"] += 1


def _jobs(seed: int, cases: int, slow_s: float) -> Iterator[tuple[int, int, int, float]]:
    for start in range(0, cases, CHUNK):
        yield seed, start, min(start + CHUNK, cases), slow_s


def fuzz(seed: int, cases: int, workers: int, slow_s: float, time_limit: float) -> tuple[Tally, float, bool]:
    total = Tally()
    began = time.monotonic()
    last_print = began
    stopped = False
    context = multiprocessing.get_context("spawn")  # a clean interpreter per worker: no inherited state
    with context.Pool(workers) as pool:
        for tally in pool.imap_unordered(run_chunk, _jobs(seed, cases, slow_s)):
            total.add(tally)
            now = time.monotonic()
            if now - last_print >= 10 or total.cases == cases:
                last_print = now
                rate = total.cases / (now - began)
                print(f"  {total.cases:>9,} / {cases:,} cases  {rate:,.0f}/s  findings "
                      f"{sum(total.counts.values()):,}", file=sys.stderr, flush=True)
            if now - began > time_limit:
                stopped = True
                pool.terminate()
                break
    return total, time.monotonic() - began, stopped


def report(total: Tally, *, seed: int, cases: int, elapsed: float, stopped: bool, slow_s: float) -> str:
    lines = [f"lineproto fuzz: seed {seed}, {total.cases:,} of {cases:,} cases in {elapsed:,.0f} s"
             + (" (stopped at the time limit)" if stopped else "")]
    lines.append("findings (cases):")
    for name in FINDINGS:
        label = f"slow (> {slow_s * 1000:.0f} ms CPU per message)" if name == "slow" else name
        examples = ", ".join(map(str, total.examples.get(name, [])))
        lines.append(f"  {label:<32}{total.counts[name]:>10,}" + (f"   e.g. --only {examples}" if examples else ""))
    seconds, case = total.slowest
    lines.append(f"  slowest message: {seconds * 1000:.1f} ms CPU (case {case})")
    lines.append("outcomes: " + ", ".join(f"{k} {v:,}" for k, v in sorted(total.outcomes.items())))
    lines.append("dead letters by reason:")
    lines += [f"  {reason:<32}{count:>10,}" for reason, count in total.dead_letters.most_common()]
    if total.exceptions:
        lines.append("exceptions:")
        lines += [f"  {count:>8,}  {what}" for what, count in total.exceptions.most_common(10)]
    return "\n".join(lines)


def show(seed: int, case_no: int) -> None:
    """One case in full: what was sent, what the decoder made of it, what the judge says."""
    case = hostile_case(_rng(seed, case_no))
    for topic, payload in case.births:
        print(f"birth on {topic!r}: {_unpacked(payload)!r:.2000}")
    print(f"message on {case.topic!r}: {_unpacked(case.payload)!r:.2000}")
    for native in (True, False):
        try:
            outcome = decode_for_test(case.topic, case.payload, case.births, native=native)
        except Exception as exc:  # shown, as the fuzz counts it
            print(f"{'C loop' if native else 'Python path'}: {type(exc).__name__}: {exc}")
            continue
        print(f"{'C loop' if native else 'Python path'}: births {outcome.births}, "
              f"{max(outcome.seconds) * 1000:.1f} ms, judged {judge(case, outcome)}")
        print(f"  {outcome.message!r:.3000}")


def _unpacked(payload: bytes) -> object:
    try:
        return msgpack.unpackb(payload, raw=False, strict_map_key=False)
    except Exception as exc:  # garbled on purpose
        return f"<not msgpack: {type(exc).__name__}> {payload[:200]!r}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.lineproto.fuzz", description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2, choices=(1, 2), help="processes (at most 2)")
    parser.add_argument("--slow-ms", type=float, default=50.0, help="CPU time bound per message")
    parser.add_argument("--time-limit", type=float, default=1500.0, help="seconds before it stops dispatching")
    parser.add_argument("--only", type=int, help="show this one case in full instead")
    args = parser.parse_args(argv)
    if args.only is not None:
        show(args.seed, args.only)
        return 0
    total, elapsed, stopped = fuzz(args.seed, args.cases, args.workers, args.slow_ms / 1000, args.time_limit)
    print(report(total, seed=args.seed, cases=args.cases, elapsed=elapsed, stopped=stopped,
                 slow_s=args.slow_ms / 1000))
    return 1 if sum(total.counts.values()) or stopped else 0


if __name__ == "__main__":
    sys.exit(main())
