"""Fault schedule and frame mutations. No I/O.

Faults are windows of simulated time on one device, either written in the
scenario or drawn from a seed. Protocol faults (timeout, crc, garbage, partial,
exception, link_flap) change bytes on the wire; value faults (stuck, spike,
clock_drift, reboot) change what the device measures or counts.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

from firmware_sim import noise
from firmware_sim.modbus import DEVICE_BUSY, DEVICE_FAILURE, exception_pdu, with_crc
from firmware_sim.scenario import FaultKind, Scenario

# Defaults for a fault's magnitude when the scenario gives none.
DEFAULT_MAGNITUDE: dict[str, float] = {
    "spike": 8.0,  # times the true value
    "clock_drift": 20_000.0,  # ppm: fast enough to see within a short test
    "link_flap": 4.0,  # seconds of simulated time per down/up half period
    "reboot": 0.0,
}
REBOOT_SILENCE_S = 5.0  # simulated seconds a rebooting device does not answer


@dataclass(frozen=True, slots=True)
class FaultWindow:
    device: str
    kind: FaultKind
    start_s: float
    end_s: float
    probability: float = 1.0
    magnitude: float | None = None

    def covers(self, t: float) -> bool:
        return self.start_s <= t < self.end_s

    @property
    def size(self) -> float:
        return self.magnitude if self.magnitude is not None else DEFAULT_MAGNITUDE.get(self.kind, 1.0)


class FaultPlan:
    """All fault windows of a run, looked up by device and kind."""

    def __init__(self, windows: list[FaultWindow], seed: int = 0) -> None:
        self.seed = seed
        self.windows = sorted(windows, key=lambda w: (w.device, w.start_s))
        self._by_device: dict[str, list[FaultWindow]] = {}
        for w in self.windows:
            self._by_device.setdefault(w.device, []).append(w)

    @classmethod
    def from_scenario(cls, scenario: Scenario) -> FaultPlan:
        windows = [
            FaultWindow(f.device, f.kind, f.start_s, f.start_s + f.duration_s, f.probability, f.magnitude)
            for f in scenario.faults
        ]
        rnd = scenario.random_faults
        if rnd is not None and rnd.per_device_per_hour > 0 and rnd.kinds:
            for device in scenario.all_devices():
                gen = noise.rng(scenario.seed, rnd.seed, "faults", device.id)
                t = 0.0
                while True:
                    t += gen.expovariate(rnd.per_device_per_hour / 3600)
                    if t >= rnd.horizon_s:
                        break
                    kind = gen.choice(rnd.kinds)
                    duration = max(1.0, gen.expovariate(1 / rnd.mean_duration_s))
                    windows.append(FaultWindow(device.id, kind, t, t + duration, 0.7 if kind in _PROTOCOL else 1.0))
        return cls(windows, scenario.seed)

    def for_device(self, device: str) -> list[FaultWindow]:
        return self._by_device.get(device, [])

    def active(self, device: str, kind: str, t: float) -> FaultWindow | None:
        for w in self.for_device(device):
            if w.kind == kind and w.covers(t):
                return w
        return None

    def hits(self, device: str, kind: str, t: float, counter: int) -> FaultWindow | None:
        """The active window of a kind if it strikes this request/frame (its probability, seeded)."""
        w = self.active(device, kind, t)
        if w is None:
            return None
        if w.probability >= 1.0 or noise.unit(self.seed, device, kind, counter) < w.probability:
            return w
        return None

    def link_down(self, device: str, t: float) -> bool:
        """During a link flap the link is down for one half period, up for the next."""
        w = self.active(device, "link_flap", t)
        if w is None:
            return False
        return int((t - w.start_s) // w.size) % 2 == 0

    def rebooting(self, device: str, t: float) -> bool:
        return any(
            w.kind == "reboot" and w.start_s <= t < w.start_s + REBOOT_SILENCE_S for w in self.for_device(device)
        )

    def last_boot(self, device: str, t: float) -> float:
        """Simulated time the device last came up: counters restart there."""
        ups = sorted(w.start_s + REBOOT_SILENCE_S for w in self.for_device(device) if w.kind == "reboot")
        i = bisect.bisect_right(ups, t)
        return ups[i - 1] if i else 0.0


_PROTOCOL = frozenset({"timeout", "crc", "garbage", "partial", "exception", "link_flap"})
PROTOCOL_FAULTS: tuple[FaultKind, ...] = ("timeout", "exception", "garbage", "partial", "crc")


def garbage_bytes(*key: object) -> bytes:
    """Line noise: 3-12 bytes that are never a frame start or line end."""
    gen = noise.rng(*key, "garbage")
    return bytes(gen.choice([b for b in range(256) if b not in (0x0A, 0x0D, 0x24)]) for _ in range(gen.randint(3, 12)))


def mutate_rtu(frame: bytes, kind: str, *key: object) -> bytes | None:
    """Apply one protocol fault to a finished RTU response; None means stay silent."""
    if kind == "timeout":
        return None
    if kind == "crc":
        return frame[:-2] + bytes([frame[-2] ^ 0x5A, frame[-1]])
    if kind == "garbage":
        return garbage_bytes(*key) + frame
    if kind == "partial":
        return frame[: max(1, len(frame) // 2)]
    if kind == "exception":
        code = DEVICE_BUSY if noise.unit(*key, "busy") < 0.3 else DEVICE_FAILURE
        return with_crc(bytes([frame[0]]) + exception_pdu(frame[1] & 0x7F, code))
    return frame


def mutate_pdu_tcp(pdu: bytes, kind: str, *key: object) -> bytes | None:
    """Modbus TCP has no CRC: a corrupt frame shows as a wrong byte count or junk in the stream."""
    if kind == "timeout":
        return None
    if kind == "exception":
        code = DEVICE_BUSY if noise.unit(*key, "busy") < 0.3 else DEVICE_FAILURE
        return exception_pdu(pdu[0] & 0x7F, code)
    if kind == "crc" and len(pdu) > 2:
        return pdu[:1] + bytes([pdu[1] ^ 0x5A]) + pdu[2:]
    return pdu


def mutate_line(line: str, kind: str, *key: object) -> bytes | None:
    """Apply one protocol fault to an ASCII line (NMEA or Vaisala)."""
    data = line.encode("ascii")
    if kind == "timeout":
        return None
    if kind == "crc":
        if line.startswith("$") and "*" in line:
            body, _, check = line.strip().rpartition("*")
            wrong = f"{(int(check, 16) ^ 0x21):02X}"
            return f"{body}*{wrong}\r\n".encode("ascii")
        # Vaisala without CRC: characters lost on the line, e.g. `0R1,Dn=0m=032D`.
        gen = noise.rng(*key, "drop")
        cut = gen.randint(4, max(5, len(line) - 8))
        return data[:cut] + data[cut + gen.randint(2, 5) :]
    if kind == "garbage":
        return garbage_bytes(*key) + data
    if kind == "partial":
        return data[: max(1, len(data) // 2)]
    if kind == "exception":
        address = line[:1] if line[:1].isdigit() else "0"
        return f"{address}TX,Measurement error\r\n".encode("ascii")
    return data
