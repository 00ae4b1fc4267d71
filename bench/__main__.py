"""`python -m bench [--quick]`: every figure of issue #13 in one run, next to its target.

Prints the table, writes the results JSON (default bench/results/latest.json) and, for a
full run, rewrites docs/performance.md from that JSON. `--quick` is the smoke mode the test
suite runs (seconds per phase, a one-hour day, a 5-second outage): same code, same figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from bench import report
from bench.gateway import agent_footprint, emulated, queue_and_wire
from bench.latency import latency
from bench.mix import g60_mix
from bench.stack import ROOT
from bench.storage import storage
from bench.system import Stack, limits, outage_drain, overload, whole_system
from roadpulse.services import Influxd, Mosquitto

RESULTS = ROOT / "bench" / "results" / "latest.json"
DOC = ROOT / "docs" / "performance.md"
NOTES = ROOT / "bench" / "notes.md"  # hand-written analysis, appended to the generated document

FULL = {"system_rate": 5000, "system_s": 30, "limit_readings": 300_000, "latency_s": 30, "overload_s": 60,
        "outage_s": 300, "storage_hours": 24, "agent_s": 20}
QUICK = {"system_rate": 2000, "system_s": 1, "limit_readings": 20_000, "latency_s": 1.5, "overload_s": 0.5,
         "outage_s": 2, "storage_hours": 1, "agent_s": 2}


def _version(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=10)
        return (out.stdout or out.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "unknown"


def machine() -> dict[str, Any]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": model, "cores": os.cpu_count(), "kernel": platform.release(), "python": platform.python_version(),
            "influxd": _version(["influxd", "version"]), "mosquitto": _version(["mosquitto", "-h"]),
            "load_average_start": os.getloadavg()}


def timed(results: dict[str, Any], name: str, fn: Any, *args: Any) -> Any:
    """Run one phase; a phase that fails is recorded with its error and the run goes on."""
    began = time.monotonic()
    print(f"bench: {name} ...", flush=True)
    try:
        value = fn(*args)
    except Exception as exc:  # any failure of a phase is reported, not fatal
        traceback.print_exc()
        value = {"error": f"{type(exc).__name__}: {exc}"}
    results.setdefault("phase_seconds", {})[name] = round(time.monotonic() - began, 1)
    results[name] = value
    return value


def run(quick: bool, work: Path) -> dict[str, Any]:
    p = QUICK if quick else FULL
    mix = g60_mix()
    results: dict[str, Any] = {"mode": "quick" if quick else "full", "parameters": p, "machine": machine(),
                               "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                               "mix": {"scenario": mix.scenario, "devices": mix.devices,
                                       "readings_per_s_per_gateway": mix.readings_per_s,
                                       "messages_per_s_per_gateway": mix.messages_per_s,
                                       "readings_per_message": mix.per_message}}
    began = time.monotonic()
    broker, influx = Mosquitto(work / "mosquitto"), Influxd(work / "influxd")
    side: threading.Thread | None = None
    try:
        broker.start()
        influx.start()
        stack = Stack(work, broker, influx, mix, quick)

        def side_phases() -> None:
            """Storage (its own influxd) and the agent (its own topics): nothing shared with the rest but the broker."""
            timed(results, "storage", storage, work, broker, p["storage_hours"])
            timed(results, "agent", agent_footprint, work / "agent", broker, p["agent_s"])

        # A quick run is a smoke test: these two run beside the others to keep it short; a full run
        # keeps every phase alone on the machine.
        side = threading.Thread(target=side_phases, name="bench-side") if quick else None
        if side is not None:
            side.start()
        lim = timed(results, "limits", limits, stack, p["limit_readings"])
        # The most this machine sustains live: the collector's drain rate, or what one `sim load`
        # process can publish (it makes every value afresh), whichever is lower.
        sustained = min(float(lim.get("collector_per_s", p["system_rate"])),
                        float(lim.get("publisher_per_s", p["system_rate"])))
        results["sustained_per_s"] = sustained
        timed(results, "system", whole_system, stack, p["system_rate"], p["system_s"], sustained)
        timed(results, "overload", overload, stack, sustained, p["overload_s"])
        timed(results, "latency", latency, stack, 0.5 * sustained, p["latency_s"])
        timed(results, "drain", outage_drain, stack, p["system_rate"], p["outage_s"])
        if side is not None:
            side.join()
        else:
            side_phases()
    finally:
        if side is not None and side.is_alive():
            side.join()
        influx.stop()
        broker.stop()
    timed(results, "queue", queue_and_wire, quick)
    timed(results, "emulated", emulated, quick)
    results["seconds"] = round(time.monotonic() - began, 1)
    results["machine"]["load_average_end"] = os.getloadavg()
    return results


def _get(results: dict[str, Any], *keys: str) -> Any:
    node: Any = results
    for key in keys:
        node = node.get(key, {}) if isinstance(node, dict) else {}
    return node if node != {} else "?"


def document(results: dict[str, Any], command: str) -> str:
    m = results["machine"]
    mix = results["mix"]
    lines = [
        "# Performance",
        "",
        "<!-- Generated by `python -m bench` from bench/results/latest.json; do not edit by hand. -->",
        "",
        f"Command, from the repository root with the project's environment (`.venv/bin/python`): "
        f"`{command}` ({results['mode']} run, {results['seconds']:.0f} s, started {results['started']}).",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, Linux {m['kernel']}, Python {m['python']}, {m['influxd']}, "
        f"{m['mosquitto']}. Load average {m['load_average_start'][0]:.1f} at the start and "
        f"{m['load_average_end'][0]:.1f} at the end: the machine is shared, so every figure is a ratio or "
        "is taken in the same run as its reference.",
        "",
        f"Traffic: the {mix['scenario']} scenario's mix as the agent batches it ({mix['devices']} devices, "
        f"{mix['readings_per_s_per_gateway']:.1f} readings/s per gateway in {mix['readings_per_message']}-reading "
        f"messages), sent by `roadpulse sim load` from many virtual gateways. The collector runs with every "
        "durability feature on: persistent session, acks after the durable write, gzip, spool with fsync.",
        "",
        report.table_markdown(results),
        "",
        "## How each figure is taken",
        "",
        "- **Whole system**: CPU (user + system, `/proc/<pid>/stat`) of the collector, mosquitto and influxd over "
        f"the whole phase ({results['parameters']['system_rate']:,} readings/s for "
        f"{results['parameters']['system_s']} s, until InfluxDB answers the last reading), divided by the "
        "readings sent. The two baselines run the same load through the same broker and influxd, one after "
        "the other (`bench/baselines.py`): the naive tutorial pipeline (paho, one HTTP /write per message) and "
        "influxdb-client's batching write API with `Point`s. "
        f"influxdb-client against influxd 1.6.7: {_get(results, 'system', 'client', 'v2_write')}; its "
        "write API uses /api/v2/write, which InfluxDB has only from 1.8 on (the documented 1.8 compatibility "
        "of token `user:password`, org `-`, bucket `db/rp`), so the bench keeps the library's batching, `Point` "
        "serialisation and HTTP pool and posts each finished batch to v1's /write. The collector runs once "
        "more at 90 % of the sustained load (below), alone: the same fixed costs spread over more readings.",
        "- **Limits**: one backlog of g60-sized messages is held by the broker for two persistent sessions; a "
        "subscriber that only counts drains it (the broker's limit), then the collector does; influxd's raw "
        "ingest is the same readings as line protocol, gzip'd in advance and posted from two connections.",
        "- **Maximum (sustained) load**: the lower of the collector's backlog drain rate and what one `sim load` "
        "process can publish with nothing else running (it computes every value afresh, and is the lower one here: "
        "this 2-core machine cannot offer the collector more than it drains).",
        "- **Overload**: two `sim load` processes asked for 2 × the sustained load; what the broker "
        "acknowledged is what was offered (a publisher's own unsent backlog was never accepted), and all of it "
        "must be in InfluxDB afterwards.",
        "- **Drain**: influxd is stopped while the load runs at the whole-system rate for "
        f"{results['parameters']['outage_s']} s, then restarted; drain rate = readings sent / time from the "
        "restart until InfluxDB answers all of them.",
        "- **Latency**: a probe gateway publishes one reading every 100 ms, stamped when sent, alongside a "
        "`sim load` at half the maximum load; InfluxDB is queried every 20 ms.",
        f"- **Storage**: {results['parameters']['storage_hours']:g} simulated hours of g60's 11 "
        "detector stations (28 points every 30 s, scaled ints as the agent sends them), through the collector "
        "into a fresh influxd with cold-shard snapshots and full compactions after 1 s (INFLUXDB_DATA_* "
        "overrides); every file of the database once the WAL is empty and the TSM files are stable.",
        "- **Agent**: a real `roadpulse agent run` polling 100 sensors (7 simulated Modbus TCP devices) every "
        "second; RSS, CPU and write_bytes from /proc over a window after start-up; first publish seen by a "
        "subscriber, timed from exec. Queue bytes from `bench/disk_writes.py` (4 stations, with an outage), "
        "wire bytes from `bench/wire_size.py` (1 station).",
        f"- **arm64**: {results.get('emulated', {}).get('skipped') or 'encode loop under qemu-aarch64-static'}.",
        "",
        "Phase times (s): " + ", ".join(f"{k} {v}" for k, v in results.get("phase_seconds", {}).items()) + ".",
        "",
    ]
    if NOTES.exists():
        lines += [NOTES.read_text().rstrip(), ""]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke mode: seconds per phase (the test suite's)")
    parser.add_argument("--json", type=Path, default=RESULTS, help="where to write the results")
    parser.add_argument("--docs", type=Path, default=None,
                        help="document to rewrite (default: docs/performance.md for a full run, none for --quick)")
    parser.add_argument("--docs-only", action="store_true", help="rewrite the document from --json, no run")
    args = parser.parse_args()
    command = "python -m bench" + (" --quick" if args.quick else "")
    if args.docs_only:
        results = json.loads(args.json.read_text())
        (args.docs or DOC).write_text(document(results, results.get("command", command)))
        return 0
    with tempfile.TemporaryDirectory(prefix="rp-bench-") as tmp:
        results = run(args.quick, Path(tmp))
    results["command"] = command + ("" if args.json == RESULTS else f" --json {shlex.quote(str(args.json))}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2, default=float) + "\n")
    print(report.table_text(results))
    print(f"bench: {results['mode']} run took {results['seconds']:.0f} s; results in {args.json}")
    docs = args.docs or (None if args.quick else DOC)
    if docs is not None:
        docs.write_text(document(results, command))
        print(f"bench: wrote {docs}")
    missing = report.missing(results)
    if missing:
        print(f"bench: figures without a value: {missing}", file=sys.stderr)
    return 1 if missing or report.total_lost(results) else 0


if __name__ == "__main__":
    sys.exit(main())
