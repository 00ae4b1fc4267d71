"""The parser against a real influxd 1.6.7: what it says is stored is what influxd stored.

Each body goes to a fresh database of a private influxd, alone. For every body: influxd
answers 204 exactly when the parser reports no error, and stores exactly the parser's
points; when strict mode accepts a body, influxd stores exactly strict mode's points (strict
never claims a point influxd would not store as said). Bounded: ~100 hand-written bodies and
150 generated ones, a few seconds.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from roadpulse.services import Influxd
from tests.lineproto.corpus import CASES, INFLUXD_INCONSISTENT
from tests.lineproto.stored import Fact, facts_of, write_and_read
from tests.lineproto.strategies import bodies
from tests.lineproto.strict_parser import parse

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Influxd]:
    influxd = Influxd(Path(tmp_path_factory.mktemp("influxd")))
    influxd.start()
    try:
        yield influxd
    finally:
        influxd.stop()


def _untimed(facts: set[Fact]) -> set[Fact]:
    return {(*fact[:5], None) for fact in facts}


def check(server: Influxd, body: str) -> None:
    status, error, stored = write_and_read(server, body.encode("utf-8"))
    lenient, strict = parse(body), parse(body, strict=True)
    expected, claimed = facts_of(lenient), facts_of(strict)
    if any(point.time is None for point in lenient.points):  # influxd's clock: compare all but the time
        stored, expected, claimed = _untimed(stored), _untimed(expected), _untimed(claimed)
    if strict.ok:
        assert status == 204, error
        assert stored == claimed
    if body in INFLUXD_INCONSISTENT:
        assert not strict.ok
        return
    assert status == (500 if lenient.engine_errors else 204 if lenient.ok else 400), (error, lenient.errors)
    assert stored == expected, (error, lenient.errors)


@pytest.mark.parametrize("body", CASES)
def test_hand_written_corpus(server: Influxd, body: str) -> None:
    check(server, body)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=bodies)
def test_generated_bodies(server: Influxd, body: str) -> None:
    check(server, body)
