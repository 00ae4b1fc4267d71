"""A pymodbus server with the all_types register image, in its own process.

Run: python serve_known.py PORT [tcp|rtu-over-tcp]. Prints "ready" once listening.
The tools under test call asyncio.run themselves, so the server cannot share their loop.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from known_registers import COILS, DISCRETE, INPUTS, holding_image
from modbus_peers import device_context, tcp_server


async def main(port: int, transport: str) -> None:
    context = device_context(holding=holding_image(), inputs=INPUTS, coils=COILS, discrete=DISCRETE)
    async with tcp_server({1: context, 7: context}, rtu_framing=transport != "tcp", port=port):
        print("ready", flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else "tcp"))
