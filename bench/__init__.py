"""roadpulse benchmarks: `python -m bench` runs every section of issue #13 (see docs/performance.md).

The harness drives the system only through its public entry points (the `roadpulse`
CLI, `roadpulse.services`, config files, the collector's /healthz and /metrics), so it
keeps working while the collector and agent change inside.
"""
