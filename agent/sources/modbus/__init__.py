"""The Modbus driver: TCP, RTU over TCP, RTU on a serial port or a shared RS-485 bus.

- `config.py`: the `[[buses]]` model;
- `link.py`: the only module that imports pymodbus (one attempt per call, errors translated);
- `bus.py`: a shared half-duplex line, one attempt per turn;
- `source.py`: the Source, reading a profile's registers in planned blocks, with the retry loop.

The profile model is roadpulse.profiles.modbus (the simulator serves it too).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from agent.sources.base import Driver, SharedLine, Source

if TYPE_CHECKING:
    from agent.catalog import DeviceEntry
    from agent.config import AgentConfig

COUNTERS: tuple[str, ...] = (
    "modbus_requests",      # attempts sent, retries included
    "modbus_retries",       # attempts that repeated a failed one
    "modbus_timeouts",      # attempts without any answer
    "modbus_garbled",       # answers that were no valid frame (bad CRC, garbage, wrong length)
    "modbus_exceptions",    # exception answers (0x01-0x0B)
    "modbus_link_errors",   # attempts that found the port or connection down
)


def _create(entry: DeviceEntry, line: SharedLine | None) -> Source:
    from agent.sources.modbus.source import modbus_source_for

    return modbus_source_for(entry.device, entry.profile, line)


def _shared_lines(config: AgentConfig) -> Mapping[str, SharedLine]:
    from agent.sources.modbus.bus import build_buses

    return build_buses(config.buses)


def _line_of(entry: DeviceEntry) -> str | None:
    return entry.device.bus


DRIVER = Driver("modbus", COUNTERS, _create, _shared_lines, _line_of)
