"""From MQTT messages to sealed batches of line protocol, on the event loop, without awaiting.

Every message gets an ack ticket; the ticket travels with the batch holding its lines (or
with the batch sealed after its dead letter or birth was recorded) and is settled when that
batch is durable. Data for an unknown boot or alias is parked, holding its ticket, while a
rebirth is requested; it is decoded when the birth comes or dead-lettered as `no-birth`.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

import paho.mqtt.client as paho

from collector.acks import AckLedger, Ticket
from collector.births import BirthStore
from collector.confirm import Confirmer
from collector.deadletter import DeadLetters
from collector.decode import Decoded, Decoder, Kind
from collector.metrics import Stats
from collector.seqtrack import SeqTracker
from roadpulse.wire import WireError, parse_topic

log = logging.getLogger(__name__)

REBIRTH_INTERVAL_S = 5.0
MAX_PARKED = 10_000
MAX_TOPICS = 100_000
MAX_REBIRTH_KEYS = 100_000
# Bad births remembered, so a retained one is dead-lettered once, not again on every reconnect.
MAX_BAD_BIRTHS = 4096
ERROR_LOG_INTERVAL_S = 60.0


@dataclass(slots=True)
class Batch:
    chunks: list[str] = field(default_factory=list)  # a message's lines each, joined once per batch
    lines: int = 0
    readings: int = 0
    tickets: list[Ticket] = field(default_factory=list)
    opened_at: float = 0.0


@dataclass(slots=True)
class _Parked:
    gateway: str
    boot: str
    topic: str
    kind: str
    payload: bytes
    ticket: Ticket
    deadline: float


@dataclass(slots=True)
class IngestLimits:
    batch_max_lines: int
    batch_max_age_s: float
    batch_max_messages: int  # half the receive window, so the broker never waits on our acks
    park_timeout_s: float
    decode_max_s: float = 0.05  # a message decoded slower than this is counted (slow_messages)


class Ingest:
    def __init__(self, prefix: str, limits: IngestLimits, *, decoder: Decoder, births: BirthStore,
                 dead: DeadLetters, seqs: SeqTracker, ledger: AckLedger, stats: Stats,
                 request_rebirth: Callable[[str, str, str], None], seal: Callable[[Batch], None]) -> None:
        self._prefix = prefix
        self._limits = limits
        self._decoder = decoder
        self._births = births
        self._dead = dead
        self._seqs = seqs
        self._ledger = ledger
        self._stats = stats
        self._request_rebirth = request_rebirth
        self._seal_cb = seal
        self._batch = Batch()
        self._parked: list[_Parked] = []
        self._last_rebirth: dict[tuple[str, str], float] = {}
        self._topics: dict[bytes, tuple[str, tuple[str, str] | None]] = {}
        self._bad_births: OrderedDict[bytes, None] = OrderedDict()
        self._error_logged = -1e9
        self.closed = False
        self.confirm: Confirmer | None = None  # end-to-end confirmations (collector.confirm)

    def on_message(self, message: paho.MQTTMessage) -> None:
        """paho's message object (tests, and paho's own PUBLISH handler for QoS 2)."""
        topic = message.topic
        self.on_publish(topic.encode() if isinstance(topic, str) else topic, message.qos, message.mid,
                        bytes(message.payload), retain=bool(getattr(message, "retain", False)))

    def on_publish(self, topic_bytes: bytes, qos: int, mid: int, payload: bytes, *, retain: bool = False) -> None:
        """One PUBLISH, straight from the MQTT client's parser: no message object per message."""
        if self.closed:  # shutting down: not acked, so the broker delivers it again next session
            return
        self._stats.messages_in += 1
        ticket = self._ledger.arrive(mid, qos)
        known = self._topics.get(topic_bytes)
        if known is None:
            known = self._learn_topic(topic_bytes)
        topic, where = known
        if where is None:
            self._dead_letter("bad-topic", topic, "", payload, ticket)
            return
        self._process(where, topic, payload, ticket, time.monotonic(), retain=retain)

    def _learn_topic(self, topic_bytes: bytes) -> tuple[str, tuple[str, str] | None]:
        """Topics repeat (a few per gateway): parse each once. Bounded against topic floods."""
        if len(self._topics) >= MAX_TOPICS:
            self._topics.clear()
        topic = topic_bytes.decode("utf-8", "replace")
        known = (topic, parse_topic(topic, self._prefix))
        self._topics[topic_bytes] = known
        return known

    def _process(self, where: tuple[str, str], topic: str, payload: bytes, ticket: Ticket,
                 now: float, *, retain: bool = False) -> None:
        gateway, kind = where
        decoded = self._decode(gateway, kind, topic, payload, ticket, retain=retain)
        if decoded is None:
            return
        if decoded.kind is Kind.LINES:
            self._accept_lines(decoded, ticket, now)
        elif decoded.kind is Kind.PARK:
            self._park(decoded, topic, kind, payload, ticket, now=now)
        else:
            self._accept_control(decoded, payload, ticket)

    def _decode(self, gateway: str, kind: str, topic: str, payload: bytes, ticket: Ticket, *,
                retain: bool = False) -> Decoded | None:
        """The message decoded, or None when it went to the dead letters (its ticket with it).

        The boundary of message handling: whatever the decoder raises ends as a dead letter
        with a reason, so no message can leave its ticket unsettled and stop the acks.
        """
        started = time.perf_counter()
        try:
            decoded = self._decoder.decode(gateway, kind, payload)
            if time.perf_counter() - started > self._limits.decode_max_s:
                self._stats.slow_messages += 1
            return decoded
        except WireError as exc:
            if retain and kind == "birth" and self._seen_bad_birth(topic, payload):
                self._stats.dead_letters_repeated += 1
                self._add_ticket(ticket)
                return None
            if exc.reason.startswith("limit-"):
                self._stats.limits_hit += 1
            self._dead_letter(exc.reason, topic, exc.detail, payload, ticket)
        except Exception as exc:  # the boundary above: a bug must not stall ingest
            self._stats.decode_errors += 1
            now = time.monotonic()
            if now - self._error_logged >= ERROR_LOG_INTERVAL_S:
                self._error_logged = now
                log.exception("message handling failed; dead-lettered (logged at most once a minute)",
                              extra={"topic": topic[:200]})
            self._dead_letter("decode-error", topic, f"{type(exc).__name__}: {exc}"[:200], payload, ticket)
        return None

    def _seen_bad_birth(self, topic: str, payload: bytes) -> bool:
        """True if this bad retained birth was dead-lettered before (remembering it now if not).
        Only retained ones: the same bad birth published again is a new message, and a new dead letter."""
        key = hashlib.blake2b(payload, digest_size=16, key=topic.encode()[:64]).digest()
        if key in self._bad_births:
            self._bad_births.move_to_end(key)
            return True
        self._bad_births[key] = None
        if len(self._bad_births) > MAX_BAD_BIRTHS:
            self._bad_births.popitem(last=False)
        return False

    def _accept_lines(self, decoded: Decoded, ticket: Ticket, now: float) -> None:
        stats = self._stats
        if decoded.health:
            # Health seq counts health messages only (docs/protocol.md): no gap or duplicate accounting.
            stats.health_in += decoded.readings
        else:
            dup = self._seqs.observe(decoded.gateway, decoded.boot, decoded.seq, now)
            if dup:
                stats.duplicates += 1  # stored again all the same: the same points, harmless
            if self.confirm is not None:  # confirm this seq once its batch is durable
                self.confirm.note(ticket, decoded.gateway, decoded.boot, decoded.seq, duplicate=dup)
            stats.readings_in += decoded.readings
            stats.bad_values += decoded.bad_values
        batch = self._batch
        if not batch.tickets and not batch.lines:
            batch.opened_at = now
        if decoded.text:
            batch.chunks.append(decoded.text)  # joined once per batch
            batch.lines += decoded.text.count("\n") + 1  # a line per series and time: fewer than readings
            batch.readings += 0 if decoded.health else decoded.readings
        batch.tickets.append(ticket)
        if batch.lines >= self._limits.batch_max_lines or \
                len(batch.tickets) >= self._limits.batch_max_messages:
            self.seal()

    def _accept_control(self, decoded: Decoded, payload: bytes, ticket: Ticket) -> None:
        if decoded.kind is Kind.BIRTH and decoded.birth is not None:
            self._stats.births += 1
            try:
                self._births.save(decoded.birth, payload)
            except OSError as exc:  # decoding goes on from memory; only a restart would miss it
                log.error("cannot persist birth", extra={"gateway": decoded.gateway, "error": str(exc)})
            log.info("birth", extra={"gateway": decoded.gateway, "boot": decoded.boot,
                                     "metrics": len(decoded.birth.metrics)})
            self._unpark(decoded.gateway, decoded.boot)
        elif decoded.kind is Kind.DEATH:
            self._stats.deaths += 1
            self._seqs.death(decoded.gateway, decoded.boot)
            log.info("death", extra={"gateway": decoded.gateway, "boot": decoded.boot})
        self._add_ticket(ticket)

    def _add_ticket(self, ticket: Ticket) -> None:
        if not self._batch.tickets and not self._batch.lines:
            self._batch.opened_at = time.monotonic()
        self._batch.tickets.append(ticket)
        if len(self._batch.tickets) >= self._limits.batch_max_messages:
            self.seal()

    def _dead_letter(self, reason: str, topic: str, detail: str, payload: bytes, ticket: Ticket) -> None:
        self._dead.add(reason, topic=topic, detail=detail, payload=payload)
        self._stats.dead_letters += 1
        if self.confirm is not None:  # a dead-lettered data message is declared: confirm it
            self.confirm.note_dead(ticket, topic, payload)
        # Durable with the batch that carries the ticket: the sink syncs dead letters before acking.
        self._add_ticket(ticket)

    def _park(self, decoded: Decoded, topic: str, kind: str, payload: bytes, ticket: Ticket, *,
              now: float) -> None:
        if len(self._parked) >= MAX_PARKED:
            self._dead_letter("no-birth", topic, "park full; " + decoded.missing, payload, ticket)
            return
        self._stats.parked += 1
        self._parked.append(_Parked(decoded.gateway, decoded.boot, topic, kind, payload, ticket,
                                    now + self._limits.park_timeout_s))
        # Rate-limited per boot: a backlog of an earlier boot asks for that boot's birth by name.
        key = (decoded.gateway, decoded.boot)
        last = self._last_rebirth.get(key, -1e9)
        if now - last >= REBIRTH_INTERVAL_S:
            if len(self._last_rebirth) >= MAX_REBIRTH_KEYS:  # boots made up by a flood of data
                self._last_rebirth.clear()
            self._last_rebirth[key] = now
            self._stats.rebirth_requests += 1
            log.info("rebirth requested", extra={"gateway": decoded.gateway, "boot": decoded.boot,
                                                 "why": decoded.missing})
            self._request_rebirth(decoded.gateway, decoded.boot, decoded.missing)

    def _unpark(self, gateway: str, boot: str) -> None:
        ready = [p for p in self._parked if p.gateway == gateway and p.boot == boot]
        if not ready:
            return
        self._parked = [p for p in self._parked if not (p.gateway == gateway and p.boot == boot)]
        now = time.monotonic()
        for parked in ready:
            # Still unknown after the birth (an alias it does not define): dead letter, not a new park.
            decoded = self._decode(parked.gateway, parked.kind, parked.topic, parked.payload, parked.ticket)
            if decoded is None:
                continue
            if decoded.kind is Kind.LINES:
                self._accept_lines(decoded, parked.ticket, now)
            else:
                self._dead_letter("no-birth", parked.topic, decoded.missing, parked.payload, parked.ticket)

    def add_lines(self, text: str) -> None:
        """Lines of our own (self-metrics): no ticket, no reading count."""
        text = text.rstrip("\n")
        if text:
            self._batch.chunks.append(text)
            self._batch.lines += text.count("\n") + 1

    def tick(self, now: float) -> None:
        """Seal an old batch and expire parked messages. Called by the collector's timer."""
        if self._parked:
            expired = [p for p in self._parked if p.deadline <= now]
            if expired:
                self._parked = [p for p in self._parked if p.deadline > now]
                for parked in expired:
                    self._dead_letter("no-birth", parked.topic, f"no birth for boot {parked.boot}",
                                      parked.payload, parked.ticket)
        batch = self._batch
        if (batch.tickets or batch.lines) and now - batch.opened_at >= self._limits.batch_max_age_s:
            self.seal()

    def seal(self) -> None:
        batch = self._batch
        if batch.tickets or batch.lines:
            self._batch = Batch()
            self._seal_cb(batch)

    @property
    def parked(self) -> int:
        return len(self._parked)
