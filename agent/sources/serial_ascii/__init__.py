"""The serial ASCII driver: devices that talk text on a port of their own (Vaisala ASCII, NMEA 0183, lines).

- `source.py`: the Source (reader callback on the port, polls, latest value per field);
- the pure framing and parsing is agent/codec/frames.py.

The profile model is roadpulse.profiles.serial_ascii (the simulator serves it too).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from agent.sources.base import Driver, SharedLine, Source

if TYPE_CHECKING:
    from agent.catalog import DeviceEntry
    from agent.config import AgentConfig

COUNTERS: tuple[str, ...] = (
    "frames_received",      # frames cut from the byte stream
    "frames_parsed",        # frames whose fields all parsed
    "frames_partial",       # frames with some fields that did not parse (those are reported bad)
    "frames_unmatched",     # frames without any field of the profile
    "frames_garbage",       # not ASCII, control characters, no '$' (NMEA)
    "frames_overlong",      # longer than max_length, dropped
    "frames_checksum",      # NMEA checksum missing or wrong
    "frames_parse",         # frames whose layout did not parse (no key=value items, pattern mismatch)
)


def _create(entry: DeviceEntry, line: SharedLine | None) -> Source:
    from agent.sources.serial_ascii.source import serial_source_for

    return serial_source_for(entry.device, entry.profile, line)


def _no_shared_lines(config: AgentConfig) -> Mapping[str, SharedLine]:
    del config
    return {}


def _line_of(entry: DeviceEntry) -> str | None:
    # An ASCII device has a port of its own: one named on a bus has no `serial` and is refused.
    del entry
    return None


DRIVER = Driver("serial_ascii", COUNTERS, _create, _no_shared_lines, _line_of)
