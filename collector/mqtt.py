"""paho-mqtt 2.x driven by the asyncio loop: no thread, no second event loop.

Sockets are watched with loop.add_reader/add_writer (as in paho's examples/loop_asyncio.py)
and a timer calls loop_misc for keepalives. Messages are acked manually (`ack_many`), by the
collector, once what they carry is durable. The session is persistent: fixed client id,
MQTT 5 clean start off and a session expiry, so the broker holds our QoS 1 messages while
we are away or slow.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from collector.config import MqttSection
from collector.leanclient import LeanClient, PublishHandler, split_publish
from roadpulse.backoff import Backoff
from roadpulse.configfile import read_secret
from roadpulse.wire.topics import subscriptions

__all__ = ["MessageHandler", "MqttLink", "PublishHandler", "split_publish"]  # split_publish: tests import it here

log = logging.getLogger(__name__)

READS_PER_WAKEUP = 256
MessageHandler = Callable[[paho.MQTTMessage], None]


class MqttLink:
    """One persistent MQTT session. `generation` grows on every connect: acks of an older
    connection are void, because the broker redelivers those messages on the new one."""

    def __init__(self, cfg: MqttSection, client_id: str, on_message: MessageHandler,
                 on_connected: Callable[[bool], None] | None = None,
                 on_publish: PublishHandler | None = None) -> None:
        """`on_publish` (topic, qos, mid, payload) takes QoS 0/1 PUBLISHes without a message
        object; `on_message` gets the rest (and everything when `on_publish` is None)."""
        self._cfg = cfg
        self._on_message = on_message
        self._on_connected = on_connected
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake = asyncio.Event()  # connection lost or stop requested
        self._stopping = False
        self.generation = 0
        self.received = 0
        self._writing = False
        self.connected = False
        self.connects = 0
        client = LeanClient(CallbackAPIVersion.VERSION2, client_id=client_id,
                             protocol=paho.MQTTv5, manual_ack=True)
        if cfg.username:
            client.username_pw_set(cfg.username, read_secret(cfg.password_file, cfg.password_env))
        if cfg.tls is not None or cfg.url.startswith("mqtts"):
            tls = cfg.tls
            client.tls_set(
                ca_certs=str(tls.ca_file) if tls and tls.ca_file else None,
                certfile=str(tls.cert_file) if tls and tls.cert_file else None,
                keyfile=str(tls.key_file) if tls and tls.key_file else None,
                tls_version=ssl.PROTOCOL_TLS_CLIENT,
            )
            client.tls_insecure_set(bool(tls and tls.insecure))  # as the agent: host-name check only
        client.on_connect = self._handle_connect
        client.on_disconnect = self._handle_disconnect
        client.on_message = self._handle_message
        client.publish_handler = on_publish
        client.on_unsubscribe = self._handle_unsubscribe
        client.on_subscribe = self._handle_subscribe
        self._pending_subacks: set[int] = set()
        self._unsubscribed = asyncio.Event()
        client.on_socket_open = self._socket_open
        client.on_socket_close = self._socket_close
        client.on_socket_register_write = self._register_write
        client.on_socket_unregister_write = self._unregister_write
        self._client = client

    # ---- paho callbacks, all on the event loop's thread ----

    def _socket_open(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        assert self._loop is not None
        self._client.drop_buffer()
        self._loop.add_reader(sock, self._read)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)

    def _socket_close(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        assert self._loop is not None
        self._loop.remove_reader(sock)
        self._loop.remove_writer(sock)
        self._writing = False

    def _register_write(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        # paho asks once per queued packet (e.g. every ack); one epoll change is enough.
        if not self._writing:
            assert self._loop is not None
            self._writing = True
            self._loop.add_writer(sock, self._write)

    def _unregister_write(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        if self._writing:
            assert self._loop is not None
            self._writing = False
            self._loop.remove_writer(sock)

    def _read(self) -> None:
        # paho parses one packet per loop_read; go on while bytes we already read remain, so
        # a burst costs one trip through the event loop, not one per message. Bounded, so
        # acks and timers still get their turn; the rest is picked up on the next iteration.
        client = self._client
        for _ in range(READS_PER_WAKEUP):
            client.loop_read()
            if client.socket() is None or not client.buffered:
                return
        assert self._loop is not None
        self._loop.call_soon(self._read)

    def _write(self) -> None:
        self._client.loop_write()

    def _handle_connect(self, client: paho.Client, userdata: Any, flags: Any, reason: Any,
                        properties: Any) -> None:
        if reason.is_failure:
            log.warning("mqtt connect refused", extra={"reason": str(reason)})
            return
        self.generation += 1
        self.connected = True
        self.connects += 1
        session_present = bool(flags.session_present)
        log.info("mqtt connected", extra={"session_present": session_present,
                                          "generation": self.generation})
        # Births first and never shared: every collector needs every gateway's aliases.
        topics = subscriptions(self._cfg.topic_prefix, self._cfg.share_group)
        births = [t for t in topics if not t.startswith("$share/")]
        shared = [t for t in topics if t.startswith("$share/")]
        self._pending_subacks.clear()
        for group in (births, shared):
            if group:
                _, mid = client.subscribe([(t, 1) for t in group])
                if mid is not None:
                    self._pending_subacks.add(mid)
        if self._on_connected is not None:
            self._on_connected(session_present)

    def _handle_disconnect(self, client: paho.Client, userdata: Any, flags: Any, reason: Any,
                           properties: Any) -> None:
        if self.connected:
            log.warning("mqtt disconnected", extra={"reason": str(reason)})
        self.connected = False
        self._wake.set()

    def _handle_subscribe(self, client: paho.Client, userdata: Any, mid: int, reasons: Any,
                          properties: Any) -> None:
        failed = [str(r) for r in reasons if r.is_failure]
        if failed:
            log.error("mqtt subscription refused", extra={"reasons": failed})
        self._pending_subacks.discard(mid)

    @property
    def ready(self) -> bool:
        """Connected and every subscription acknowledged: from now on nothing published is missed."""
        return self.connected and not self._pending_subacks

    def _handle_unsubscribe(self, client: paho.Client, userdata: Any, mid: int, reasons: Any,
                            properties: Any) -> None:
        self._unsubscribed.set()

    def _handle_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        self.received += 1
        self._on_message(message)

    # ---- used by the collector ----

    @property
    def retained(self) -> bool:
        """The RETAIN flag of the PUBLISH now being handled (valid inside the publish handler)."""
        return self._client.retain_flag

    def ack_many(self, mids: list[int]) -> None:
        """PUBACK these QoS 1 messages, in this order, as one queued write (one `send`, not one each)."""
        if mids and self.connected:
            self._client.ack_many(mids)

    def publish(self, topic: str, payload: bytes, qos: int = 1) -> None:
        self._client.publish(topic, payload, qos=qos)

    async def leave_share(self, limit_s: float = 2.0) -> None:
        """Unsubscribe the shared topics before a clean stop.

        Mosquitto keeps routing a share's messages to a member's persistent session even
        while it is disconnected; a stopped collector that stayed subscribed would collect
        its share until it returns. Births stay subscribed (they are not shared).
        """
        shared = [t for t in subscriptions(self._cfg.topic_prefix, self._cfg.share_group)
                  if t.startswith("$share/")]
        if not shared or not self.connected:
            return
        self._unsubscribed.clear()
        self._client.unsubscribe(shared)
        try:
            await asyncio.wait_for(self._unsubscribed.wait(), limit_s)
        except TimeoutError:
            log.warning("no UNSUBACK before shutdown")

    def flush(self) -> None:
        """Write queued packets (acks) now, e.g. before disconnecting."""
        if self._client.socket() is not None and self._client.want_write():
            self._client.loop_write()

    def request_stop(self) -> None:
        """Make `run` return (after the current connection's wait); `disconnect` closes it."""
        self._stopping = True
        self._wake.set()

    async def _pause(self, delay: float) -> None:
        """Sleep before reconnecting, waking early on request_stop."""
        if self._stopping:
            return
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), delay)

    async def run(self) -> None:
        """Connect and reconnect with the one backoff until request_stop. No thread of its own."""
        self._loop = asyncio.get_running_loop()
        backoff = Backoff(base=0.2, cap=10.0)
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = self._cfg.session_expiry_s
        props.ReceiveMaximum = self._cfg.receive_maximum
        while not self._stopping:
            self._wake.clear()
            connects = self.connects
            try:
                # Blocking, bounded by paho's connect timeout (5 s); connects are rare.
                self._client.connect(self._cfg.host, self._cfg.port, self._cfg.keepalive_s,
                                     clean_start=False, properties=props)
            except OSError as exc:
                delay = backoff.next()
                log.warning("mqtt connect failed", extra={"error": str(exc), "retry_in_s": round(delay, 2)})
                await self._pause(delay)
                continue
            async with asyncio.TaskGroup() as tg:
                keepalive = tg.create_task(self._misc(), name="collector.mqtt.misc")
                await self._wake.wait()  # connection lost, or request_stop
                keepalive.cancel()
            if self.connects > connects:
                backoff.reset()  # that connection got a CONNACK: start the backoff afresh
            await self._pause(backoff.next())

    async def disconnect(self) -> None:
        if self._client.socket() is not None:
            self.flush()
            self.connected = False  # a disconnect we asked for is not worth a warning
            self._client.disconnect()
            self.flush()
            await asyncio.sleep(0)
        self.connected = False

    async def _misc(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            if self._client.loop_misc() == MQTTErrorCode.MQTT_ERR_NO_CONN:
                self._wake.set()
                return
