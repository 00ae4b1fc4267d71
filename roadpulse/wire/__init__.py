"""The roadpulse wire protocol v1 (see docs/protocol.md). Pure: no I/O, no asyncio."""

from roadpulse.wire.envelope import (
    Birth,
    Command,
    DataBatch,
    Death,
    MetricDef,
    Quality,
    Reading,
    TimeFlag,
    WireError,
    decode,
    encode_birth,
    encode_command,
    encode_data,
    encode_death,
)
from roadpulse.wire.topics import GATEWAY_ID_PATTERN, Topics, parse_topic, validate_gateway_id

__all__ = [
    "GATEWAY_ID_PATTERN",
    "Birth",
    "Command",
    "DataBatch",
    "Death",
    "MetricDef",
    "Quality",
    "Reading",
    "TimeFlag",
    "Topics",
    "WireError",
    "decode",
    "encode_birth",
    "encode_command",
    "encode_data",
    "encode_death",
    "parse_topic",
    "validate_gateway_id",
]
