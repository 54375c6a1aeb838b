"""Background jobs that run on a timer: retention purges, closure steps, chat sweeps."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from bot.services.dispatcher import DATABASE_DOWN

log = logging.getLogger(__name__)


async def repeat(
    work: Callable[[], Awaitable[object]],
    *,
    every: float,
    what: str,
    stop: asyncio.Event | None = None,
) -> None:
    """Run ``work`` now and then every ``every`` seconds until ``stop`` is set (or the task
    is cancelled).

    A database outage is logged and waited out; any other error is logged with its traceback
    and the next round goes ahead, so one bad round never ends the job for good.
    """
    stop = stop or asyncio.Event()
    while not stop.is_set():
        try:
            await work()
        except DATABASE_DOWN as error:
            log.error("%s skipped: database unavailable (%s)", what, error)
        except Exception:
            log.exception("%s failed", what)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=every)
