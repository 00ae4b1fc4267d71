"""The fault matrix's harness: private services, collector processes, an agent in or out of process.

Used by tests/faults/matrix.py (the cells) and tests/faults/agent_proc.py (the agent process).
See docs/reliability.md for what is counted and why.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from roadpulse.services import Influxd, Mosquitto, count_readings, influx_query
from tests.faults import tmpfs
from tests.faults.counts import dead_lettered
from tests.faults.proxy import Proxy

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = ROOT / "config" / "scenarios" / "demo.toml"
GATEWAY = "fm-gw-1"
RUN_BEFORE_S = 4.0
RUN_AFTER_S = 4.0
SETTLE_LIMIT_S = 60.0


@dataclass
class Result:
    cell: str
    sent: int = 0
    stored: int = 0
    evicted: int = 0
    dead: int = 0
    duplicates: int = 0
    resent: int = 0
    queued: int = 0
    seconds: float = 0.0
    # Readings the agent took per second while its devices were open: the offered load.
    rate: float = 0.0
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.queued == 0 and self.sent == self.stored + self.evicted + self.dead and self.sent > 0

    def row(self) -> str:
        lost = self.sent - self.stored - self.evicted - self.dead
        verdict = "ok" if self.ok else f"lost {lost}" if self.cell.startswith("control") else "FAIL"
        return (f"| {self.cell} | {self.sent} | {self.stored} | {self.evicted} | {self.dead} | {self.duplicates} "
                f"| {self.resent} | {self.queued} | {verdict} | {self.rate:.0f} | {self.seconds:.0f} |")


HEADER = ("| cell | sent | stored | evicted | dead-lettered | duplicates | resent | left queued | sent = stored + "
          "evicted + dead | readings/s | s |\n|---|---|---|---|---|---|---|---|---|---|---|")


class Gate:
    """Wraps a device Source: silent (no readings) once closed, so the agent's queue can drain."""

    def __init__(self, inner: Any, is_open: Callable[[], bool]) -> None:
        self._inner = inner
        self._open = is_open

    async def connect(self) -> None:
        await self._inner.connect()

    async def read(self) -> Any:
        if not self._open():
            return []
        try:
            readings = await self._inner.read()
        except Exception:
            if not self._open():  # closed while reading: not even a bad reading
                return []
            raise
        return readings if self._open() else []

    async def close(self) -> None:
        await self._inner.close()


@dataclass
class Stack:
    work: Path
    broker: Mosquitto
    influx: Influxd
    collectors: dict[str, tuple[Path, subprocess.Popen[bytes] | None]] = field(default_factory=dict)
    share_group: str | None = None
    proxy: Proxy | None = None
    spool_max_bytes: int = 1 << 30
    # A collector's spool folder on a private tmpfs of this many bytes (tests/faults/tmpfs.py).
    collector_tmpfs: int | None = None

    def spool_dir(self, name: str) -> Path:
        return self.work / f"{name}-data" / "spool"

    def collector_config(self, name: str) -> Path:
        return self.work / f"{name}.toml"

    def start_collector(self, name: str) -> None:
        path = self.work / f"{name}.toml"
        if not path.exists():
            share = f'share_group = "{self.share_group}"\n' if self.share_group else ""
            path.write_text(f"""
[collector]
client_id = "{name}"
data_dir = "{self.work / (name + '-data')}"
park_timeout_s = 3.0
self_metrics_interval_s = 1.0

[mqtt]
url = "{self.broker.url}"
{share}session_expiry_s = 3600

[influx]
url = "{self.influx.url}"
batch_max_age_s = 0.2
timeout_s = 2.0

[spool]
max_bytes = {self.spool_max_bytes}

[http]
listen = "127.0.0.1:0"
""")
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        argv = [sys.executable, "-m", "collector.run", str(path)]
        if self.collector_tmpfs is not None:
            self.spool_dir(name).mkdir(parents=True, exist_ok=True)
            argv = tmpfs.wrap(argv, self.spool_dir(name), self.collector_tmpfs)
        with (self.work / f"{name}.log").open("ab") as out:
            proc = subprocess.Popen(argv, cwd=ROOT, env=env,
                                    stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        self.collectors[name] = (path, proc)

    def kill_collector(self, name: str) -> None:
        path, proc = self.collectors[name]
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        self.collectors[name] = (path, None)

    def stop_collectors(self) -> None:
        for name, (path, proc) in list(self.collectors.items()):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            self.collectors[name] = (path, None)

    def evidence(self, agent: Any) -> str:
        """What shows the fault took effect, beyond the cell's own doing."""
        found = []
        if isinstance(agent, ProcessAgent) and agent.storage_errors:
            found.append(f"agent storage errors: {agent.storage_errors}")
        if isinstance(agent, InProcessAgent) and agent.agent.stats.reconnects:
            found.append(f"agent reconnects: {agent.agent.stats.reconnects}")
        for log in sorted(self.work.glob("c*.log")):
            text = log.read_text(errors="replace")
            if "spool full" in text:
                found.append(f"{log.stem}: spool full")
            if "influxdb unavailable" in text:
                found.append(f"{log.stem}: spooled")
            if "spool cannot write" in text:
                found.append(f"{log.stem}: spool write refused")
            if "influxdb refused lines" in text:
                found.append(f"{log.stem}: lines refused")
        return "; " + ", ".join(found) if found else ""

    def dead_lettered(self) -> int:
        """Readings of data messages set aside as dead letters by any collector, each message once."""
        return dead_lettered(self.work)

    def duplicates(self) -> int:
        try:
            body = influx_query(self.influx.url, "SELECT last(duplicates) FROM roadpulse_collector_gateway "
                                "GROUP BY collector", "roadpulse")
        except Exception:  # informational column; no measurement yet means none counted
            return 0
        return sum(s["values"][0][1] for s in body["results"][0].get("series", []))


async def _wait(predicate: Callable[[], bool], limit_s: float) -> bool:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.25)
    return predicate()


@contextlib.asynccontextmanager
async def _stack(work: Path, collectors: int, share_group: str | None, *,
                 spool_max_bytes: int = 1 << 30, collector_tmpfs: int | None = None,
                 prepare: Callable[[Stack], Awaitable[None]] | None = None) -> AsyncIterator[Stack]:
    broker = Mosquitto(work / "mosquitto")
    influx = Influxd(work / "influxd")
    await asyncio.to_thread(broker.start)
    try:
        await asyncio.to_thread(influx.start)
        influx.create_database("roadpulse")
        stack = Stack(work, broker, influx, share_group=share_group, spool_max_bytes=spool_max_bytes,
                      collector_tmpfs=collector_tmpfs)
        if prepare is not None:
            await prepare(stack)
        try:
            for i in range(collectors):
                stack.start_collector(f"c{i + 1}")
            yield stack
        finally:
            await asyncio.to_thread(stack.stop_collectors)
    finally:
        if influx.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                influx.proc.send_signal(signal.SIGCONT)
        await asyncio.to_thread(influx.stop)
        await asyncio.to_thread(broker.stop)


def _agent_toml(work: Path, endpoints: list[Any], mqtt_url: str, *, extra_publish: str = "",
                queue_max_bytes: int = 64 << 20, delivery: str = "end-to-end", interval: float = 1.0) -> Path:
    from roadpulse.demo import _agent_toml as demo_toml

    text = demo_toml(work, endpoints, mqtt_url, interval)
    text = text.replace('gateway_id = "demo-gw-1"', f'gateway_id = "{GATEWAY}"')
    text = text.replace("[mqtt]\n", "[mqtt]\nreconnect_max_s = 1.0\n", 1)
    text = text.replace("[publish]\nmax_age_s = 0.5\n",
                        f"[publish]\nmax_age_s = 0.5\nreplay_messages_per_s = 200\ndelivery = \"{delivery}\"\n"
                        f"confirm_timeout_s = 3.0\nconfirm_timeout_max_s = 6.0\n{extra_publish}"
                        f"\n[queue]\nmax_bytes = {queue_max_bytes}\ncommit_interval_s = 0.2\n", 1)
    path = work / "agent.toml"
    path.write_text(text)
    return path


class InProcessAgent:
    """The agent in the harness's event loop: `on_taken` counts exactly what it took."""

    def __init__(self, path: Path) -> None:
        from agent.config import load_agent_config
        from agent.run import Agent
        from agent.sources import create_source

        self.taken: list[Any] = []
        self._open = True
        self.agent = Agent(load_agent_config(path), path, on_taken=self.taken.extend,
                           source_factory=lambda entry: Gate(create_source(entry), lambda: self._open))
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self.agent.run(self._stop), name="faults.agent")

    def close_gate(self) -> None:
        self._open = False

    def drained(self) -> bool:
        assert self.agent.outbox is not None
        self.agent.outbox.refresh()
        return self.agent.stats.queue_readings == 0

    async def stop(self) -> None:
        self._stop.set()
        assert self._task is not None
        await self._task

    def counts(self) -> tuple[int, int, int, int]:
        """sent, evicted, resent, queued."""
        s = self.agent.stats
        return len(self.taken), s.readings_evicted, s.messages_resent, s.queue_readings


class ProcessAgent:
    """The agent as a process of its own (tests/faults/agent_proc.py), so a cell can SIGKILL it."""

    def __init__(self, path: Path, work: Path, tmpfs_bytes: int | None = None) -> None:
        self._path = path
        self._work = work
        self.tmpfs_bytes = tmpfs_bytes
        self.data_dir = work / "agent"
        self.proc: subprocess.Popen[bytes] | None = None
        self._evicted_before = 0
        self._resent_before = 0
        self.storage_errors = 0

    def start(self) -> None:
        (self._work / "status.json").unlink(missing_ok=True)
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        argv = [sys.executable, "-m", "tests.faults.agent_proc", str(self._path), str(self._work)]
        if self.tmpfs_bytes is not None:  # its data folder (queue, births) on a tmpfs only it sees
            self.data_dir.mkdir(parents=True, exist_ok=True)
            argv = tmpfs.wrap(argv, self.data_dir, self.tmpfs_bytes)
        with (self._work / "agent.log").open("ab") as out:
            self.proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)

    def _status(self) -> dict[str, int]:
        try:
            status: dict[str, int] = json.loads((self._work / "status.json").read_text())
        except (OSError, ValueError):
            return {}
        if self.proc is None or status.get("pid") != self.proc.pid:
            return {}
        return status

    def kill(self) -> None:
        """SIGKILL: whatever it had in flight or unconfirmed is only in its queue on disk now."""
        assert self.proc is not None
        status = self._status()
        self._evicted_before += status.get("evicted", 0)
        self._resent_before += status.get("resent", 0)
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.proc = None

    def close_gate(self) -> None:
        (self._work / "gate-closed").touch()

    def drained(self) -> bool:
        status = self._status()
        return bool(status) and status["queued"] == 0

    async def stop(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)
            await asyncio.to_thread(self.proc.wait, 30)

    def counts(self) -> tuple[int, int, int, int]:
        text = (self._work / "taken.log").read_text() if (self._work / "taken.log").exists() else ""
        sent = sum(int(x) for x in text.split())
        status = json.loads((self._work / "status.json").read_text())
        self.storage_errors = status.get("storage_errors", 0)
        return (sent, self._evicted_before + status["evicted"], self._resent_before + status["resent"],
                status["queued"])


AgentHandle = InProcessAgent | ProcessAgent
Fault = Callable[[Stack, Any], Awaitable[str]]


async def run_cell(name: str, fault: Fault, *, collectors: int = 1, share_group: str | None = None,
                   agent_process: bool = False, proxy: bool = False, spool_max_bytes: int = 1 << 30,
                   delivery: str = "end-to-end", interval: float = 1.0, queue_max_bytes: int = 64 << 20,
                   agent_tmpfs: int | None = None, collector_tmpfs: int | None = None,
                   prepare: Callable[[Stack], Awaitable[None]] | None = None,
                   finish: Callable[[Stack], Awaitable[None]] | None = None) -> Result:
    """One cell. `interval`: the devices' poll interval (1 s nominal); `*_tmpfs`: a real small disk;
    `prepare`: before the collectors start; `finish`: after the drain, before counting."""
    from firmware_sim.runner import Simulator, load_scenario

    started = time.monotonic()
    result = Result(name)
    with tempfile.TemporaryDirectory(prefix="rp-faults-") as tmp:
        work = Path(tmp)
        async with _stack(work, collectors, share_group, spool_max_bytes=spool_max_bytes,
                          collector_tmpfs=collector_tmpfs, prepare=prepare) as stack, \
                Simulator(load_scenario(SCENARIO)) as sim:
            url = stack.broker.url
            if proxy:
                stack.proxy = Proxy(stack.broker.port)
                await stack.proxy.start()
                url = f"mqtt://127.0.0.1:{stack.proxy.port}"
            agent_path = _agent_toml(work, sim.endpoints, url, delivery=delivery, interval=interval,
                                     queue_max_bytes=queue_max_bytes)
            agent: AgentHandle = (ProcessAgent(agent_path, work, agent_tmpfs) if agent_process or agent_tmpfs
                                  else InProcessAgent(agent_path))
            agent.start()
            opened = time.monotonic()
            try:
                await asyncio.sleep(RUN_BEFORE_S)
                result.note = await fault(stack, agent)
                await asyncio.sleep(RUN_AFTER_S)
                agent.close_gate()
                open_s = time.monotonic() - opened
                await asyncio.sleep(1.0)
                await _wait(agent.drained, SETTLE_LIMIT_S)
            finally:
                await agent.stop()
                if stack.proxy is not None:
                    await stack.proxy.close()
            result.sent, result.evicted, result.resent, result.queued = agent.counts()
            result.rate = result.sent / open_s
            result.note += stack.evidence(agent)
            if finish is not None:
                await finish(stack)
            expected = result.sent - result.evicted - stack.dead_lettered()
            await _wait(lambda: count_readings(stack.influx.url, "roadpulse") >= expected, 20.0)
            await asyncio.sleep(1.5)  # one more self-metrics interval for the duplicate counts
            result.stored = count_readings(stack.influx.url, "roadpulse")
            result.dead = stack.dead_lettered()
            result.duplicates = stack.duplicates()
    result.seconds = time.monotonic() - started
    return result
