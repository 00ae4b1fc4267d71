"""An agent process for the fault matrix: `python -m tests.faults.agent_proc CONFIG WORKDIR`.

Like `roadpulse agent run`, plus what the matrix must count across a SIGKILL: every batch
of readings taken (durable in the queue) is appended to WORKDIR/taken.log first, and the
agent's counters go to WORKDIR/status.json twice a second. The devices go silent once
WORKDIR/gate-closed exists, so the queue can drain. While WORKDIR/disk-full exists no file
may grow past 256 bytes (RLIMIT_FSIZE: writes fail with EFBIG, which the queue handles as a
full disk).
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import signal
import sys
from pathlib import Path
from typing import Any

from agent.config import load_agent_config
from agent.run import Agent
from agent.sources import create_source
from tests.faults.harness import Gate


async def main(config_path: Path, work: Path) -> None:
    taken_fd = os.open(work / "taken.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    gate = work / "gate-closed"

    pending = [0]

    def on_taken(readings: list[Any]) -> None:
        # Counted before anything else happens to them; kept for later while the file cannot grow.
        pending[0] += len(readings)
        try:
            os.write(taken_fd, f"{pending[0]}\n".encode())
        except OSError:
            return
        pending[0] = 0

    agent = Agent(load_agent_config(config_path), config_path, on_taken=on_taken,
                  source_factory=lambda entry: Gate(create_source(entry), lambda: not gate.exists()))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)

    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    full = work / "disk-full"

    async def report() -> None:
        limited = False
        while True:
            await asyncio.sleep(0.5)
            if full.exists() != limited:
                # The disk is "full": no file may grow past 256 bytes (EFBIG, which the queue treats as ENOSPC).
                limited = full.exists()
                resource.setrlimit(resource.RLIMIT_FSIZE, (256, hard) if limited else (soft, hard))
                if not limited:
                    on_taken([])
            if agent.outbox is not None:
                agent.outbox.refresh()
            s = agent.stats
            tmp = work / "status.json.tmp"
            tmp.write_text(json.dumps({"queued": s.queue_readings, "evicted": s.readings_evicted,
                                       "resent": s.messages_resent, "storage_errors": s.storage_errors,
                                       "pid": os.getpid()}))
            tmp.replace(work / "status.json")

    async with asyncio.TaskGroup() as tg:
        reporter = tg.create_task(report(), name="faults.agent.report")
        await agent.run(stop)
        reporter.cancel()


if __name__ == "__main__":
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    asyncio.run(main(Path(sys.argv[1]), Path(sys.argv[2])))
