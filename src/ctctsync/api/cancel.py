"""Stopping a read promptly: the cancellation signal every wait of the API layer honours.

A run is cancelled (by a user, or because the server shuts down) through a ``should_stop``
callable. The client checks it before each request, and every wait the API layer makes --
the rate limiter's pacing, a retry's backoff, a server's ``Retry-After`` -- sleeps in short
slices and checks it between them, so a cancelled read sends at most the request already
on the wire and never sleeps out a long backoff first.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

StopCheck = Callable[[], bool]
"""True once the read should stop (cheap: called every ``STOP_POLL_SECONDS`` while waiting)."""

STOP_POLL_SECONDS: Final = 0.1
"""How often a wait checks ``should_stop``: the most a cancel waits on a sleeping reader."""


class Cancelled(Exception):  # noqa: N818 - named by what happened, like the api's errors
    """``should_stop()`` asked the read (and the run) to stop. Classifies itself, as a
    ``CtctError`` does: failure type ``cancelled`` (see ``errors.FAILURES``)."""

    failure_type: Final = "cancelled"
    user_message: Final = "The run was cancelled."


def check_stop(should_stop: StopCheck | None) -> None:
    """Raise :class:`Cancelled` if ``should_stop`` says so."""
    if should_stop is not None and should_stop():
        raise Cancelled


def pause(
    seconds: float, sleep: Callable[[float], None], should_stop: StopCheck | None = None
) -> None:
    """Sleep ``seconds``; with ``should_stop``, in slices of ``STOP_POLL_SECONDS``, raising
    :class:`Cancelled` as soon as it says stop. Without it, one plain ``sleep`` (so tests
    with a recording ``sleep`` see the delays the policy chose)."""
    if should_stop is None:
        if seconds > 0:
            sleep(seconds)
        return
    remaining = seconds
    while True:
        check_stop(should_stop)
        if remaining <= 0:
            return
        step = min(STOP_POLL_SECONDS, remaining)
        sleep(step)
        remaining -= step


__all__ = ["STOP_POLL_SECONDS", "Cancelled", "StopCheck", "check_stop", "pause"]
