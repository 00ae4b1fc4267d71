"""Grafana dashboards and alert rules as code (grafana-foundation-sdk), for `roadpulse[dashboards]`.

`python -m roadpulse.dashboards` writes deploy/grafana/; docs/operations.md describes them.
"""
