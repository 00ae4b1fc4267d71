"""What every driver looks like to the scheduler."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from roadpulse.wire import Quality

Value = int | float | bool | str | None


class DeviceError(Exception):
    """The device could not be read at all (timeout, link down, exception answer).

    `reason` becomes the quality reason of every reading of that device for this poll.
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


class LinkError(DeviceError):
    """The link itself is down (USB-serial adapter unplugged, TCP connection refused or dropped).

    Every device on that link fails with it; the link is reopened with backoff.
    """

    def __init__(self, detail: str = "") -> None:
        super().__init__("link", detail)


@dataclass(frozen=True, slots=True)
class SourceReading:
    """A value as a driver produced it, named by the profile point, before it gets an alias."""

    name: str
    value: Value
    ts_ms: int
    quality: Quality = Quality.GOOD
    reason: str = ""


class Source(Protocol):
    """A driver instance for one device. `read` returns one reading per profile point."""

    async def connect(self) -> None: ...

    async def read(self) -> list[SourceReading]: ...

    async def close(self) -> None: ...
