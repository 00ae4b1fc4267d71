"""The Modbus driver's own config: a shared line (`[[buses]]`) several slaves take turns on."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from agent.sources.links import SerialLink, TcpLink
from roadpulse.configfile import Strict

Id = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.\-]{1,64}$")]
Seconds = Annotated[float, Field(gt=0)]


class Bus(Strict):
    """A line shared by several Modbus slaves: one request at a time.

    Usually an RS-485 port (`serial`); `tcp` is for a serial device server or a
    Modbus gateway in front of such a line, which often accepts one connection only.
    """

    id: Id
    serial: SerialLink | None = None
    tcp: TcpLink | None = None
    pause_ms: Annotated[int, Field(ge=0, le=10_000)] = 10
    timeout_s: Seconds = 0.5
    retries: Annotated[int, Field(ge=0, le=5)] = 1

    @model_validator(mode="after")
    def _one_link(self) -> Bus:
        if (self.serial is None) == (self.tcp is None):
            raise ValueError("give exactly one of 'serial' or 'tcp'")
        return self
