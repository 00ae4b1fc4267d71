"""What every tool prints: strict JSON rows or text, and a quiet end when the reader goes away."""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
# What a shell reports for a tool killed by SIGPIPE (`yes | head`): the reader went away.
EXIT_BROKEN_PIPE = 128 + signal.SIGPIPE
Handler = Callable[[argparse.Namespace], int]


def jsonable(obj: Any) -> Any:
    """NaN and infinity are not JSON: any left in a row become null (rows say why, see json_value)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [jsonable(v) for v in obj]
    return obj


def json_value(value: Any) -> dict[str, Any]:
    """`value` for a JSON row. A float register holding NaN or infinity has no JSON value:
    it is null, bad, with the agent's reason for it (`invalid`) and what was decoded (`raw`)."""
    if isinstance(value, float) and not math.isfinite(value):
        return {"value": None, "quality": "bad", "reason": "invalid", "raw": str(value)}
    return {"value": value}


def emit(obj: object, as_json: bool) -> None:
    # allow_nan=False: a NaN that slipped past _jsonable fails here instead of printing invalid JSON.
    print(json.dumps(jsonable(obj), default=str, allow_nan=False) if as_json else obj, flush=True)


def quiet_on_broken_pipe(handler: Handler) -> Handler:
    """`roadpulse agent test | head`: when the reader goes away, stop quietly, as Unix tools do."""

    @functools.wraps(handler)
    def run(args: argparse.Namespace) -> int:
        try:
            code = handler(args)
            sys.stdout.flush()  # inside the try: a broken pipe found at exit would print a traceback
        except BrokenPipeError:
            # Python flushes stdout again at exit; point it at /dev/null so that finds nothing to complain about.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
            return EXIT_BROKEN_PIPE
        return code

    return run
