"""Driver tests share helper modules (peers, known registers) that sit next to them.

pytest runs with --import-mode=importlib, which does not put test folders on
sys.path, so this folder is added once here.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = str(Path(__file__).parent)
if HERE not in sys.path:
    sys.path.insert(0, HERE)
