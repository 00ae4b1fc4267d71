"""Where the shipped profiles and scenarios are, in a checkout and in an installed wheel.

In a checkout (and an editable install) they are the repository's config/ folder; a wheel
installs the same files under <prefix>/share/roadpulse/ (see pyproject's data-files).
"""

from __future__ import annotations

import sys
from pathlib import Path

_CHECKOUT = Path(__file__).resolve().parent.parent / "config"
_INSTALLED = Path(sys.prefix) / "share" / "roadpulse"


def shipped_dir(kind: str) -> Path:
    """`profiles` or `scenarios`: the checkout's folder when present, else the installed one."""
    checkout = _CHECKOUT / kind
    return checkout if checkout.is_dir() else _INSTALLED / kind
