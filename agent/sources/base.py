"""What every driver looks like to generic code: its Source, its errors, and its entry in the table.

A driver is one package under agent/sources/<name>/ (its link config, counters, transport and
Source); its profile model is roadpulse.profiles.<name> (the simulator reads it too). The
package's `DRIVER` describes it to the runner, the tools and the scheduler, which never look
at a profile's type.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from roadpulse.wire import Quality

if TYPE_CHECKING:
    from agent.catalog import DeviceEntry
    from agent.config import AgentConfig

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


@runtime_checkable
class CountingSource(Protocol):
    """A source that counts what its link saw; the scheduler copies them into DeviceStats."""

    def driver_counters(self) -> dict[str, int]: ...


class Source(Protocol):
    """A driver instance for one device. `read` returns one reading per profile point."""

    async def connect(self) -> None: ...

    async def read(self) -> list[SourceReading]: ...

    async def close(self) -> None: ...


class SharedLine(Protocol):
    """A link several devices of one driver take turns on (an RS-485 bus); closed by its owner."""

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Driver:
    """One driver as generic code sees it. Importing a driver package imports no device library:
    `create` does, so a gateway without pymodbus still runs its serial ASCII devices."""

    name: str
    # The stable names of DeviceStats.driver_counters for its devices (health metrics are named after them).
    counters: tuple[str, ...]
    # Build the Source of one configured device, on the shared line its config names (or None).
    create: Callable[[DeviceEntry, SharedLine | None], Source]
    # The shared lines of an agent config this driver serves, by id (`[[buses]]` for Modbus).
    shared_lines: Callable[[AgentConfig], Mapping[str, SharedLine]]
    # The shared line a device is on (its id), or None for a device with a link of its own.
    line_of: Callable[[DeviceEntry], str | None]
