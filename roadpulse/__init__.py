"""Shared pieces of roadpulse: the wire protocol, config loading, local services and the CLI."""

__version__ = "0.1.0"
