"""The fault matrix (issue #10): simulator -> agent -> mosquitto -> collector(s) -> influxd, one fault per cell.

    python -m tests.faults.matrix [CELL ...]      # every cell, or the named ones; prints the table

Each cell starts its own private services (roadpulse.services) on loopback ports in a temp
folder, runs the demo scenario's devices (firmware_sim) through an in-process agent in
end-to-end mode (short confirmation timeout) and one or three collector *processes*, injects
one fault, recovers, then closes the devices' gate (sources go silent) and waits until the
agent's queue is empty. It then counts:

- sent: readings the agent took (its `on_taken`, exact);
- stored: readings in InfluxDB (one counted field per reading; a resend overwrites its points);
- evicted: the agent's `readings_evicted` (0 unless `queue.max_bytes` was reached);
- dead: readings of the data messages the collectors dead-lettered (distinct by gw/boot/seq);
- dup: duplicates the collectors counted (their per-gateway self-metrics), resent: the agent's resends.

A cell passes when sent = stored + evicted + dead (and the queue is empty).
"""

from __future__ import annotations

import asyncio
import random
import signal
import sys
import time
from typing import Any

from tests.faults.harness import HEADER, Fault, Result, Stack, run_cell

__all__ = ["CELLS", "CONTROLS", "HEADER", "run_cell"]


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
}


# Controls: the same fault with the old settle-on-PUBACK delivery, to show what the cell guards against.
# Not part of the pass/fail verdict: whether it loses depends on who reconnects first.
CONTROLS: dict[str, tuple[Fault, dict[str, Any]]] = {
    "control: broker-kill-empty, delivery=broker": (broker_kill_empty, {"delivery": "broker"}),
}


async def run_cells(names: list[str]) -> list[Result]:
    results = []
    for name in names:
        fault, options = CELLS.get(name) or CONTROLS[name]
        result = await run_cell(name, fault, **options)
        print(result.row(), f"<!-- {result.note} -->", flush=True)
        results.append(result)
    return results


def main(argv: list[str]) -> int:
    names = argv or list(CELLS) + list(CONTROLS)
    unknown = [n for n in names if n not in CELLS and n not in CONTROLS]
    if unknown:
        print(f"unknown cells {unknown}; known: {', '.join(CELLS)}", file=sys.stderr)
        return 2
    print(HEADER, flush=True)
    results = asyncio.run(run_cells(names))
    return 0 if all(r.ok for r, n in zip(results, names, strict=True) if n in CELLS) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
