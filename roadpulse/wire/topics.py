"""MQTT topic layout per gateway."""

from __future__ import annotations

import re
from dataclasses import dataclass

GATEWAY_ID_PATTERN = r"^[A-Za-z0-9_.\-]{1,64}$"
_GATEWAY_RE = re.compile(GATEWAY_ID_PATTERN)
KINDS = ("data", "birth", "death", "health", "cmd")
DEFAULT_PREFIX = "rp/v1"


def valid_gateway_id(gateway: str) -> bool:
    """The id is both a topic level and a tag value: wildcards or slashes would break either.
    (`fullmatch`: `match` with `$` would accept a trailing newline.)"""
    return _GATEWAY_RE.fullmatch(gateway) is not None


def validate_gateway_id(gateway: str) -> str:
    if not valid_gateway_id(gateway):
        raise ValueError(f"gateway id {gateway!r} must match {GATEWAY_ID_PATTERN}")
    return gateway


@dataclass(frozen=True, slots=True)
class Topics:
    """The topics one gateway publishes and listens on."""

    gateway: str
    prefix: str = DEFAULT_PREFIX

    def __post_init__(self) -> None:
        validate_gateway_id(self.gateway)

    @property
    def data(self) -> str:
        return f"{self.prefix}/{self.gateway}/data"

    @property
    def birth(self) -> str:
        return f"{self.prefix}/{self.gateway}/birth"

    @property
    def death(self) -> str:
        return f"{self.prefix}/{self.gateway}/death"

    @property
    def health(self) -> str:
        return f"{self.prefix}/{self.gateway}/health"

    @property
    def cmd(self) -> str:
        return f"{self.prefix}/{self.gateway}/cmd"

    @property
    def ack(self) -> str:
        """End-to-end confirmations, collector -> agent (roadpulse.wire.confirm)."""
        return f"{self.prefix}/{self.gateway}/ack"


def subscriptions(prefix: str = DEFAULT_PREFIX, share_group: str | None = None) -> list[str]:
    """Topic filters a collector subscribes to; a share group spreads data across collectors."""
    filters = [f"{prefix}/+/{kind}" for kind in ("data", "birth", "death", "health")]
    if share_group:
        # Births are retained and must reach every collector, so only data and health are shared.
        return [
            f"$share/{share_group}/{f}" if f.endswith(("/data", "/health")) else f for f in filters
        ]
    return filters


def parse_topic(topic: str, prefix: str = DEFAULT_PREFIX) -> tuple[str, str] | None:
    """Return (gateway, kind) for one of our topics, or None for anything else."""
    head = prefix + "/"
    if not topic.startswith(head):
        return None
    rest = topic[len(head) :].split("/")
    if len(rest) != 2 or rest[1] not in KINDS or not valid_gateway_id(rest[0]):
        return None
    return rest[0], rest[1]
