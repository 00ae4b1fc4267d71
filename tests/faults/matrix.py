"""The fault matrix (issue #10): simulator -> agent -> mosquitto -> collector(s) -> influxd, one fault per cell.

    python -m tests.faults.matrix [CELL ...]      # every cell, or the named ones; prints the table

The standalone command also runs LONG_CELLS (the 60-s overload); pytest runs CELLS only.

Each cell starts its own private services (roadpulse.services) on loopback ports in a temp
folder, runs the demo scenario's devices (firmware_sim) through an in-process agent in
end-to-end mode (short confirmation timeout) and one or three collector *processes*, injects
one fault, recovers, then closes the devices' gate (sources go silent) and waits until the
agent's queue is empty. It then counts:

- sent: readings the agent took (its `on_taken`, exact);
- stored: readings in InfluxDB (one counted field per reading; a resend overwrites its points);
- evicted: the agent's `readings_evicted` (0 unless `queue.max_bytes` or the disk was reached);
- dead: readings the collectors dead-lettered (messages distinct by gw/boot/seq; refused lines
  by their fields, tests/faults/counts.py);
- dup: duplicates the collectors counted (their per-gateway self-metrics), resent: the agent's resends.

A cell passes when sent = stored + evicted + dead, the queue is empty, the count of a limit the
cell is built to reach (LIMITS) is above 0 and the others are 0, and the fault's evidence shows
(EVIDENCE): `problems`.
"""

from __future__ import annotations

import asyncio
import random
import signal
import sys
import time
import urllib.parse
import urllib.request
from typing import Any

from tests.faults import tmpfs
from tests.faults.harness import HEADER, RUN_AFTER_S, RUN_BEFORE_S, Fault, Result, Stack, run_cell

__all__ = ["CELLS", "CONTROLS", "HEADER", "LONG_CELLS", "problems", "run_cell", "skipped"]


# ---- the faults ------------------------------------------------------------------------------

async def broker_kill_persisted(stack: Stack, agent: Any) -> str:
    await asyncio.sleep(5.5)  # past one autosave (5 s): the sessions are on disk
    await asyncio.to_thread(stack.broker.kill)
    await asyncio.sleep(3.0)
    await asyncio.to_thread(stack.broker.start)
    return "SIGKILL, 3 s down, restarted on its persistence file"


async def broker_kill_empty(stack: Stack, agent: Any) -> str:
    await asyncio.to_thread(stack.broker.kill)
    for db in stack.broker.data_dir.glob("*.db"):
        db.unlink()
    await asyncio.sleep(3.0)
    await asyncio.to_thread(stack.broker.start)
    return "SIGKILL, 3 s down, restarted without sessions or retained births"


async def shared_member_dies(stack: Stack, agent: Any) -> str:
    stack.kill_collector("c2")
    return "c2 of 3 in the share group SIGKILLed, never restarted"


async def collector_kill_mid_batch(stack: Stack, agent: Any) -> str:
    stack.kill_collector("c1")
    await asyncio.sleep(2.0)
    stack.start_collector("c1")
    return "SIGKILL, restarted after 2 s (same persistent session)"


async def influx_stopped(stack: Stack, agent: Any) -> str:
    await asyncio.to_thread(stack.influx.stop)
    await asyncio.sleep(4.0)
    await asyncio.to_thread(stack.influx.start)
    return "influxd SIGTERM, 4 s down, restarted"


async def influx_hung(stack: Stack, agent: Any) -> str:
    assert stack.influx.proc is not None
    stack.influx.proc.send_signal(signal.SIGSTOP)
    await asyncio.sleep(5.0)
    stack.influx.proc.send_signal(signal.SIGCONT)
    return "influxd SIGSTOP 5 s (writes time out at 2 s), SIGCONT"


async def no_fault(stack: Stack, agent: Any) -> str:
    return "baseline"


async def agent_kill_mid_publish(stack: Stack, agent: Any) -> str:
    await asyncio.sleep(1.3)
    agent.kill()
    await asyncio.sleep(1.0)
    agent.start()
    return "agent SIGKILLed while publishing, restarted after 1 s (new boot, replays the old one)"


async def power_cut_torn_tail(stack: Stack, agent: Any) -> str:
    agent.kill()
    segments = sorted((stack.work / "agent" / "queue").glob("*.seg"))
    last = segments[-1]
    raw = last.read_bytes()
    # A commit that never completed: a random-length prefix of a frame appended after the last whole one.
    rng = random.Random(len(raw))
    torn = raw[-min(len(raw), 600):][: rng.randrange(1, min(len(raw), 600))]
    with last.open("ab") as f:
        f.write(torn)
    await asyncio.sleep(1.0)
    agent.start()
    return f"agent SIGKILLed, {len(torn)} torn bytes appended to {last.name}, restarted"


async def link_flap(stack: Stack, agent: Any) -> str:
    assert stack.proxy is not None
    for _ in range(5):
        stack.proxy.cut()
        await asyncio.sleep(1.5)
    return "the agent's TCP link cut 5 times, 1.5 s apart (harness proxy, RST)"


async def agent_disk_full(stack: Stack, agent: Any) -> str:
    (stack.work / "disk-full").touch()
    await asyncio.sleep(4.0)
    (stack.work / "disk-full").unlink()
    return "no file of the agent may grow past 256 B for 4 s (RLIMIT_FSIZE: EFBIG, handled as ENOSPC)"


FILLER_BYTES = 60 * 1024


async def collector_spool_full(stack: Stack, agent: Any) -> str:
    stack.kill_collector("c1")
    await asyncio.to_thread(stack.influx.stop)
    # A spool nearly full already (max_bytes 64 KiB): one batch of our own filler metric.
    spool = stack.work / "c1-data" / "spool"
    spool.mkdir(parents=True, exist_ok=True)
    now_ms = int(time.time() * 1000)
    lines: list[str] = []
    size = 0
    while size < FILLER_BYTES:
        lines.append(f"roadpulse_filler,n={len(lines)} v=1i {now_ms}")
        size += len(lines[-1]) + 1
    (spool / f"{10**9:016d}-0-{now_ms}.batch").write_text("\n".join(lines))
    stack.start_collector("c1")
    await asyncio.sleep(6.0)
    await asyncio.to_thread(stack.influx.start)
    return "influxd down 6 s with the collector's spool at its max_bytes (64 KiB): acks held"


# ---- 2x overload ---------------------------------------------------------------------------

def overload(total_s: float) -> Fault:
    """The devices polled every 0.5 s instead of 1 s for the whole run (`total_s` of devices open)."""
    async def fault(stack: Stack, agent: Any) -> str:
        await asyncio.sleep(total_s - RUN_BEFORE_S - RUN_AFTER_S)
        return f"every device polled twice as often (0.5 s, nominal 1 s) for {total_s:.0f} s"
    return fault


# ---- cells that reach the limits --------------------------------------------------------------

QUEUE_SMALL = 64 * 1024  # the smallest queue.max_bytes the agent accepts: 16 segments of 4 KiB
OUTAGE_S = 24.0


async def broker_outage_evicts(stack: Stack, agent: Any) -> str:
    await asyncio.to_thread(stack.broker.stop)
    await asyncio.sleep(OUTAGE_S)
    evicted = agent.agent.stats.readings_evicted
    await asyncio.to_thread(stack.broker.start)
    return (f"broker stopped {OUTAGE_S:.0f} s, devices polled every 0.05 s (20x), queue.max_bytes "
            f"{QUEUE_SMALL // 1024} KiB: {evicted} readings counted evicted by the end of the outage")


PLANTED = 'weather,planted=yes air_temp="planted"'


async def plant_type_conflict(stack: Stack) -> None:
    """`weather.air_temp` made a string field before any reading arrives: every float air_temp is refused."""
    query = urllib.parse.urlencode({"db": "roadpulse", "precision": "ms"})
    body = f"{PLANTED} {int(time.time() * 1000)}".encode()
    request = urllib.request.Request(f"{stack.influx.url}/write?{query}", data=body, method="POST")
    await asyncio.to_thread(urllib.request.urlopen, request, timeout=10)


async def remove_planted(stack: Stack) -> None:
    """The planted point is no reading of the agent's: gone before stored readings are counted."""
    from roadpulse.services import influx_query

    await asyncio.to_thread(influx_query, stack.influx.url, "DELETE FROM weather WHERE planted = 'yes'",
                            "roadpulse", method="POST")


async def type_conflict(stack: Stack, agent: Any) -> str:
    return "weather.air_temp pre-created as a string in influxd: every air_temp reading (a float) refused"


# ---- a real full disk (tmpfs in a private mount namespace) -------------------------------------

FULL_S = 6.0


async def agent_tmpfs_full(stack: Stack, agent: Any) -> str:
    assert agent.proc is not None
    pid = agent.proc.pid
    # With the link up, a full disk rarely bites: the queue makes room by restarting its own
    # segment whenever every record in it is confirmed. So the link is down too (the broker
    # stopped): the queue holds unsent records and cannot free anything of its own.
    await asyncio.to_thread(stack.broker.stop)
    filled = await asyncio.to_thread(tmpfs.fill, pid, agent.data_dir)
    await asyncio.sleep(FULL_S)
    tmpfs.free(pid, agent.data_dir)
    await asyncio.to_thread(stack.broker.start)
    return (f"the agent's data folder on a {agent.tmpfs_bytes // 1024} KiB tmpfs, filled ({filled // 1024} KiB "
            f"of filler) for {FULL_S:.0f} s while the broker is stopped: ENOSPC")


async def collector_tmpfs_full(stack: Stack, agent: Any) -> str:
    _, proc = stack.collectors["c1"]
    assert proc is not None
    assert stack.collector_tmpfs is not None
    spool = stack.spool_dir("c1")
    filled = await asyncio.to_thread(tmpfs.fill, proc.pid, spool)
    await asyncio.to_thread(stack.influx.stop)
    await asyncio.sleep(FULL_S)
    tmpfs.free(proc.pid, spool)
    await asyncio.to_thread(stack.influx.start)
    return (f"influxd down {FULL_S:.0f} s with the collector's spool on a {stack.collector_tmpfs // 1024} KiB tmpfs, "
            f"filled ({filled // 1024} KiB filler): ENOSPC")


CELLS: dict[str, tuple[Fault, dict[str, Any]]] = {
    "baseline": (no_fault, {}),
    "broker-kill-persisted": (broker_kill_persisted, {}),
    "broker-kill-empty": (broker_kill_empty, {}),
    "shared-member-killed": (shared_member_dies, {"collectors": 3, "share_group": "fm"}),
    "collector-kill-mid-batch": (collector_kill_mid_batch, {}),
    "influxd-stopped": (influx_stopped, {}),
    "influxd-hung": (influx_hung, {}),
    "agent-kill-mid-publish": (agent_kill_mid_publish, {"agent_process": True}),
    "power-cut-torn-tail": (power_cut_torn_tail, {"agent_process": True}),
    "agent-disk-full": (agent_disk_full, {"agent_process": True}),
    "collector-spool-full": (collector_spool_full, {"spool_max_bytes": 64 * 1024}),
    "link-flap": (link_flap, {"proxy": True}),
    "agent-disk-full-tmpfs": (agent_tmpfs_full, {"agent_tmpfs": 1 << 20, "interval": 0.25}),
    "collector-spool-disk-full-tmpfs": (collector_tmpfs_full, {"collector_tmpfs": 256 * 1024}),
    "overload-2x-12s": (overload(12.0), {"interval": 0.5}),
    "broker-outage-evicts": (broker_outage_evicts, {"interval": 0.05, "queue_max_bytes": QUEUE_SMALL}),
    "type-conflict-dead-letters": (type_conflict, {"prepare": plant_type_conflict, "finish": remove_planted}),
}

# Only by the standalone command (too long for the CI suite, which runs the 12-s variant above).
LONG_CELLS: dict[str, tuple[Fault, dict[str, Any]]] = {
    "overload-2x-60s": (overload(60.0), {"interval": 0.5}),
}

# Cells that reach a declared limit: the count that must be above 0 there. Elsewhere both must be 0.
LIMITS: dict[str, str] = {
    "broker-outage-evicts": "evicted",
    "type-conflict-dead-letters": "dead",
}
# Cells whose fault shows only in a log or a counter: what the note must say, or the cell proved nothing.
EVIDENCE: dict[str, str] = {
    "agent-disk-full": "agent storage errors",
    "agent-disk-full-tmpfs": "agent storage errors",
    "collector-spool-full": "spool full",
    "collector-spool-disk-full-tmpfs": "spool write refused",
    "type-conflict-dead-letters": "lines refused",
}
# A real full disk may make the agent give up its oldest segment (counted as evicted): allowed there.
MAY_EVICT = {"agent-disk-full-tmpfs"}


def skipped(name: str) -> str | None:
    """Why a cell cannot run on this machine, or None."""
    options = (CELLS.get(name) or LONG_CELLS.get(name) or CONTROLS[name])[1]
    if options.get("agent_tmpfs") or options.get("collector_tmpfs"):
        return tmpfs.unavailable()
    return None


def problems(name: str, result: Result) -> list[str]:
    """What is wrong with a cell's result; empty when it proves what it should."""
    found = []
    if result.sent <= 0:
        found.append("nothing sent")
    if result.queued:
        found.append(f"{result.queued} readings left in the agent's queue")
    if result.sent != result.stored + result.evicted + result.dead:
        found.append(f"sent {result.sent} != stored {result.stored} + evicted {result.evicted} + dead {result.dead}")
    limit = LIMITS.get(name)
    for column in ("evicted", "dead"):
        value = getattr(result, column)
        if column == limit and value == 0:
            found.append(f"{column} is 0: the limit was not reached")
        if column != limit and value and not (column == "evicted" and name in MAY_EVICT):
            found.append(f"{column} is {value} where no limit was reached")
    if name in EVIDENCE and EVIDENCE[name] not in result.note:
        found.append(f"no evidence the fault took effect ({EVIDENCE[name]!r} not in the note)")
    return found


# Controls: the same fault with the old settle-on-PUBACK delivery, to show what the cell guards against.
# Not part of the pass/fail verdict: whether it loses depends on who reconnects first.
CONTROLS: dict[str, tuple[Fault, dict[str, Any]]] = {
    "control: broker-kill-empty, delivery=broker": (broker_kill_empty, {"delivery": "broker"}),
}


async def run_cells(names: list[str]) -> list[Result]:
    results = []
    for name in names:
        if (reason := skipped(name)) is not None:
            print(f"| {name} | skipped: {reason} |", flush=True)
            continue
        fault, options = CELLS.get(name) or LONG_CELLS.get(name) or CONTROLS[name]
        result = await run_cell(name, fault, **options)
        print(result.row(), f"<!-- {result.note} -->", flush=True)
        results.append(result)
    return results


def main(argv: list[str]) -> int:
    known = {**CELLS, **LONG_CELLS, **CONTROLS}
    names = argv or list(known)
    unknown = [n for n in names if n not in known]
    if unknown:
        print(f"unknown cells {unknown}; known: {', '.join(CELLS)}", file=sys.stderr)
        return 2
    print(HEADER, flush=True)
    results = asyncio.run(run_cells(names))
    failed = False
    for result in results:
        if result.cell in CONTROLS:
            continue
        for problem in problems(result.cell, result):
            failed = True
            print(f"{result.cell}: {problem}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
