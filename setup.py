"""Only the collector's hot loop in C; everything else about the package is in pyproject.toml.

Optional: an install without a C compiler still works and runs the same logic in Python
(collector/decode.py), only slower; the collector logs which loop it runs.
"""

import os

from setuptools import Extension, setup

# ROADPULSE_PURE=1 builds a pure wheel (py3-none-any) for gateways: the agent never uses the C loop,
# and one wheel then installs on every CPU (roadpulse provision wheelhouse).
PURE = os.environ.get("ROADPULSE_PURE") == "1"
setup(ext_modules=[] if PURE else [Extension("collector._fastlines", ["collector/_fastlines.c"], optional=True)])
