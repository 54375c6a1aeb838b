"""The Telegram runtime's housekeeping on a timer: each step a job of its own."""

from __future__ import annotations

import asyncio
from datetime import datetime

import pytest

from bot.channels.telegram.runtime import TelegramRuntime
from tests.channels.telegram.conftest import StartBot

pytestmark = pytest.mark.anyio


async def test_a_step_that_keeps_failing_does_not_hold_up_digests_and_escalations(
    start_bot: StartBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    rounds: dict[str, int] = {"closures": 0, "digests": 0}
    enough = asyncio.Event()

    async def broken_closures(self: TelegramRuntime, now: datetime) -> int:
        rounds["closures"] += 1
        raise RuntimeError("a bug in one closure step")

    async def digests(self: TelegramRuntime, now: datetime) -> int:
        rounds["digests"] += 1
        if rounds["digests"] >= 3:
            enough.set()
        return 0

    monkeypatch.setattr(TelegramRuntime, "advance_closures", broken_closures)
    monkeypatch.setattr(TelegramRuntime, "summarise_and_escalate", digests)

    await start_bot(sweep_every=0.01)
    await asyncio.wait_for(enough.wait(), timeout=10)

    assert rounds["closures"] >= 2  # failing every round, and still tried every round
