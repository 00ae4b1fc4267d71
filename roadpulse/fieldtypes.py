"""One InfluxDB type per (measurement, field) across every profile that writes it.

InfluxDB fixes a field's type by the first point it stores (per shard), and refuses every
later point of another type as a `field type conflict`. Two profiles that share a
measurement (`wxt_ascii` and `rws_modbus` both write `weather`) must therefore agree on
the type of each field they share, or one of them loses its readings into the dead letters.
This module finds such disagreements from the profiles alone, before anything runs: a test
holds the shipped catalogue to it, and `roadpulse config check` holds a user's own profiles.

Besides the declared fields, the collector writes `<field>_q` and `<field>_err` (strings)
and `tf_q` (an integer) beside them (docs/data-model.md); a profile whose own field has one
of those names conflicts with them too.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from roadpulse.profiles import AnyProfile

TYPE_NAMES = {"f": "float", "i": "integer", "b": "boolean", "s": "string"}


@dataclass(frozen=True, slots=True)
class Writer:
    """Who writes a field, and as what: one point of one profile."""

    profile: str
    point: str
    type: str

    def __str__(self) -> str:
        return f"{self.profile} ({self.point}: {TYPE_NAMES[self.type]})"


@dataclass(frozen=True, slots=True)
class Conflict:
    measurement: str
    field: str
    first: Writer
    second: Writer

    def __str__(self) -> str:
        return (f"field {self.field!r} of measurement {self.measurement!r} is written as "
                f"{TYPE_NAMES[self.first.type]} by profile {self.first} and as "
                f"{TYPE_NAMES[self.second.type]} by profile {self.second}: InfluxDB stores "
                "only the first type it sees and refuses the other as a field type conflict")


def writers(profile: AnyProfile) -> list[tuple[str, str, Writer]]:
    """(measurement, field, writer) for every field the profile's readings can write."""
    points = profile.points
    rows: list[tuple[str, str, Writer]] = []
    for point in points:
        measurement = point.measurement or profile.measurement
        field = point.field or point.name
        rows.append((measurement, field, Writer(profile.name, point.name, profile.metric_type(point.name))))
        rows.append((measurement, f"{field}_q", Writer(profile.name, f"{point.name} quality", "s")))
        rows.append((measurement, f"{field}_err", Writer(profile.name, f"{point.name} error", "s")))
        rows.append((measurement, "tf_q", Writer(profile.name, "time flags", "i")))
    return rows


def conflicts(profiles: Iterable[AnyProfile]) -> list[Conflict]:
    """Every (measurement, field) written with more than one type: one conflict per field and
    type pair, naming the first writer of each type (in the order the profiles are given)."""
    first_of: dict[tuple[str, str], dict[str, Writer]] = {}
    found: list[Conflict] = []
    for profile in profiles:
        for measurement, field, writer in writers(profile):
            by_type = first_of.setdefault((measurement, field), {})
            if writer.type in by_type:
                continue
            found.extend(Conflict(measurement, field, other, writer) for other in by_type.values())
            by_type[writer.type] = writer
    return found


def check_profiles(mine: list[AnyProfile], folders: list[Path]) -> list[tuple[str, str]]:
    """`config check`'s problems: conflicts that involve one of `mine`, against each other and
    against every profile in `folders` (the file's own folder, then the shipped catalogue; a
    profile name found earlier shadows a later one, as the agent's search path does).

    Files in the folders that are not valid profiles are skipped here: checking them is their
    own `config check`'s job, and a broken neighbour must not hide this file's result.
    """
    from roadpulse.configfile import ConfigError, read_toml
    from roadpulse.profiles import load_model_from

    names = {p.name for p in mine}
    others: list[AnyProfile] = []
    for folder in folders:
        for path in sorted(folder.glob("*.toml")) if folder.is_dir() else []:
            try:
                data = read_toml(path)
                profile = load_model_from(path, data).profile if "driver" in data else None
            except ConfigError:
                continue
            if profile is not None and profile.name not in names:
                names.add(profile.name)
                others.append(profile)
    mine_names = {p.name for p in mine}
    return [(f"{c.measurement}.{c.field}", str(c)) for c in conflicts([*mine, *others])
            if c.first.profile in mine_names or c.second.profile in mine_names]
