"""Blocking raw clients for tests, run with asyncio.to_thread: bytes exactly as a master sees them."""

from __future__ import annotations

import os
import select
import socket
import struct
import termios
import time
import tty


def tcp_exchange(address: str, request_pdu: bytes, unit: int = 1, wait: float = 0.4) -> bytes | None:
    """Send one MBAP request; return every byte received within `wait`, b"" if the peer closed at once,
    None when the connection was refused or reset before anything arrived."""
    host, port = address.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=2) as sock:
            sock.sendall(struct.pack(">HHHB", 0x1234, 0, len(request_pdu) + 1, unit) + request_pdu)
            sock.settimeout(wait)
            data = b""
            while True:
                try:
                    chunk = sock.recv(1024)
                except TimeoutError:
                    return data
                if not chunk:
                    return data
                data += chunk
                # A whole, well-formed response: no need to wait for more.
                if len(data) >= 6 and data[:2] == b"\x12\x34" and len(data) >= 6 + int.from_bytes(data[4:6]):
                    return data
    except (ConnectionResetError, ConnectionRefusedError, BrokenPipeError):
        return None


class PtyClient:
    """The agent's end of a simulated serial line."""

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
        tty.setraw(self.fd)
        termios.tcflush(self.fd, termios.TCIOFLUSH)

    def send(self, data: bytes) -> None:
        os.write(self.fd, data)

    def receive(self, wait: float = 0.4, until: bytes | None = None, limit: float = 2.0) -> bytes:
        """Bytes until `wait` of silence, `until` is seen, or `limit` seconds in all (talkers never stop)."""
        data = b""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.fd], [], [], wait)
            if not ready:
                return data
            data += os.read(self.fd, 4096)
            if until is not None and until in data:
                return data
        return data

    def close(self) -> None:
        os.close(self.fd)
