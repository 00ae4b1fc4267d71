"""Sequence numbers per gateway and boot: duplicates at once, gaps only after a grace period.

Pure: the caller passes the time. Replayed batches arrive late by design, so a hole is
counted as a gap only when it stayed open for `grace_s`, or when the boot is closed.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field


@dataclass(slots=True)
class _Hole:
    low: int
    high: int  # inclusive
    opened_at: float


@dataclass(slots=True)
class SeqRanges:
    """Seen sequence numbers of one boot as sorted, disjoint, inclusive ranges, plus open holes."""

    starts: list[int] = field(default_factory=list)
    ends: list[int] = field(default_factory=list)
    holes: list[_Hole] = field(default_factory=list)

    def seen(self, seq: int) -> bool:
        i = bisect.bisect_right(self.starts, seq) - 1
        return i >= 0 and self.ends[i] >= seq

    def add(self, seq: int, now: float) -> bool:
        """Record `seq`; True when it was already seen (a duplicate)."""
        ends = self.ends
        if ends and seq == ends[-1] + 1:  # the usual case, in order: the last range grows
            ends[-1] = seq
            return False
        if self.seen(seq):
            return True
        highest = self.ends[-1] if self.ends else None
        if highest is not None and seq > highest + 1:
            self.holes.append(_Hole(highest + 1, seq - 1, now))
        elif highest is not None and seq < highest:
            self._fill_hole(seq)
        i = bisect.bisect_right(self.starts, seq)
        self.starts.insert(i, seq)
        self.ends.insert(i, seq)
        self._merge_around(i)
        return False

    def _fill_hole(self, seq: int) -> None:
        for index, hole in enumerate(self.holes):
            if hole.low <= seq <= hole.high:
                replacement = []
                if hole.low < seq:
                    replacement.append(_Hole(hole.low, seq - 1, hole.opened_at))
                if seq < hole.high:
                    replacement.append(_Hole(seq + 1, hole.high, hole.opened_at))
                self.holes[index : index + 1] = replacement
                return

    def _merge_around(self, i: int) -> None:
        if i + 1 < len(self.starts) and self.ends[i] + 1 >= self.starts[i + 1]:
            self.ends[i] = max(self.ends[i], self.ends[i + 1])
            del self.starts[i + 1], self.ends[i + 1]
        if i > 0 and self.ends[i - 1] + 1 >= self.starts[i]:
            self.ends[i - 1] = max(self.ends[i - 1], self.ends[i])
            del self.starts[i], self.ends[i]

    def expire(self, now: float, grace_s: float) -> int:
        """Count (and forget) missing numbers of holes open longer than the grace period."""
        missing = 0
        kept = []
        for hole in self.holes:
            if now - hole.opened_at >= grace_s:
                missing += hole.high - hole.low + 1
            else:
                kept.append(hole)
        self.holes = kept
        return missing

    def close(self) -> int:
        """The boot ended: every open hole is a gap now."""
        missing = sum(h.high - h.low + 1 for h in self.holes)
        self.holes = []
        return missing


@dataclass(slots=True)
class SeqTracker:
    """Per gateway, the current boot's ranges. A new boot or a death closes the previous one."""

    grace_s: float = 30.0
    # Behind a shared subscription a collector sees only its share of each gateway's seqs:
    # its holes are other collectors' messages, not gaps. Duplicates still count.
    count_gaps: bool = True
    boots: dict[str, tuple[str, SeqRanges]] = field(default_factory=dict)
    duplicates: int = 0
    gaps: int = 0

    def observe(self, gateway: str, boot: str, seq: int, now: float) -> bool:
        """True when the message is a duplicate. Replays of an older boot are tracked in a side slot."""
        current = self.boots.get(gateway)
        if current is None or current[0] != boot:
            key = f"{gateway}\0{boot}"
            old = self.boots.get(key)
            if old is not None:  # late replay of a boot we already closed
                dup = old[1].add(seq, now)
                self.duplicates += dup
                return dup
            if current is not None:
                closed = current[1].close()
                self.gaps += closed if self.count_gaps else 0
                self.boots[f"{gateway}\0{current[0]}"] = current
                self._trim_closed(gateway)
            current = (boot, SeqRanges())
            self.boots[gateway] = current
        dup = current[1].add(seq, now)
        self.duplicates += dup
        return dup

    def _trim_closed(self, gateway: str) -> None:
        closed = [k for k in self.boots if k.startswith(gateway + "\0")]
        for key in closed[:-4]:  # remember a few old boots for their replays, not all of history
            del self.boots[key]

    def death(self, gateway: str, boot: str) -> None:
        current = self.boots.get(gateway)
        if current is not None and current[0] == boot:
            closed = current[1].close()
            self.gaps += closed if self.count_gaps else 0

    def expire(self, now: float) -> int:
        found = sum(ranges.expire(now, self.grace_s) for _, ranges in self.boots.values())
        if not self.count_gaps:
            return 0
        self.gaps += found
        return found
