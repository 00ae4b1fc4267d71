"""The slow link carries every byte, in order, both ways, whatever its rate and delay."""

from __future__ import annotations

import asyncio
import os

from .slowlink import SlowLink, Throttle


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(1000):
        writer.write(data)
        await writer.drain()
    writer.close()


def test_the_slow_link_delivers_every_byte_in_order_both_ways() -> None:
    message = os.urandom(5000)

    async def through() -> tuple[bytes, SlowLink]:
        server = await asyncio.start_server(echo, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server, SlowLink(port, up=Throttle(bytes_per_s=50_000, delay_s=0.05),
                                    down=Throttle(delay_s=0.05)) as link:
            reader, writer = await asyncio.open_connection("127.0.0.1", link.port)
            # In pieces smaller than the link's slices and larger, as an MQTT client writes.
            for start, size in ((0, 7), (7, 993), (1000, 4000)):
                writer.write(message[start:start + size])
            await writer.drain()
            back = await reader.readexactly(len(message))
            writer.close()
        return back, link

    back, link = asyncio.run(through())
    assert back == message
    assert link.bytes_up == link.bytes_down == len(message)
    assert link.connections == 1
