"""The typed outcomes of a write, one class per action the sink takes (after Telegraf's):

- WriteRejected (400/422): the data is wrong; dead-letter it, never retry;
- WriteThrottled (429/503): wait `retry_after` seconds, then retry;
- WriteTooLarge (413): split the batch (an output handles it inside `write`);
- WriteRetryable (other 5xx, auth, timeouts, connection errors): retry with backoff.
"""

from __future__ import annotations

import time

RETRY_AFTER_CAP_S = 60.0


class WriteError(Exception):
    """A batch InfluxDB did not store."""


class WriteRejected(WriteError):  # noqa: N818 - names fixed by the issue and STYLE.md
    """400/422 (or a partial write): the data itself is wrong. Dead-letter it; never retry.

    `error` is InfluxDB's whole error message: for a partial write it names the refused
    lines (collector/output/influxdb/partial.py), and the others were stored.
    """

    def __init__(self, message: str, error: str = "") -> None:
        super().__init__(message)
        self.error = error


class WriteThrottled(WriteError):  # noqa: N818 - names fixed by the issue and STYLE.md
    """429/503: InfluxDB asks us to wait `retry_after` seconds (capped)."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class WriteTooLarge(WriteError):  # noqa: N818 - names fixed by the issue and STYLE.md
    """413: split the batch and write the halves."""


class WriteRetryable(WriteError):  # noqa: N818 - names fixed by the issue and STYLE.md
    """Other 5xx, auth trouble, timeouts and connection errors: retry with jittered backoff."""


def parse_retry_after(value: str | None, default: float = 1.0, now: float | None = None) -> float:
    """Seconds or an HTTP date; capped so a confused server cannot park us for hours."""
    if not value:
        return default
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            when = parsedate_to_datetime(value).timestamp()
        except (TypeError, ValueError):
            return default
        seconds = when - (time.time() if now is None else now)
    return max(0.0, min(seconds, RETRY_AFTER_CAP_S))
