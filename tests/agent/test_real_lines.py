"""The ASCII parsers against lines from public documentation and captures (tests/agent/real_lines.py).

Every value stored as good is in its declared unit and is its declared quantity: converted
exactly when the device wrote another unit of it, bad `unit:<letter>` otherwise, and never
stored at all from a sentence that carries another quantity.
"""

from __future__ import annotations

import pytest

from agent.codec.frames import frame_parser
from roadpulse.profiles import FrameField
from roadpulse.profiles.units import LETTERS, UNITS, resolve
from tests.agent.real_lines import CASES, INHG_HPA, KN, MMHG_HPA, MPH, Case, f_to_c


def _label(case: Case) -> str:
    return f"{case.source}: {case.line[:40]}"


@pytest.mark.parametrize("case", CASES, ids=_label)
def test_real_lines(case: Case) -> None:
    fields = [FrameField.model_validate(spec) for spec in case.fields]
    parser = frame_parser(case.parser, fields, None)
    values = parser.parse(case.line.encode("ascii"))
    if case.refused is not None:
        assert values == {}
        assert dict(parser.counters) == {case.refused: 1}
        return
    got: dict[str, object] = {}
    for name, value in values.items():
        got[name] = f"bad:{value.reason}" if value.reason else value.value
    assert set(got) == set(case.expected), got
    for name, want in case.expected.items():
        if isinstance(want, float):
            assert isinstance(got[name], float), (name, got[name])
            assert got[name] == pytest.approx(want, rel=1e-12, abs=1e-12), name
        else:
            assert got[name] == want, name


def test_the_corpus_covers_every_unit_letter_and_sentence_field() -> None:
    """Each conversion and each refusal the issue names has a real or documented line behind it."""
    text = " ".join(c.line for c in CASES)
    for letter_value in ["74.6F", "1.0133B", "29.92I", "760.0M", "101330P", "13.4N", "3.6K", "10.0S"]:
        assert letter_value in text
    for mwv in [",R,", ",T,", ",N,", ",K,", ",M,", ",V*"]:
        assert any(c.parser == "nmea" and "MWV" in c.line and mwv in c.line for c in CASES), mwv
    assert {c.refused for c in CASES} == {None, "checksum", "parse"}


# ---- the conversion table on its own: exact definitions, both ways

CONVERSIONS = [
    # (letter, stored unit, device value, stored value): worked out by hand from the definitions
    ("N", "m/s", 1.0, KN), ("N", "m/s", 13.41, 6.8987), ("K", "m/s", 36.0, 10.0), ("S", "m/s", 1.0, MPH),
    ("M", "m/s", 4.2, 4.2), ("M", "kn", 1.0, 1 / KN), ("K", "kn", 1.852, 1.0 / 3.6 * 1.852 / KN),
    ("F", "°C", 212.0, 100.0), ("F", "°C", -40.0, -40.0), ("F", "°C", 74.6, 23.666666666666668),
    ("C", "°F", 100.0, 212.0),
    ("B", "hPa", 1.0, 1000.0), ("I", "hPa", 29.92, 1013.2075), ("M", "hPa", 760.0, 1013.2501444),
    ("P", "hPa", 101325.0, 1013.25),
    ("H", "hPa", 1013.2, 1013.2), ("H", "bar", 1000.0, 1.0),
    ("P", "%", 55.0, 55.0), ("D", "°", 271.0, 271.0), ("I", "mm", 1.0, 25.4), ("I", "mm/h", 0.5, 12.7),
    ("s", "s", 30.0, 30.0), ("N", "V", 12.0, 12.0),
]


@pytest.mark.parametrize(("letter", "unit", "sent", "stored"), CONVERSIONS)
def test_exact_conversions(letter: str, unit: str, sent: float, stored: float) -> None:
    resolved = resolve(letter, unit=unit, declared=None)
    assert resolved.reason == ""
    value = resolved.convert(sent) if resolved.convert else sent
    assert value == pytest.approx(stored, rel=1e-7 if unit == "hPa" and letter in "IM" else 1e-12)


def test_inch_and_millimetre_of_mercury_are_the_conventional_ones() -> None:
    # NIST SP 811: 1 inHg (conventional) = 3.386 389 E+03 Pa, 1 mmHg (conventional) = 1.333 224 E+02 Pa;
    # not the torr (101325/760 Pa), which differs in the 7th digit.
    assert pytest.approx(33.86389, rel=2e-7) == INHG_HPA
    assert pytest.approx(1.333224, rel=1e-6) == MMHG_HPA
    assert pytest.approx(1013.25, rel=1e-8) != MMHG_HPA * 760
    assert f_to_c(98.6) == pytest.approx(37.0)


@pytest.mark.parametrize(("letter", "unit"), [
    ("K", "°C"), ("C", "m/s"), ("D", "m/s"), ("H", "%"), ("M", "°"), ("X", "hPa"), ("P", "°C"), ("B", "°C"),
])
def test_a_letter_of_another_quantity_is_refused(letter: str, unit: str) -> None:
    assert resolve(letter, unit=unit, declared=None).reason == f"unit:{letter}"


def test_every_letter_of_every_quantity_converts_to_every_unit_of_it() -> None:
    for quantity, letters in LETTERS.items():
        targets = [u for u, known in UNITS.items() if known.quantity == quantity]
        for letter in letters:
            for target in targets:
                assert resolve(letter, unit=target, declared=None).reason == "", (quantity, letter, target)


def test_unknown_stored_units_check_only_the_declared_letter() -> None:
    assert resolve("X", unit="lux", declared=None).reason == ""
    assert resolve("X", unit="lux", declared="X").reason == ""
    assert resolve("Y", unit="lux", declared="X").reason == "unit:Y"
    assert resolve(None, unit="lux", declared="X").reason == "unit:none"
    assert resolve(None, unit="lux", declared=None).reason == ""
    # A format without units (a regex group) cannot be checked: taken as written.
    assert resolve(None, unit="hPa", declared=None, expected=False).reason == ""
