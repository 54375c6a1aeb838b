"""repeat(): the timer loop every background job runs on."""

from __future__ import annotations

import asyncio
import logging

import pytest

from bot.periodic import repeat

pytestmark = pytest.mark.anyio


async def test_a_bug_or_an_outage_in_one_round_does_not_end_the_job(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stop = asyncio.Event()
    rounds: list[int] = []

    async def work() -> None:
        rounds.append(len(rounds) + 1)
        if len(rounds) == 1:
            raise RuntimeError("a bug in round one")
        if len(rounds) == 2:
            raise ConnectionRefusedError("database down")
        stop.set()

    with caplog.at_level(logging.ERROR, logger="bot.periodic"):
        await asyncio.wait_for(repeat(work, every=0.001, what="the job", stop=stop), timeout=5)

    assert rounds == [1, 2, 3]
    assert [r.getMessage() for r in caplog.records] == [
        "the job failed",
        "the job skipped: database unavailable (database down)",
    ]
    assert caplog.records[0].exc_info is not None  # the bug keeps its traceback


async def test_stopping_ends_the_wait_at_once_and_cancelling_ends_the_job() -> None:
    stop = asyncio.Event()
    rounds = 0

    async def work() -> None:
        nonlocal rounds
        rounds += 1

    job = asyncio.create_task(repeat(work, every=3600, what="hourly", stop=stop))
    await asyncio.sleep(0.01)
    stop.set()
    await asyncio.wait_for(job, timeout=5)  # not an hour
    assert rounds == 1

    forever = asyncio.create_task(repeat(work, every=3600, what="no stop event"))
    await asyncio.sleep(0.01)
    forever.cancel()
    with pytest.raises(asyncio.CancelledError):
        await forever
    assert rounds == 2
