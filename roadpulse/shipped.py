"""Files the commands need at run time, found through the installed package, not the checkout.

They live in `roadpulse/data/` (package data in the wheel). In a checkout that folder holds
symlinks to `config/profiles`, `config/scenarios` and `deploy/mosquitto.conf`, so the files
keep one home each and an installed wheel carries copies of them.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def shipped_path(name: str) -> Path:
    """`profiles`, `scenarios`, `mosquitto.conf`, `templates/...`: a path inside the package's data.

    Wheels install as plain files, so the resource is a real path (zip imports are not supported).
    """
    resource = files("roadpulse") / "data" / name
    if not isinstance(resource, Path):
        raise RuntimeError(f"roadpulse must be installed as files, not from a zip: {resource}")
    return resource


def shipped_dir(kind: str) -> Path:
    """`profiles` or `scenarios`: the folder of shipped files of that kind."""
    return shipped_path(kind)
