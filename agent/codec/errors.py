"""The one error of the frame codecs."""

from __future__ import annotations


class FrameError(ValueError):
    """A frame that cannot be used. `reason` is the counter name and quality reason."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
