"""A link that is slow but up: a loopback TCP proxy that forwards at a fixed byte rate after a delay.

A cut link (tests/faults/proxy.py) shows nothing of a growing queue, because the agent sends
no health report while it is disconnected. A thin 4G link keeps the session up and the health
reports flowing while data leave slower than they are taken, which is the condition the
"agent queue backlog growing" rule is for. The MQTT session survives as long as each PUBACK
comes back within the publisher's timeout: the agent keeps only a few messages in flight, so
what waits in this proxy is bounded by those, and the rest waits in the agent's queue.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Throttle:
    """One direction of the link: `bytes_per_s` (None: as fast as loopback) after `delay_s`."""

    bytes_per_s: float | None = None
    delay_s: float = 0.0


class SlowLink:
    """Client -> `target_port` on 127.0.0.1, each direction through its own `Throttle`."""

    def __init__(self, target_port: int, *, up: Throttle, down: Throttle = Throttle()) -> None:
        self._target = target_port
        self._up, self._down = up, down
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._pipes: set[asyncio.Task[None]] = set()
        self.port = 0
        self.connections = 0
        # Bytes delivered per direction, so a test can show the link carried its traffic.
        self.bytes_up = 0
        self.bytes_down = 0

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    async def __aenter__(self) -> SlowLink:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        for task in list(self._pipes):
            task.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self._target)
        except OSError:
            writer.close()
            return
        self.connections += 1
        self._writers |= {writer, up_writer}
        pipes = [asyncio.create_task(self._pipe(reader, up_writer, self._up, up=True), name="slowlink.up"),
                 asyncio.create_task(self._pipe(up_reader, writer, self._down, up=False), name="slowlink.down")]
        self._pipes.update(pipes)
        try:
            await asyncio.gather(*pipes, return_exceptions=True)
        finally:
            self._pipes.difference_update(pipes)
            self._writers -= {writer, up_writer}

    async def _pipe(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter, throttle: Throttle, *,
                    up: bool) -> None:
        """Read as it comes, stamp each chunk with its arrival; send it `delay_s` later at the rate."""
        loop = asyncio.get_running_loop()
        line: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        # A rate in slices of 1/20 s, so a slow link trickles instead of bursting once a second.
        slice_bytes = max(1, int(throttle.bytes_per_s / 20)) if throttle.bytes_per_s else 65536

        async def receive() -> None:
            with contextlib.suppress(OSError, asyncio.IncompleteReadError):
                while data := await src.read(65536):
                    line.put_nowait((loop.time() + throttle.delay_s, data))
            line.put_nowait((loop.time() + throttle.delay_s, b""))

        receiving = asyncio.create_task(receive(), name="slowlink.receive")
        try:
            with contextlib.suppress(OSError):
                while True:
                    due, data = await line.get()
                    await asyncio.sleep(max(0.0, due - loop.time()))
                    if not data:
                        break
                    for start in range(0, len(data), slice_bytes):
                        piece = data[start:start + slice_bytes]
                        # Counted before the write: the peer may have read it before drain() returns.
                        if up:
                            self.bytes_up += len(piece)
                        else:
                            self.bytes_down += len(piece)
                        dst.write(piece)
                        await dst.drain()
                        if throttle.bytes_per_s:
                            await asyncio.sleep(len(piece) / throttle.bytes_per_s)
        finally:
            receiving.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await receiving
            dst.close()
