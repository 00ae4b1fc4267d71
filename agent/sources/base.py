"""What every driver looks like to the scheduler."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from roadpulse.wire import Quality

Value = int | float | bool | str | None

# Each driver's counters, by stable names (health metrics are named after them). Counted since start.
MODBUS_COUNTERS: tuple[str, ...] = (
    "modbus_requests",      # attempts sent, retries included
    "modbus_retries",       # attempts that repeated a failed one
    "modbus_timeouts",      # attempts without any answer
    "modbus_garbled",       # answers that were no valid frame (bad CRC, garbage, wrong length)
    "modbus_exceptions",    # exception answers (0x01-0x0B)
    "modbus_link_errors",   # attempts that found the port or connection down
)
SERIAL_ASCII_COUNTERS: tuple[str, ...] = (
    "frames_received",      # frames cut from the byte stream
    "frames_parsed",        # frames whose fields all parsed
    "frames_partial",       # frames with some fields that did not parse (those are reported bad)
    "frames_unmatched",     # frames without any field of the profile
    "frames_garbage",       # not ASCII, control characters, no '$' (NMEA)
    "frames_overlong",      # longer than max_length, dropped
    "frames_checksum",      # NMEA checksum missing or wrong
    "frames_parse",         # frames whose layout did not parse (no key=value items, pattern mismatch)
)


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


@runtime_checkable
class CountingSource(Protocol):
    """A source that counts what its link saw; the scheduler copies them into DeviceStats."""

    def driver_counters(self) -> dict[str, int]: ...


class Source(Protocol):
    """A driver instance for one device. `read` returns one reading per profile point."""

    async def connect(self) -> None: ...

    async def read(self) -> list[SourceReading]: ...

    async def close(self) -> None: ...
