"""How every long-running command stops: `agent run`, `collector run`, `sim run`, `demo`.

One policy, in one place, because each command used to install its own signal handlers and
a graceful stop that waited on something stuck (a drain, an ack) never ended, while further
SIGTERMs only set an event that was already set:

1. the first SIGINT/SIGTERM sets the command's `stop` event: the graceful stop (commit the
   queue, publish a death, drain) gets `grace_s` seconds;
2. after that, or at a second signal, the command's task is cancelled;
3. if the process is still alive `EXIT_GRACE_S` later (a thread blocked in I/O keeps
   asyncio.run from returning), it exits hard. Private services die with it (services.py
   starts them with the parent-death signal).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

STOP_GRACE_S = 5.0
EXIT_GRACE_S = 3.0
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class CancelledBySignalError(Exception):
    """The command was cancelled after a signal; `code` is the exit status to return."""

    def __init__(self, code: int) -> None:
        super().__init__(f"stopped by signal (exit {code})")
        self.code = code


def _hard_exit_after(seconds: float, code: int) -> None:
    def _exit() -> None:
        log.error("still running %.0f s after the stop signal: exiting now", seconds)
        logging.shutdown()
        os._exit(code)

    timer = threading.Timer(seconds, _exit)
    timer.daemon = True  # a process that ends on time is not held back by the timer
    timer.name = "roadpulse.hard-exit"
    timer.start()


async def _supervised(main: Callable[[asyncio.Event], Awaitable[int | None]], grace_s: float) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    work = asyncio.ensure_future(main(stop))
    received: list[int] = []

    def cancel(reason: str) -> None:
        if not work.done():
            log.warning("cancelling: %s", reason)
            work.cancel()

    def on_signal(signum: int) -> None:
        received.append(signum)
        if len(received) == 1:
            log.info("stop requested", extra={"signal": signal.Signals(signum).name, "grace_s": grace_s})
            stop.set()
            loop.call_later(grace_s, cancel, f"the graceful stop took more than {grace_s:g} s")
            _hard_exit_after(grace_s + EXIT_GRACE_S, 128 + signum)
        else:
            cancel("a second stop signal")

    for signum in STOP_SIGNALS:
        loop.add_signal_handler(signum, on_signal, signum)
    try:
        result = await work
    except asyncio.CancelledError:
        if not received:
            raise
        raise CancelledBySignalError(128 + received[0]) from None
    finally:
        for signum in STOP_SIGNALS:
            loop.remove_signal_handler(signum)
    return 0 if result is None else result


def run_until_stopped(main: Callable[[asyncio.Event], Awaitable[int | None]], *,
                      grace_s: float = STOP_GRACE_S) -> int:
    """asyncio.run(main(stop)) under the stop policy above; the exit status of the command.

    `main` must return once `stop` is set; it is cancelled if it does not within `grace_s`.
    """
    try:
        return asyncio.run(_supervised(main, grace_s))
    except CancelledBySignalError as exc:
        return exc.code

