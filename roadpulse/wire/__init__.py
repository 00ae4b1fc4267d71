"""The roadpulse wire protocol v1 (see docs/protocol.md). Pure: no I/O, no asyncio."""

from roadpulse.wire.encode import encode_birth, encode_command, encode_data, encode_death
from roadpulse.wire.topics import GATEWAY_ID_PATTERN, Topics, parse_topic, validate_gateway_id
from roadpulse.wire.types import (
    Birth,
    Command,
    DataBatch,
    Death,
    MetricDef,
    Quality,
    Reading,
    TimeFlag,
    WireError,
    engineering_values,
    scale_value,
    unscale_value,
)
from roadpulse.wire.validate import decode

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
    "engineering_values",
    "parse_topic",
    "scale_value",
    "unscale_value",
    "validate_gateway_id",
]
