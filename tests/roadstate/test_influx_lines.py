"""road_state and incident points as line protocol: the documented schema, escaped tags, deterministic keys."""

from __future__ import annotations

from roadstate.engine import IncidentEvent, SegmentRow
from roadstate.influx import incident_line, road_state_line
from roadstate.state import Segment, SegmentState

SEG = Segment("G 60", "N", "gw/a", "gw/b", 8.0, 10.0)


def test_road_state_line_carries_every_documented_field() -> None:
    row = SegmentRow(SEG, 1_700_000_000_000, SegmentState(1500.0, 85.0, 17.6, 33.0, "D", 1, 0.055, 2))
    line = road_state_line(row)
    assert line.startswith("road_state,direction=N,road=G\\ 60,segment=K008+000-K010+000 ")
    assert line.endswith(" 1700000000000")
    fields = dict(kv.split("=", 1) for kv in line.split(" ")[2].split(","))
    assert fields == {
        "from_km": "8.0", "to_km": "10.0", "flow": "1500.0", "speed": "85.00", "density": "17.600",
        "density_pcmi": "33.000", "los": '"D"', "los_index": "4i", "congestion_level": "1i",
        "congestion": '"畅通"', "delay_ratio": "0.0550", "stations_ok": "2i",
    }


def test_an_incident_is_the_same_point_when_declared_and_when_cleared() -> None:
    opened = incident_line(IncidentEvent(SEG, "roadpulse", 1_700_000_000_000, None, 9.4, 0.9))
    cleared = incident_line(IncidentEvent(SEG, "roadpulse", 1_700_000_000_000, 1_700_000_900_000, 9.4, 0.9))
    key = "incident,algorithm=roadpulse,direction=N,road=G\\ 60,segment=K008+000-K010+000 "
    assert opened.startswith(key)
    assert cleared.startswith(key)
    assert opened.rsplit(" ", 1)[-1] == cleared.rsplit(" ", 1)[-1] == "1700000000000"
    assert "active=1i" in opened
    assert 'state="active"' in opened
    assert "end_ms=0i" in opened
    assert "active=0i" in cleared
    assert "duration_s=900i" in cleared
    assert 'kp="K009+400"' in cleared
    assert 'id="G 60/N/K008+000-K010+000/roadpulse/1700000000000"' in cleared
