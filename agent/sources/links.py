"""Link settings shared by drivers: a TCP endpoint and a serial port (Modbus RTU and ASCII both use one)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from roadpulse.configfile import Strict


class TcpLink(Strict):
    transport: Literal["tcp", "rtu-over-tcp"] = "tcp"
    host: str
    port: Annotated[int, Field(ge=1, le=65535)] = 502


class SerialLink(Strict):
    port: str
    baudrate: Annotated[int, Field(ge=300, le=4_000_000)] = 9600
    bytesize: Literal[7, 8] = 8
    parity: Literal["N", "E", "O"] = "N"
    stopbits: Literal[1, 2] = 1
