"""Self-metrics rendering: Prometheus text, histograms (pure, no services)."""

from __future__ import annotations

import pytest

from collector.metrics import Histogram, Stats, prometheus_text


@pytest.mark.parametrize(
    ("observed", "buckets", "total"),
    [
        ([], [0, 0, 0, 0], 0.0),
        ([0.5], [0, 1, 1, 1], 0.5),  # a value on a bound counts in that bucket (le = less or equal)
        ([0.0625, 0.25, 0.75, 99.0], [1, 2, 3, 4], 100.0625),
        ([2.0, 2.0], [0, 0, 2, 2], 4.0),
    ],
)
def test_histogram_buckets_are_cumulative(observed: list[float], buckets: list[int], total: float) -> None:
    histogram = Histogram((0.1, 0.5, 2.0))
    for value in observed:
        histogram.observe(value)
    lines = histogram.prometheus("x", 'c="a"')
    assert lines[:4] == [f'x_bucket{{c="a",le="{le}"}} {n}' for le, n in zip(("0.1", "0.5", "2.0", "+Inf"), buckets,
                                                                            strict=True)]
    assert lines[4] == f'x_sum{{c="a"}} {total!r}'
    assert lines[5] == f'x_count{{c="a"}} {len(observed)}'


def test_prometheus_text_has_counters_gauges_and_histograms() -> None:
    stats = Stats(readings_written=7, spool_depth=2)
    stats.write_latency.observe(0.02)
    stats.batch_size.observe(300)
    text = prometheus_text(stats, "c1")
    lines = text.splitlines()
    assert 'roadpulse_collector_readings_written_total{collector="c1"} 7.0' in lines
    assert "# TYPE roadpulse_collector_readings_written_total counter" in lines
    assert 'roadpulse_collector_spool_depth{collector="c1"} 2.0' in lines
    assert "# TYPE roadpulse_collector_spool_depth gauge" in lines
    assert "# TYPE roadpulse_collector_write_seconds histogram" in lines
    assert 'roadpulse_collector_write_seconds_bucket{collector="c1",le="0.025"} 1' in lines
    assert 'roadpulse_collector_write_seconds_bucket{collector="c1",le="0.01"} 0' in lines
    assert 'roadpulse_collector_batch_lines_bucket{collector="c1",le="500.0"} 1' in lines
    assert 'roadpulse_collector_batch_lines_count{collector="c1"} 1' in lines
    # Every sample line is `name{labels} number`.
    for line in lines:
        if not line.startswith("#"):
            float(line.rsplit(" ", 1)[1])
    assert "write_latency" not in stats.numbers()
