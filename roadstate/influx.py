"""road_state and incident points as line protocol, and a small InfluxDB 1.x /write client.

The points' keys are deterministic (tags from the segment and algorithm, time from the
interval or the incident's start), so writing one twice stores it once: that is what makes
a replay after a restart harmless. Schema: docs/road-state.md.
"""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request

from roadstate.engine import IncidentEvent, SegmentRow


class WriteRetryableError(Exception):
    """InfluxDB unreachable or answering 5xx/429: the same batch may be sent again."""


class WriteRejectedError(Exception):
    """InfluxDB refused the batch (4xx): resending it would not help."""


def _tag(value: str) -> str:
    return value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ")


def _str(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _tags(segment_road: str, direction: str, segment: str) -> str:
    return f"direction={_tag(direction)},road={_tag(segment_road)},segment={_tag(segment)}"


def road_state_line(row: SegmentRow) -> str:
    s, x = row.segment, row.state
    fields = (
        f"from_km={s.from_km!r},to_km={s.to_km!r},flow={x.flow:.1f},speed={x.speed_kmh:.2f},"
        f"density={x.density:.3f},density_pcmi={x.density_pcmi:.3f},los={_str(x.los)},los_index={x.los_index}i,"
        f"congestion_level={x.congestion_level}i,congestion={_str(x.congestion)},"
        f"delay_ratio={x.delay_ratio:.4f},stations_ok={x.stations_ok}i"
    )
    return f"road_state,{_tags(s.road, s.direction, s.name)} {fields} {row.t_ms}"


def incident_line(event: IncidentEvent) -> str:
    s = event.segment
    end = event.end_ms or 0
    active = event.end_ms is None
    fields = (
        f"id={_str(event.id)},start_ms={event.start_ms}i,end_ms={end}i,active={int(active)}i,"
        f"state={_str('active' if active else 'cleared')},km={event.km!r},kp={_str(event.kp)},"
        f"confidence={event.confidence:.3f},duration_s={(end - event.start_ms) // 1000 if end else 0}i"
    )
    tags = f"algorithm={_tag(event.algorithm)},{_tags(s.road, s.direction, s.name)}"
    return f"incident,{tags} {fields} {event.start_ms}"


class InfluxWriter:
    def __init__(self, url: str, database: str, timeout_s: float = 10.0) -> None:
        query = urllib.parse.urlencode({"db": database, "precision": "ms"})
        self.endpoint = f"{url.rstrip('/')}/write?{query}"
        self.timeout_s = timeout_s

    def write(self, lines: list[str]) -> None:
        if not lines:
            return
        body = ("\n".join(lines) + "\n").encode()
        request = urllib.request.Request(self.endpoint, data=body, method="POST",
                                         headers={"Content-Type": "text/plain; charset=utf-8"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as resp:
                resp.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:300].decode(errors="replace")
            if exc.code == 429 or exc.code >= 500:
                raise WriteRetryableError(f"InfluxDB answered {exc.code}: {detail}") from None
            raise WriteRejectedError(f"InfluxDB answered {exc.code}: {detail}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise WriteRetryableError(f"InfluxDB unreachable: {exc}") from None
