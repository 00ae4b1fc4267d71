"""paho's client with a lean receive path for the collector's PUBLISHes, and batched PUBACKs.

Per message, stock paho costs ~13 µs in the collector: ~4 `recv` calls, a dict per packet,
an MQTT 5 `Properties` object and topic matching per PUBLISH. The collector reads no
publish property and has one handler, so `LeanClient` parses complete PUBLISHes in place
in 64 KiB receive chunks and hands over (topic, qos, mid, payload). It overrides private
methods of paho-mqtt 2.x (pinned < 3 in pyproject.toml); tests/collector/test_mqtt_publish.py
holds it against paho's own decoder and encoder.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable

import paho.mqtt.client as paho
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.exception import MalformedPacket

log = logging.getLogger(__name__)

RECV_CHUNK = 1 << 16
PublishHandler = Callable[[bytes, int, int, bytes], None]  # topic, qos, mid, payload


def split_publish(header: int, packet: bytes | bytearray, start: int = 0,
                  stop: int | None = None) -> tuple[bytes, int, int, bytes]:
    """(topic, qos, mid, payload) of an MQTT 5 PUBLISH body `packet[start:stop]`, properties skipped.

    paho builds a full `Properties` object for every PUBLISH (~11 µs, a fifth of its
    per-message cost); the collector reads no publish property, so it only skips them.
    Offsets let the caller parse in place in its receive buffer: only the payload is copied.
    """
    stop = len(packet) if stop is None else stop
    qos = (header & 0x06) >> 1
    topic_len = (packet[start] << 8) | packet[start + 1]
    pos = start + 2 + topic_len
    if pos > stop:
        raise IndexError("topic runs past the packet")
    topic = bytes(packet[start + 2 : pos])
    mid = 0
    if qos:
        mid = (packet[pos] << 8) | packet[pos + 1]
        pos += 2
    length = 0
    shift = 0
    while True:  # variable byte integer: the properties' length
        if pos >= stop:
            raise IndexError("properties run past the packet")
        byte = packet[pos]
        pos += 1
        length |= (byte & 0x7F) << shift
        if not byte & 0x80:
            break
        shift += 7
        if shift > 21:
            raise ValueError("malformed property length")
    if pos + length > stop:
        raise IndexError("properties run past the packet")
    return topic, qos, mid, bytes(packet[pos + length : stop])


def puback_packets(mids: list[int]) -> bytes:
    """MQTT 5 PUBACKs, success, no properties (reason code omitted, as paho writes them), back to back."""
    return b"".join([_PUBACK.pack(0x40, 2, mid) for mid in mids])


_PUBACK = struct.Struct("!BBH")


class LeanClient(paho.Client):
    """paho's client with a lean receive path for QoS 0/1 PUBLISH (the collector's only QoS).

    Overrides private methods of paho-mqtt 2.x (pinned < 3 in pyproject.toml); tested
    against paho's own decoder in tests/collector/test_mqtt_publish.py:
    - `_packet_read`: paho reads each packet with ~4 `recv` calls and a dict per packet; we
      read 64 KiB chunks and parse every complete PUBLISH in them in place, handing
      (topic, qos, mid, payload) to `publish_handler`: no `MQTTMessage`, no `Properties`,
      no topic matching (the collector has one handler and no filters). Anything else
      (CONNACK, SUBACK, PINGRESP, QoS 2, a packet cut by the chunk's end) goes through
      paho's own code, fed from the same buffer by `_sock_recv`.
    """

    _rbuf: bytes = b""
    _rpos: int = 0
    publish_handler: PublishHandler | None = None
    # The RETAIN flag of the PUBLISH being handled (read by the handler: a retained birth comes
    # again on every reconnect, and a bad one is dead-lettered once).
    retain_flag: bool = False

    def _sock_recv(self, bufsize: int) -> bytes:
        # paho asks the kernel for each packet's header byte, length and body separately (~4
        # syscalls per message); read big chunks once and hand paho slices of them.
        if self._rpos >= len(self._rbuf):
            chunk = super()._sock_recv(RECV_CHUNK)
            if not chunk:
                return chunk
            self._rbuf, self._rpos = chunk, 0
        end = self._rpos + bufsize
        piece = self._rbuf[self._rpos : end]
        self._rpos = min(end, len(self._rbuf))
        return piece

    @property
    def buffered(self) -> bool:
        """Bytes already read from the socket but not yet parsed: epoll will not report them."""
        return self._rpos < len(self._rbuf)

    def drop_buffer(self) -> None:
        self._rbuf, self._rpos = b"", 0

    def ack_many(self, mids: list[int]) -> None:
        """PUBACK these messages, in this order, as one queued packet: one `send` for them all,
        where paho's `ack` queues a packet (and later a `send`) per message."""
        if mids:
            self._packet_queue(paho.PUBACK, puback_packets(mids), 0, 0)

    def _packet_read(self) -> MQTTErrorCode:
        if self._in_packet["command"] != 0 or self._protocol != paho.MQTTv5 or self.publish_handler is None:
            return super()._packet_read()  # paho is in the middle of a packet, or not our case
        if self._rpos >= len(self._rbuf):
            try:
                chunk = paho.Client._sock_recv(self, RECV_CHUNK)
            except BlockingIOError:
                return MQTTErrorCode.MQTT_ERR_AGAIN
            except OSError as exc:  # as paho's own _packet_read: the connection is gone
                log.debug("mqtt receive failed", extra={"error": str(exc)})
                return MQTTErrorCode.MQTT_ERR_CONN_LOST
            if not chunk:
                return MQTTErrorCode.MQTT_ERR_CONN_LOST
            self._rbuf, self._rpos = chunk, 0
        try:
            handled = self._publishes_in_buffer(self.publish_handler)
        except MalformedPacket as exc:  # raised by the parsing only: the handler's errors propagate
            log.warning("malformed PUBLISH; dropping the connection", extra={"error": str(exc)})
            return MQTTErrorCode.MQTT_ERR_PROTOCOL  # as paho does for a MalformedPacket
        if not handled:
            return super()._packet_read()
        with self._msgtime_mutex:
            self._last_bytes_received = paho.time_func()  # keepalive bookkeeping, as paho does
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def _publishes_in_buffer(self, handler: PublishHandler) -> int:
        """Hand every complete QoS 0/1 PUBLISH at the head of the buffer to `handler`; stop at
        the first other packet or the first incomplete one. Returns how many were handled."""
        buf, pos, end = self._rbuf, self._rpos, len(self._rbuf)
        handled = 0
        while pos < end:
            header = buf[pos]
            if header & 0xF0 != 0x30 or header & 0x06 >= 0x04:
                break  # not a PUBLISH, or QoS 2 (or invalid): paho's turn
            length, shift, body = 0, 0, pos + 1
            while body < end:  # remaining length, a variable byte integer
                byte = buf[body]
                body += 1
                length |= (byte & 0x7F) << shift
                if not byte & 0x80:
                    break
                shift += 7
                if shift > 21:
                    raise MalformedPacket("malformed remaining length")
            else:
                break  # the length itself is cut by the chunk's end
            if body + length > end:
                break
            try:
                topic, qos, mid, payload = split_publish(header, buf, body, body + length)
            except (IndexError, ValueError) as exc:
                raise MalformedPacket(str(exc)) from None
            pos = self._rpos = body + length  # consumed before the handler runs, whatever it does
            self.retain_flag = bool(header & 0x01)
            handler(topic, qos, mid, payload)
            if qos and not self._manual_ack:
                self._send_puback(mid)
            handled += 1
        return handled

    def _handle_publish(self) -> MQTTErrorCode:
        """A PUBLISH paho read itself (cut by a chunk's end): the same lean handling."""
        header = self._in_packet["command"]
        handler = self.publish_handler
        if self._protocol != paho.MQTTv5 or (header & 0x06) == 0x04 or handler is None:
            return super()._handle_publish()
        try:
            topic, qos, mid, payload = split_publish(header, self._in_packet["packet"])
        except (IndexError, ValueError) as exc:
            raise MalformedPacket(str(exc)) from None  # paho then drops the connection, as its own decoder would
        self.retain_flag = bool(header & 0x01)
        handler(topic, qos, mid, payload)
        if qos and not self._manual_ack:
            return self._send_puback(mid)
        return MQTTErrorCode.MQTT_ERR_SUCCESS
