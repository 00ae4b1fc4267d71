"""Modbus as bytes: CRC-16, RTU frame splitting, MBAP headers and the slave side of a PDU. No I/O.

Our own framing rather than pymodbus's server: a simulator must be able to
send a wrong CRC, half a frame or junk on purpose, and must serve several unit
ids on one pty, which is simplest when every byte passes through plain functions.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from firmware_sim.registers import RegisterKey

ILLEGAL_FUNCTION, ILLEGAL_ADDRESS, ILLEGAL_VALUE, DEVICE_FAILURE, DEVICE_BUSY = 1, 2, 3, 4, 6
GATEWAY_NO_RESPONSE = 0x0B
_KIND_OF_FUNCTION = {1: "coil", 2: "discrete", 3: "holding", 4: "input"}
MAX_REGISTERS, MAX_BITS = 125, 2000


def crc16(data: bytes) -> int:
    """Modbus CRC-16 (poly 0xA001 reflected, init 0xFFFF); sent low byte first."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def with_crc(frame: bytes) -> bytes:
    return frame + crc16(frame).to_bytes(2, "little")


def crc_ok(frame: bytes) -> bool:
    return len(frame) >= 4 and crc16(frame[:-2]) == int.from_bytes(frame[-2:], "little")


@dataclass(frozen=True, slots=True)
class Request:
    unit: int
    pdu: bytes


def rtu_request_length(buffer: bytes) -> int | None:
    """Bytes the request at the head of the buffer needs, or None until enough has arrived to tell."""
    if len(buffer) < 2:
        return None
    function = buffer[1]
    if function in (1, 2, 3, 4, 5, 6):
        return 8
    if function in (15, 16):
        return 9 + buffer[6] if len(buffer) >= 7 else None
    # Unknown function: unit, function, CRC. A real slave would wait for the silent interval.
    return 4


def split_rtu(buffer: bytes) -> tuple[list[Request], bytes, int]:
    """Complete requests, the unconsumed tail, and how many bytes were dropped as noise.

    A frame with a bad CRC is dropped one byte at a time, which resynchronises
    on the next frame the way a slave does after a silent interval.
    """
    requests: list[Request] = []
    dropped = 0
    while True:
        need = rtu_request_length(buffer)
        if need is None or len(buffer) < need:
            return requests, buffer, dropped
        frame = buffer[:need]
        if crc_ok(frame):
            requests.append(Request(frame[0], frame[1:-2]))
            buffer = buffer[need:]
        else:
            buffer = buffer[1:]
            dropped += 1


def exception_pdu(function: int, code: int) -> bytes:
    return bytes([function | 0x80, code])


def answer(pdu: bytes, words: dict[RegisterKey, int], ends: dict[str, int]) -> tuple[bytes, str, int, int]:
    """The response PDU to a request, and the (kind, start, count) it read, for the truth file.

    `ends` is one past the last mapped address per kind; unmapped addresses below
    it read as 0, so a master can read across gaps as most devices allow.
    """
    if not pdu:
        return exception_pdu(0, ILLEGAL_FUNCTION), "", 0, 0
    function = pdu[0]
    if function not in _KIND_OF_FUNCTION:
        # Read-only simulator: writes and diagnostics are refused as a read-only device does.
        return exception_pdu(function, ILLEGAL_FUNCTION), "", 0, 0
    if len(pdu) != 5:
        return exception_pdu(function, ILLEGAL_VALUE), "", 0, 0
    start, count = struct.unpack(">HH", pdu[1:5])
    kind = _KIND_OF_FUNCTION[function]
    limit = MAX_BITS if function in (1, 2) else MAX_REGISTERS
    if not 1 <= count <= limit:
        return exception_pdu(function, ILLEGAL_VALUE), kind, start, count
    if start + count > ends.get(kind, 0):
        return exception_pdu(function, ILLEGAL_ADDRESS), kind, start, count
    if function in (1, 2):
        bits = [words.get((kind, start + i), 0) & 1 for i in range(count)]
        data = bytearray((count + 7) // 8)
        for i, bit in enumerate(bits):
            data[i // 8] |= bit << (i % 8)
        return bytes([function, len(data)]) + bytes(data), kind, start, count
    body = b"".join(words.get((kind, start + i), 0).to_bytes(2, "big") for i in range(count))
    return bytes([function, len(body)]) + body, kind, start, count


def rtu_response(unit: int, pdu: bytes) -> bytes:
    return with_crc(bytes([unit]) + pdu)


@dataclass(frozen=True, slots=True)
class Mbap:
    transaction: int
    protocol: int
    length: int
    unit: int

    @classmethod
    def parse(cls, header: bytes) -> Mbap:
        return cls(*struct.unpack(">HHHB", header))


def tcp_response(header: Mbap, pdu: bytes) -> bytes:
    return struct.pack(">HHHB", header.transaction, 0, len(pdu) + 1, header.unit) + pdu


def read_request(unit: int, function: int, start: int, count: int) -> bytes:
    """An RTU read request (tests and the load generator use it)."""
    return with_crc(struct.pack(">BBHH", unit, function, start, count))
