"""Station aggregation, units, LOS and 拥堵等级 bands, kilometre posts, segments: table-driven."""

from __future__ import annotations

import pytest

from roadstate.quality import StuckWatch, lane_plausible
from roadstate.state import (
    NO_DATA,
    LaneBin,
    StationInterval,
    aggregate_station,
    congestion_level,
    delay_ratio,
    format_kp,
    front_density,
    los_of,
    parse_kp,
    pc_per_mile,
    segment_state,
    segments_of,
)


@pytest.mark.parametrize(
    ("pcmi", "los"),
    [(0.0, "A"), (11.0, "A"), (11.01, "B"), (18.0, "B"), (18.5, "C"), (26.0, "C"), (30.0, "D"), (35.0, "D"),
     (40.0, "E"), (45.0, "E"), (45.01, "F"), (120.0, "F")],
)
def test_hcm_density_bands(pcmi: float, los: str) -> None:
    assert los_of(pcmi) == los


@pytest.mark.parametrize(
    ("veh_km", "trucks", "pcmi"),
    [(10.0, 0.0, 16.09344), (10.0, 0.5, 24.14016), (6.835, 0.0, 11.0)],
)
def test_density_to_passenger_cars_per_mile(veh_km: float, trucks: float, pcmi: float) -> None:
    assert pc_per_mile(veh_km, trucks) == pytest.approx(pcmi, rel=1e-3)


@pytest.mark.parametrize(
    ("speed", "free", "level"),
    [(90, 90, 1), (64, 90, 1), (63, 90, 2), (45.1, 90, 2), (45, 90, 3), (36.1, 90, 3), (36, 90, 4),
     (27.1, 90, 4), (27, 90, 5), (0, 90, 5), (100, 90, 1)],
)
def test_gbt33171_levels_from_delay_time_proportion(speed: float, free: float, level: int) -> None:
    assert congestion_level(delay_ratio(speed, free)) == level


@pytest.mark.parametrize(
    ("text", "km"), [("K123+400", 123.4), ("k8+050", 8.05), ("12.5", 12.5), (" K000+000 ", 0.0)],
)
def test_kilometre_posts(text: str, km: float) -> None:
    assert parse_kp(text) == pytest.approx(km)
    assert parse_kp(format_kp(km)) == pytest.approx(km)


@pytest.mark.parametrize("text", ["K12", "north", "inf", ""])
def test_bad_kilometre_post_names_the_text(text: str) -> None:
    with pytest.raises(ValueError, match="kilometre post"):
        parse_kp(text)


def test_station_aggregate_sums_flow_and_weights_speed_by_flow() -> None:
    lanes = [LaneBin(15, 10.0, 90.0, 1), LaneBin(5, 4.0, 60.0, 2), LaneBin(None, None, None)]
    x = aggregate_station(lanes, 30.0, effective_length_m=6.0, free_flow_kmh=90.0)
    assert x.lanes_ok == 2
    assert x.flow == pytest.approx(20 * 120 / 2)
    assert x.speed_kmh == pytest.approx(20 / (15 / 90 + 5 / 60))  # harmonic: space-mean speed
    assert x.occupancy_pct == pytest.approx(7.0)
    assert x.density == pytest.approx(0.07 / 6 * 1000)
    assert x.truck_share == pytest.approx(3 / 20)
    assert not aggregate_station([LaneBin(None, 3.0, None)], 30.0, effective_length_m=6, free_flow_kmh=90).valid


def test_segment_state_from_its_ends() -> None:
    up = StationInterval(1800, 14, 90, 20.0, 0.0, 3)
    down = StationInterval(1800, 14, 90, 22.0, 0.0, 3)
    s = segment_state(up, down, 90.0)
    assert s is not None
    assert s.density == pytest.approx(21.0)
    assert s.speed_kmh == pytest.approx(1800 / 21)
    assert s.los == "D"
    assert s.los_index == 4
    assert s.stations_ok == 2
    alone = segment_state(NO_DATA, down, 90.0)
    assert alone is not None
    assert alone.density == pytest.approx(22.0)
    assert alone.stations_ok == 1
    assert segment_state(NO_DATA, NO_DATA, 90.0) is None


def test_queue_tail_moves_upstream_at_the_shock_speed() -> None:
    free = StationInterval(1500, 9, 90, 16.7, 0.0, 3)
    queue = StationInterval(600, 63, 6, 105.0, 0.0, 3)
    # The downstream station just became congested: the tail starts there and moves at
    # (600 - 1500) / (105 - 16.7) = -10.2 km/h, i.e. 85 m per 30-s interval.
    density, front = front_density(None, free, queue, interval_s=30, length_km=2.0, critical=23.3,
                                   was=(False, False))
    assert front == pytest.approx(2.0 - 10.19 * 30 / 3600, abs=1e-3)
    share = front / 2.0
    assert density == pytest.approx(share * 16.7 + (1 - share) * 105.0)


def test_segments_follow_the_direction_of_travel() -> None:
    stations = [("b", 4.0), ("a", 2.0), ("c", 6.0)]
    assert [(s.up, s.down) for s in segments_of("G60", "N", stations)] == [("a", "b"), ("b", "c")]
    south = segments_of("G60", "S", stations, increasing=False)
    assert [(s.up, s.down, s.name) for s in south] == [("c", "b", "K006+000-K004+000"),
                                                      ("b", "a", "K004+000-K002+000")]


@pytest.mark.parametrize(
    ("lane", "ok"),
    [
        (LaneBin(15, 10.0, 90.0), True),
        (LaneBin(120, 10.0, 90.0), False),  # 14,400 veh/h in one lane: a spike
        (LaneBin(15, 80.0, 90.0), False),  # occupancy disagrees with flow / speed
        (LaneBin(0, 0.0, None), True),
        (LaneBin(None, 10.0, 90.0), False),
        (LaneBin(5, 101.0, 20.0), False),
    ],
)
def test_lane_screening(lane: LaneBin, ok: bool) -> None:
    assert lane_plausible(lane, 30.0, 6.0) is ok


def test_a_station_repeating_its_bin_is_stuck() -> None:
    watch = StuckWatch()
    lanes = [LaneBin(15, 10.0, 90.0), LaneBin(12, 9.0, 85.0)]
    assert not any(watch.stuck("s", lanes) for _ in range(5))  # steady traffic may repeat a few times
    assert watch.stuck("s", lanes)
    assert not watch.stuck("s", [LaneBin(14, 10.0, 90.0), LaneBin(12, 9.0, 85.0)])
    empty = [LaneBin(0, 0.0, None)]
    assert not any(watch.stuck("n", empty) for _ in range(10))


def test_a_queue_reaching_the_upstream_station_is_as_long_as_the_vehicles_stored() -> None:
    free = StationInterval(600, 4.0, 90, 6.7, 0.0, 3)
    queue = StationInterval(600, 63, 6, 105.0, 0.0, 3)
    # 49 veh/lane stored between free stations at a density step of 98.3 veh/km: 0.5 km of queue.
    density, front = front_density(None, queue, free, interval_s=30, length_km=2.0, critical=23.3,
                                   was=(False, False), stored=49.15)
    assert front == pytest.approx(0.5, abs=0.01)  # a head held by an incident: w = 0
    assert density == pytest.approx(0.25 * 105.0 + 0.75 * 6.7, rel=0.01)
