"""Load a TOML file into a pydantic model, with errors that name the file, the key and the reason.

Start-up and `roadpulse config check` both go through here, so a config that
passes the check is exactly a config that starts.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

M = TypeVar("M", bound=BaseModel)


class Strict(BaseModel):
    """Base for every config model: unknown keys are errors, values are frozen after load."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ConfigError(Exception):
    """A config file that cannot be used. `problems` holds (key, reason) pairs."""

    def __init__(self, path: Path | str, problems: list[tuple[str, str]]) -> None:
        self.path = str(path)
        self.problems = problems
        lines = [f"{self.path}: {key}: {reason}" for key, reason in problems]
        super().__init__("\n".join(lines))


class LocatedValueError(ValueError):
    """Raised by a model validator to blame one key inside the model, e.g. ("devices", 2, "bus").

    pydantic places a validator's error at the model it validates; `errors_of` appends `loc`,
    so a cross-check (a device naming an unknown bus) is reported where the mistake is.
    """

    def __init__(self, loc: tuple[int | str, ...], reason: str) -> None:
        super().__init__(reason)
        self.loc = loc


def _key(loc: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        else:
            parts.append(("." if parts else "") + item)
    return "".join(parts) or "(top level)"


def errors_of(exc: ValidationError) -> list[tuple[str, str]]:
    problems = []
    for err in exc.errors():
        # Discriminated unions add the tag to the location; it is noise for a person reading the key.
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        reason = err["msg"]
        if err["type"] == "extra_forbidden":
            reason = "unknown key"
        located = err.get("ctx", {}).get("error")
        if isinstance(located, LocatedValueError):
            loc, reason = loc + located.loc, str(located)
        problems.append((_key(loc), reason))
    return problems


def read_toml(path: Path | str) -> dict[str, object]:
    p = Path(path)
    try:
        with p.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(p, [("(file)", "no such file")]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(p, [("(syntax)", str(exc))]) from None
    except OSError as exc:
        raise ConfigError(p, [("(file)", exc.strerror or str(exc))]) from None


def load_model(path: Path | str, model: type[M], context: dict[str, object] | None = None) -> M:
    """Parse and validate one file. `context` reaches validators (e.g. the file's folder)."""
    data = read_toml(path)
    ctx = {"config_path": Path(path), **(context or {})}
    try:
        return model.model_validate(data, context=ctx)
    except ValidationError as exc:
        raise ConfigError(path, errors_of(exc)) from None


def read_secret(file: Path | None, env: str | None) -> str | None:
    """Secrets live in files or environment variables that configs point to, never inline."""
    import os

    if file is not None:
        return Path(file).read_text().strip()
    if env is not None:
        value = os.environ.get(env)
        if value is None:
            raise KeyError(f"environment variable {env} is not set")
        return value
    return None
