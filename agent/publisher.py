"""The agent's MQTT session: birth, death, QoS 1 delivery out of the durable queue, rebirth.

One connection at a time, in a plain reconnect loop with roadpulse.backoff:

- the death is the MQTT will (`clean: false`) and is published with `clean: true` on
  shutdown; the birth is published retained after every (re)connect and on `rebirth`;
- a backlog record sealed under an earlier boot is preceded, once per connection, by that
  boot's stored birth, not retained (the retained birth stays the current boot's), so a
  collector that never saw that birth can still decode it;
- a record leaves the queue when `publish` returns (the PUBACK) with `delivery = "broker"`;
  end-to-end (the default) it leaves only when a collector confirms it on the `ack` topic
  (`Confirmations`, implemented by agent.outbox): unconfirmed records are sent again after a
  timeout and after every reconnect, and at most a window of them is out at once;
- records committed since this connection came up are *live* and go first; older ones
  are the *backlog*, replayed oldest-first through a token bucket so that hours of backlog
  never delay live data and never flood a thin 4G link.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlparse

import aiomqtt

from agent.config import MqttConfig
from agent.stats import AgentStats
from roadpulse.backoff import Backoff
from roadpulse.queue import Record, Tx
from roadpulse.wire import Command, Topics, WireError, decode
from roadpulse.wire.confirm import Confirmation, decode_confirmation

log = logging.getLogger(__name__)
ACK_TIMEOUT_S = 10.0
# The thinnest link a gateway is expected to hold a session on (a weak 4G cell falling back to
# EDGE carries a few KB/s). A PUBACK cannot come back before the message has crossed the link, so
# a large message (a birth of many metrics is tens of KB) gets time for its bytes on top of
# ACK_TIMEOUT_S: with a fixed timeout, a 36 KB birth on a 3 KB/s link timed out, the session
# dropped, and the gateway never got past its birth.
SLOW_LINK_BYTES_PER_S = 1000.0


def ack_timeout(size: int) -> float:
    """Seconds to wait for the PUBACK of a `size`-byte message."""
    return ACK_TIMEOUT_S + size / SLOW_LINK_BYTES_PER_S
# Messages awaiting their PUBACK at once (paho's own window is 20, the shipped broker's 100).
IN_FLIGHT = 8


@dataclass(slots=True)
class TokenBucket:
    """`rate` tokens per second, at most `burst` saved up. Pure: time is passed in."""

    rate: float
    burst: float
    _tokens: float = 0.0
    _at: float | None = None

    def _fill(self, now: float) -> None:
        if self._at is None:
            self._tokens = self.burst
        else:
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now

    def take(self, now: float) -> bool:
        self._fill(now)
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    def wait_time(self, now: float) -> float:
        self._fill(now)
        return max(0.0, (1.0 - self._tokens) / self.rate)


class Outbox(Protocol):
    """The agent's side of the hand-off (agent.outbox.Outbox): records in transactions, and what to send.

    `begin` hands out at most one committed record with `start <= id < stop`; `end` settles it:
    acknowledged records are gone for good, the others come back.
    """

    @property
    def next_id(self) -> int: ...

    def begin(self, *, start: int = 0, stop: int | None = None) -> Tx: ...

    def end(self, tx: Tx, *, acked: bool) -> None: ...

    def payload(self, record: Record, *, replay: bool) -> bytes:
        """The bytes to publish; raises WireError for a record no retry could make sendable."""
        ...

    def birth(self) -> bytes: ...

    def death(self, clean: bool) -> bytes: ...

    def boot_of(self, record: Record) -> str | None:
        """The earlier boot a record was sealed under; None for the current boot or an unknown one."""
        ...

    def earlier_birth(self, boot: str) -> bytes | None:
        """The stored birth of an earlier boot; None for the current boot or one not stored."""
        ...


class Confirmations(Protocol):
    """End-to-end delivery (agent.outbox.Outbox): records settled by collectors' confirmations."""

    def confirm(self, confirmation: Confirmation) -> int:
        """Settle what the confirmation names; returns how many records."""
        ...

    def expire(self) -> int:
        """Put back in line what waited too long for its confirmation; returns how many."""
        ...

    def requeue_all(self) -> int: ...

    def can_send(self) -> bool:
        """False while the window of unconfirmed records is full."""
        ...

    @property
    def waiting(self) -> int: ...


def client_options(config: MqttConfig, default_id: str) -> dict[str, object]:
    """aiomqtt.Client keyword arguments from the config (secrets read from file or environment)."""
    url = urlparse(config.url)
    tls = url.scheme == "mqtts"
    options: dict[str, object] = {
        "hostname": url.hostname or "127.0.0.1",
        "port": url.port or (8883 if tls else 1883),
        "identifier": config.client_id or default_id,
        "keepalive": config.keepalive_s,
        # Sparkplug's lesson: store-and-forward lives in the application, not in the session.
        "clean_session": True,
        "timeout": ACK_TIMEOUT_S,
    }
    if config.username:
        options["username"] = config.username
        if config.password_file:
            options["password"] = config.password_file.read_text().strip()
        elif config.password_env:
            options["password"] = os.environ.get(config.password_env, "")
    if tls:
        t = config.tls
        options["tls_params"] = aiomqtt.TLSParameters(
            ca_certs=str(t.ca_file) if t and t.ca_file else None,
            certfile=str(t.cert_file) if t and t.cert_file else None,
            keyfile=str(t.key_file) if t and t.key_file else None,
        )
        options["tls_insecure"] = bool(t and t.insecure)
    return options


class Publisher:
    def __init__(
        self,
        config: MqttConfig,
        topics: Topics,
        outbox: Outbox,
        *,
        replay_per_s: float,
        stats: AgentStats | None = None,
        drain_s: float = 3.0,
        confirmations: Confirmations | None = None,
    ) -> None:
        """`confirmations`: end-to-end delivery; None: a record is settled by its PUBACK."""
        self._config = config
        self._confirmations = confirmations
        self._topics = topics
        self._outbox = outbox
        # Earlier boots whose birth went out on this connection; the lock keeps a second record
        # of the same boot from overtaking its birth.
        self._announced: set[str] = set()
        self._announce_lock = asyncio.Lock()
        self._replay_per_s = replay_per_s
        self._drain_s = drain_s
        self.stats = stats or AgentStats()
        self._wake = asyncio.Event()
        self._client: aiomqtt.Client | None = None
        # Log the link going down once per outage, not once per failed attempt.
        self._down_logged = False

    def notify(self) -> None:
        """New committed records (or a stop request): wake the sender."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Connect, deliver and reconnect until `stop`; then send what is live, a clean death, and leave."""
        backoff = Backoff(cap=self._config.reconnect_max_s)
        while not stop.is_set():
            error: BaseException | None = None
            try:
                await self._session(stop, backoff)
            except* (aiomqtt.MqttError, OSError) as group:
                error = group.exceptions[0]
            if error is None:
                return
            if not self._down_logged:
                log.warning("mqtt link down", extra={"event": "link_down", "error": str(error)})
                self._down_logged = True
            self.stats.connected = False
            await self._sleep_or_stop(backoff.next(), stop)

    async def _sleep_or_stop(self, delay: float, stop: asyncio.Event) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay):
                await stop.wait()

    async def _session(self, stop: asyncio.Event, backoff: Backoff) -> None:
        will = aiomqtt.Will(self._topics.death, self._outbox.death(False), qos=1, retain=False)
        client = aiomqtt.Client(will=will, **client_options(  # type: ignore[arg-type]
            self._config, f"rp-agent-{self._topics.gateway}"))
        async with client:
            if self.stats.connects:
                self.stats.reconnects += 1
            self.stats.connects += 1
            self.stats.connected = True
            self._down_logged = False
            log.info("mqtt link up", extra={"event": "link_up", "reconnects": self.stats.reconnects})
            await client.subscribe(self._topics.cmd, qos=1)
            if self._confirmations is not None:
                await client.subscribe(self._topics.ack, qos=1)
                # What the last connection sent unconfirmed may be lost with the broker: send it again.
                if requeued := self._confirmations.requeue_all():
                    log.info("unconfirmed records sent again", extra={"event": "resend", "records": requeued})
            self._announced = set()
            await self._publish_birth(client)
            backoff.reset()
            # Whatever is committed from here on is live; everything before is backlog.
            backlog_end = self._outbox.next_id
            self._client = client
            try:
                async with asyncio.TaskGroup() as tg:
                    commands = tg.create_task(self._listen(client), name="publisher.commands")
                    expiry = tg.create_task(self._expire_forever(), name="publisher.confirm_timeouts")
                    await self._send(client, stop, backlog_end)
                    commands.cancel()
                    expiry.cancel()
                await client.publish(self._topics.death, self._outbox.death(True), qos=1, timeout=5.0)
                log.info("clean death published", extra={"event": "death"})
            finally:
                self._client = None
                self.stats.connected = False

    async def _publish_birth(self, client: aiomqtt.Client) -> None:
        payload = self._outbox.birth()
        await client.publish(self._topics.birth, payload, qos=1, retain=True, timeout=ack_timeout(len(payload)))
        self.stats.births += 1

    async def _expire_forever(self) -> None:
        if self._confirmations is None:
            return
        while True:
            await asyncio.sleep(1.0)
            if self._confirmations.expire():
                self.notify()

    def _on_confirmation(self, payload: object) -> None:
        assert self._confirmations is not None
        try:
            if not isinstance(payload, bytes | bytearray):
                raise WireError("not-bytes")
            confirmation = decode_confirmation(bytes(payload))
            if confirmation.gateway != self._topics.gateway:
                raise WireError("bad-ack", f"for gateway {confirmation.gateway!r}")
        except WireError as err:
            self.stats.bad_commands += 1
            log.warning("bad confirmation ignored", extra={"reason": err.reason})
            return
        if self._confirmations.confirm(confirmation):
            self.notify()  # room in the window, or the drain at shutdown may be over

    async def _listen(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            if self._confirmations is not None and message.topic.matches(self._topics.ack):
                self._on_confirmation(message.payload)
                continue
            if not message.topic.matches(self._topics.cmd):
                continue
            payload = message.payload
            try:
                if not isinstance(payload, bytes | bytearray):
                    raise WireError("not-bytes")
                command = decode(bytes(payload))
            except WireError as err:
                self.stats.bad_commands += 1
                log.warning("bad command ignored", extra={"reason": err.reason})
                continue
            if isinstance(command, Command) and command.cmd == "rebirth":
                log.info("rebirth requested", extra={"event": "rebirth", "reason": command.reason,
                                                     "boot": command.boot})
                earlier = self._outbox.earlier_birth(command.boot) if command.boot else None
                if earlier is not None:
                    await self._publish_earlier_birth(client, command.boot, earlier)
                else:
                    await self._publish_birth(client)
                self.stats.rebirths += 1

    async def _publish_earlier_birth(self, client: aiomqtt.Client, boot: str, payload: bytes) -> None:
        # Not retained: the retained birth is what a collector starting later must learn, the current one.
        await client.publish(self._topics.birth, payload, qos=1, retain=False, timeout=ack_timeout(len(payload)))
        self._announced.add(boot)
        self.stats.earlier_births += 1
        log.info("birth of an earlier boot published", extra={"event": "earlier_birth", "boot": boot})

    async def _announce(self, client: aiomqtt.Client, record: Record) -> None:
        """Before the first record of an earlier boot on this connection: that boot's birth, acknowledged."""
        boot = self._outbox.boot_of(record)
        if boot is None or boot in self._announced:
            return
        async with self._announce_lock:
            if boot in self._announced:
                return
            payload = self._outbox.earlier_birth(boot)
            if payload is None:
                # Not stored (sealed by an agent older than the store): the collector will ask for it.
                self._announced.add(boot)
                return
            await self._publish_earlier_birth(client, boot, payload)

    async def _send(self, client: aiomqtt.Client, stop: asyncio.Event, backlog_end: int) -> None:
        """Hand records to `_deliver`, up to IN_FLIGHT at once: on 4G a PUBACK takes a round trip."""
        loop = asyncio.get_running_loop()
        bucket = TokenBucket(self._replay_per_s, max(1.0, self._replay_per_s))
        backlog_left = True
        drain_until: float | None = None
        slots = asyncio.Semaphore(IN_FLIGHT)
        async with asyncio.TaskGroup() as deliveries:
            while True:
                if stop.is_set():
                    drain_until = drain_until or loop.time() + self._drain_s
                    if loop.time() >= drain_until:
                        return
                if self._confirmations is not None and not self._confirmations.can_send():
                    # The window of unconfirmed records is full: wait for confirmations or timeouts.
                    self._wake.clear()
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(1.0):
                            await self._wake.wait()
                    continue
                await slots.acquire()
                tx = self._outbox.begin(start=backlog_end)
                replay = False
                if not tx and backlog_left and not stop.is_set() and bucket.take(loop.time()):
                    tx = self._outbox.begin(stop=backlog_end)
                    # Records staged before the connect commit later, below the boundary: look again on wake.
                    backlog_left = bool(tx)
                    replay = True
                if tx:
                    deliveries.create_task(self._deliver_in_slot(client, tx, replay, slots),
                                           name=f"publisher.deliver[{tx.records[0].id}]")
                    continue
                slots.release()
                waiting = self._confirmations.waiting if self._confirmations is not None else 0
                if stop.is_set() and not waiting:
                    return
                self._wake.clear()
                timeout = bucket.wait_time(loop.time()) if backlog_left else None
                if stop.is_set():  # nothing live left to send: wait a little for confirmations
                    timeout = 0.1
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(timeout):
                        await self._wake.wait()
                backlog_left = True

    async def _deliver_in_slot(self, client: aiomqtt.Client, tx: Tx, replay: bool,
                               slots: asyncio.Semaphore) -> None:
        try:
            await self._deliver(client, tx, replay)
        finally:
            slots.release()

    async def _deliver(self, client: aiomqtt.Client, tx: Tx, replay: bool) -> None:
        record = tx.records[0]
        try:
            payload = self._outbox.payload(record, replay=replay)
        except WireError as err:
            # CRC-valid but not protocol v1: nothing a retry could fix.
            self.stats.undecodable_records += 1
            log.error("undecodable queued record dropped", extra={"id": record.id, "reason": err.reason})
            self._outbox.end(tx, acked=True)
            return
        try:
            await self._announce(client, record)
            started = time.monotonic()
            await client.publish(self._topics.data, payload, qos=1, timeout=ack_timeout(len(payload)))
        except BaseException:
            self._outbox.end(tx, acked=False)
            raise
        self.stats.latency_ms.append((time.monotonic() - started) * 1000)
        self.stats.messages_published += 1
        self.stats.messages_replayed += replay
        self.stats.readings_acked += record.weight
        self._outbox.end(tx, acked=True)

    async def publish_health(self, topic: str, payload: bytes) -> bool:
        """Best effort: health is about now, so it is not queued while the link is down."""
        client = self._client
        if client is None:
            return False
        try:
            await client.publish(topic, payload, qos=1, timeout=ACK_TIMEOUT_S)
        except aiomqtt.MqttError:
            return False
        return True
