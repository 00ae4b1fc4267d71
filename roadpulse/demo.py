"""`roadpulse demo`: the whole pipeline on loopback, with live progress and an honest summary.

The stored count is read back from InfluxDB, never taken from in-process counters,
so the summary shows what an operator would find in the database.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Coroutine, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from roadpulse.lifecycle import run_until_stopped
from roadpulse.services import COUNT_QUERY, Influxd, Mosquitto, count_readings, influx_query, sum_reading_counts
from roadpulse.shipped import shipped_dir

SCENARIOS = shipped_dir("scenarios")
GATEWAY = "demo-gw-1"
# After a stop signal: drain this long at most, then give the agent and collector STOP_WAIT_S to
# stop; the whole stop stays within STOP_GRACE_S, after which roadpulse.lifecycle cancels.
SIGNALLED_DRAIN_S = 1.5
STOP_WAIT_S = 3.0
STOP_GRACE_S = 8.0


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds, not {text}")
    return value


def add_demo_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--duration", type=_positive, default=None, metavar="SECONDS",
                        help="stop after this many seconds (default: run until Ctrl-C)")
    parser.add_argument("--scenario", default=str(SCENARIOS / "demo.toml"), metavar="FILE",
                        help="simulator scenario (default: config/scenarios/demo.toml)")
    parser.add_argument("--interval", type=float, default=1.0, metavar="SECONDS",
                        help="poll interval of every device (default 1 s, so progress is visible)")
    parser.add_argument("--mqtt-url", default=None, metavar="mqtt://HOST:PORT",
                        help="use this broker instead of starting a private mosquitto")
    parser.add_argument("--influx-url", default=None, metavar="http://HOST:PORT",
                        help="use this InfluxDB instead of starting a private influxd")
    parser.add_argument("--influx-db", default="roadpulse", help="v1 database (default roadpulse)")
    parser.add_argument("--influx-org", default=None, help="v2 API: organisation")
    parser.add_argument("--influx-bucket", default=None, help="v2 API: bucket")
    parser.add_argument("--influx-token-file", default=None, metavar="FILE", help="v2 API: file holding the token")
    parser.add_argument("--summary-json", default=None, metavar="FILE",
                        help="write the summary as JSON (keys include sent and stored)")
    parser.add_argument("--drain-timeout", type=float, default=30.0, metavar="SECONDS",
                        help="how long to wait for the pipeline to drain at the end (default 30)")
    parser.add_argument("--work-dir", default=None, metavar="DIR",
                        help="keep configs, queue, spool and service data here (default: a temp dir, removed)")


@dataclass
class Summary:
    sent: int
    stored: int
    missing: int
    duration_s: float
    readings_per_s: float
    devices: int
    mqtt_url: str
    influx_url: str
    influx_db: str
    stored_source: str = "InfluxDB query: SELECT count(*) FROM /.*/ (roadpulse_* excluded)"


@dataclass(frozen=True)
class InfluxTarget:
    url: str
    api: str
    database: str
    org: str | None = None
    bucket: str | None = None
    token_file: str | None = None

    def count(self) -> int:
        if self.api == "v1":
            return count_readings(self.url, self.database)
        return _count_v2(self)


def _count_v2(target: InfluxTarget) -> int:
    # InfluxDB 2.x and 1.8+ answer InfluxQL on /query for a bucket mapped to a database (DBRP).
    import urllib.request

    token = Path(target.token_file).read_text().strip() if target.token_file else ""
    params = urllib.parse.urlencode({"db": target.bucket or target.database, "q": COUNT_QUERY})
    req = urllib.request.Request(f"{target.url}/query?{params}", headers={"Authorization": f"Token {token}"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return sum_reading_counts(json.loads(resp.read()))


def _agent_toml(work: Path, endpoints: list[Any], mqtt_url: str, interval: float) -> str:
    lines = [
        "[agent]", f'gateway_id = "{GATEWAY}"', f'data_dir = "{work / "agent"}"', "",
        "[mqtt]", f'url = "{mqtt_url}"', "",
        "[publish]", "max_age_s = 0.5", "",
    ]
    # Modbus RTU slaves on one serial line share a bus: one request at a time.
    buses: dict[str, str] = {}
    for ep in endpoints:
        if ep.protocol == "modbus-rtu" and ep.address not in buses:
            buses[ep.address] = f"rtu{len(buses) + 1}"
            lines += ["[[buses]]", f'id = "{buses[ep.address]}"',
                      f'serial = {{ port = "{ep.address}", baudrate = {ep.baudrate} }}', ""]
    for ep in endpoints:
        lines += ["[[devices]]", f'id = "{ep.device_id}"', f'profile = "{ep.profile}"', f"interval_s = {interval}"]
        lines += ['tags = { site = "demo", road = "G60", direction = "N" }']
        if ep.protocol == "modbus-tcp":
            host, port = ep.address.rsplit(":", 1)
            lines += [f"unit = {ep.unit or 1}", f'tcp = {{ host = "{host}", port = {port} }}']
        elif ep.protocol == "modbus-rtu":
            lines += [f"unit = {ep.unit or 1}", f'bus = "{buses[ep.address]}"']
        else:
            lines += [f'serial = {{ port = "{ep.address}", baudrate = {ep.baudrate} }}']
        lines.append("")
    return "\n".join(lines)


def _collector_toml(work: Path, mqtt_url: str, target: InfluxTarget) -> str:
    lines = [
        "[collector]", 'client_id = "demo-collector"', f'data_dir = "{work / "collector"}"', "",
        "[mqtt]", f'url = "{mqtt_url}"', "",
        "[influx]", f'url = "{target.url}"', f'api = "{target.api}"', f'database = "{target.database}"',
    ]
    if target.api == "v2":
        lines += [f'org = "{target.org}"', f'bucket = "{target.bucket}"']
        if target.token_file:
            lines.append(f'token_file = "{target.token_file}"')
    lines += ["", "[http]", 'listen = "127.0.0.1:0"', ""]
    return "\n".join(lines)


@contextlib.contextmanager
def _services(args: argparse.Namespace, work: Path) -> Iterator[tuple[str, InfluxTarget]]:
    """Start what the user did not point us at; stop exactly those processes afterwards."""
    started: list[Mosquitto | Influxd] = []
    try:
        mqtt_url = args.mqtt_url
        if mqtt_url is None:
            broker = Mosquitto(work / "mosquitto")
            broker.start()
            started.append(broker)
            mqtt_url = broker.url
        if args.influx_url is None:
            db = Influxd(work / "influxd")
            db.start()
            started.append(db)
            db.create_database(args.influx_db)
            target = InfluxTarget(db.url, "v1", args.influx_db)
        elif args.influx_org or args.influx_bucket:
            target = InfluxTarget(args.influx_url.rstrip("/"), "v2", args.influx_db, args.influx_org,
                                  args.influx_bucket, args.influx_token_file)
        else:
            target = InfluxTarget(args.influx_url.rstrip("/"), "v1", args.influx_db)
            influx_query(target.url, f'CREATE DATABASE "{target.database}"', method="POST")
        yield mqtt_url, target
    finally:
        for service in reversed(started):
            service.stop()


class Progress:
    """One status line, rewritten in place on a terminal, printed every few seconds otherwise."""

    def __init__(self) -> None:
        self.tty = sys.stdout.isatty()
        self.last_print = 0.0

    def show(self, text: str, *, final: bool = False, change: bool = False) -> None:
        """`change`: a new phase, printed as its own line even when not on a terminal."""
        if self.tty:
            end = "\n" if final or change else ""
            print(f"\r\033[K{text}", end=end, flush=True)
        elif final or change or time.monotonic() - self.last_print >= 5:
            print(text, flush=True)
            self.last_print = time.monotonic()


async def _count(target: InfluxTarget) -> int:
    return await asyncio.to_thread(target.count)


class StuckError(Exception):
    """The agent or the collector did not stop within STOP_WAIT_S of being asked to."""


async def _demo(args: argparse.Namespace, work: Path, stop_all: asyncio.Event) -> Summary:
    """`stop_all` is set by the first SIGINT/SIGTERM (roadpulse.lifecycle)."""
    from agent.config import load_agent_config
    from agent.run import Agent
    from collector.config import load_collector_config
    from collector.run import Collector
    from firmware_sim.runner import Simulator, load_scenario

    scenario = load_scenario(Path(args.scenario))
    with _services(args, work) as (mqtt_url, target):
        async with Simulator(scenario, truth_path=work / "truth.jsonl") as sim:
            print(f"roadpulse demo: {len(sim.endpoints)} simulated devices, broker {mqtt_url}, "
                  f"InfluxDB {target.url} ({target.api}, {target.bucket or target.database})")
            for ep in sim.endpoints:
                print(f"  {ep.device_id:<20} {ep.protocol:<11} {ep.address}  profile={ep.profile}")
            agent_path = work / "agent.toml"
            agent_path.write_text(_agent_toml(work, sim.endpoints, mqtt_url, args.interval))
            collector_path = work / "collector.toml"
            collector_path.write_text(_collector_toml(work, mqtt_url, target))
            sent = 0

            def on_taken(readings: list[Any]) -> None:
                nonlocal sent
                sent += len(readings)

            agent = Agent(load_agent_config(agent_path), agent_path, on_taken=on_taken)
            collector = Collector(load_collector_config(collector_path))
            stop_agent, stop_collector = asyncio.Event(), asyncio.Event()
            agent_done, collector_done = asyncio.Event(), asyncio.Event()
            started = time.monotonic()
            progress = Progress()
            stored = 0

            async def drive() -> None:
                nonlocal stored
                deadline = started + args.duration if args.duration else None
                last_sent, last_t = 0, started
                while not stop_all.is_set() and (deadline is None or time.monotonic() < deadline):
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop_all.wait(), 1.0)
                    now = time.monotonic()
                    rate = (sent - last_sent) / max(now - last_t, 1e-6)
                    last_sent, last_t = sent, now
                    with contextlib.suppress(OSError):
                        stored = await _count(target)
                    progress.show(f"[{now - started:6.1f}s] taken {sent:>7}  {rate:7.1f} readings/s  "
                                  f"stored in InfluxDB {stored:>7}")
                # Stop polling, let the agent drain its queue, then wait for the database to catch up;
                # after a stop signal, only briefly: the whole stop must take a few seconds.
                stop_agent.set()
                drain_s = min(args.drain_timeout, SIGNALLED_DRAIN_S) if stop_all.is_set() else args.drain_timeout
                progress.show(f"[drain ] taken {sent:>7}  stored in InfluxDB {stored:>7}  (draining, at most "
                              f"{drain_s:g} s)", change=True)
                drain_until = time.monotonic() + drain_s
                while time.monotonic() < drain_until:
                    with contextlib.suppress(OSError):
                        stored = await _count(target)
                    if stored >= sent and agent_done.is_set():
                        break
                    progress.show(f"[drain ] taken {sent:>7}  stored in InfluxDB {stored:>7}  (draining)")
                    await asyncio.sleep(0.5)
                stop_collector.set()
                try:
                    async with asyncio.timeout(STOP_WAIT_S):
                        await agent_done.wait()
                        await collector_done.wait()
                except TimeoutError:
                    # Raising here makes the task group cancel both: the drain ends at its timeout.
                    raise StuckError(f"agent or collector still running {STOP_WAIT_S:g} s after the drain") from None

            async def run_until_done(run: Coroutine[Any, Any, None], done: asyncio.Event) -> None:
                try:
                    await run
                finally:
                    done.set()

            try:
                async with asyncio.TaskGroup() as tg:
                    tg.create_task(run_until_done(agent.run(stop_agent), agent_done), name="demo.agent")
                    tg.create_task(run_until_done(collector.run(stop_collector), collector_done),
                                   name="demo.collector")
                    tg.create_task(drive(), name="demo.progress")
            except* StuckError as group:
                print(f"warning: {group.exceptions[0]}; cancelled them", file=sys.stderr)
            elapsed = time.monotonic() - started
            with contextlib.suppress(OSError, TimeoutError):
                stored = await asyncio.wait_for(_count(target), STOP_WAIT_S)
            progress.show(f"[{elapsed:6.1f}s] taken {sent:>7}  stored in InfluxDB {stored:>7}", final=True)
            return Summary(sent=sent, stored=stored, missing=max(0, sent - stored), duration_s=round(elapsed, 2),
                           readings_per_s=round(sent / max(elapsed, 1e-6), 1), devices=len(sim.endpoints),
                           mqtt_url=mqtt_url, influx_url=target.url, influx_db=target.bucket or target.database)


def run_demo_cli(args: argparse.Namespace) -> int:
    keep = args.work_dir is not None
    work = Path(args.work_dir) if keep else Path(tempfile.mkdtemp(prefix="roadpulse-demo-"))
    work.mkdir(parents=True, exist_ok=True)

    async def main(stop: asyncio.Event) -> int:
        # The summary is printed inside the loop: asyncio.run may still wait for a stuck thread.
        return _report(args, await _demo(args, work, stop))

    try:
        return run_until_stopped(main, grace_s=STOP_GRACE_S)
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)


def _report(args: argparse.Namespace, summary: Summary) -> int:
    verdict = "OK: every reading taken is in InfluxDB" if summary.stored == summary.sent else (
        f"MISMATCH: {summary.missing} readings taken are not in InfluxDB" if summary.stored < summary.sent
        else f"MISMATCH: InfluxDB holds {summary.stored - summary.sent} more readings than were taken")
    print(f"\nsummary: sent {summary.sent} readings (taken by the agent), stored {summary.stored} "
          f"({summary.readings_per_s} readings/s over {summary.duration_s} s, {summary.devices} devices)\n{verdict}")
    if args.summary_json:
        Path(args.summary_json).write_text(json.dumps(asdict(summary), indent=2) + "\n")
    return 0 if summary.stored == summary.sent and summary.sent > 0 else 1
