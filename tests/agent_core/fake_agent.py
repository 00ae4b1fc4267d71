"""Subprocess entry for crash tests: the real Agent with fake sources.

    python -m tests.agent_core.fake_agent CONFIG TAKEN_FILE

Every batch passed to `on_taken` is appended to TAKEN_FILE (one JSON key per line) with
one write(2), so what the agent declared taken survives a SIGKILL of this process.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from agent.config import load_agent_config
from agent.run import Agent
from roadpulse.wire import Reading
from tests.agent_core.helpers import fake_factory, reading_key


def main(config_path: Path, taken_path: Path) -> None:
    config = load_agent_config(config_path)
    fd = os.open(taken_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    gateway = config.agent.gateway_id

    def on_taken(readings: list[Reading]) -> None:
        lines = "".join(reading_key(gateway, r.alias, r.ts_ms, r.value) + "\n" for r in readings)
        os.write(fd, lines.encode())

    agent = Agent(config, config_path, on_taken=on_taken, source_factory=fake_factory)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        await agent.run(stop)

    asyncio.run(run())
    s = agent.stats
    print(f"taken={s.readings_taken} acked={s.readings_acked} evicted={s.readings_evicted} "
          f"dropped={s.readings_dropped} storage_errors={s.storage_errors}", flush=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
