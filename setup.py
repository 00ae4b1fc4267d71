"""Only the collector's hot loop in C; everything else about the package is in pyproject.toml.

Optional: an install without a C compiler still works and runs the same logic in Python
(collector/decode.py), only slower; the collector logs which loop it runs.
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("collector._fastlines", ["collector/_fastlines.c"], optional=True)])
