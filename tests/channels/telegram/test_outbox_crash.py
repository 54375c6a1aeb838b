"""Killing dispatchers at random points loses no message and seldom sends one twice.

Two dispatchers (as if in two processes) deliver 1,000 queued alerts to the fake Bot API through
real python-telegram-bot. At random points of the run one of them is killed (its task
cancelled): some kills come right after a send succeeded and before it could be marked sent,
the worst moment; the others a random few milliseconds after a send, wherever the dispatcher
then is (marking, claiming, sending the next, idle). A new dispatcher takes its place at once,
and rows the dead one held are claimed again when their lease runs out.

A kill duplicates at most the message in flight, so duplicates are bounded by the kills: eight
kills over 1,000 alerts (one every 125) keep them under 1%.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from telegram import Bot

from bot.channels.telegram.delivery import CHANNEL, TelegramSender
from bot.services.dispatcher import Dispatcher
from bot.services.outbox import enqueue
from bot.store.db import transaction
from bot.store.models import OutboxMessage, OutboxStatus
from bot.store.repositories.outbox import OutboxRepository
from tests.channels.telegram.support import TOKEN
from tests.database import cancelled_queries_tolerated
from tests.fakes import telegram_updates as tu
from tests.fakes.telegram_api import FakeTelegramAPI

pytestmark = pytest.mark.anyio
Sessions = async_sessionmaker[AsyncSession]

ALERTS = 1000
STAFF = [tu.user(7000 + i, "Staff", f"Member{i}") for i in range(20)]
PROCESSES = 2
# Long enough that a live dispatcher slowed down by a busy machine keeps its lease (a lapsed lease
# of a live one may send a row twice too: that is not what this test counts).
LEASE = timedelta(seconds=1)
KILLS_AFTER_SEND, KILLS_AT_RANDOM = 2, 6
DEADLINE = 60.0


@dataclass
class Killer:
    """Decides, by the number of sends so far, when a dispatcher dies."""

    after_send: set[int]
    at_random: set[int]
    rng: random.Random
    sends: int = 0
    kills: list[str] = field(default_factory=list)

    @classmethod
    def planned(cls, seed: int) -> Killer:
        rng = random.Random(seed)
        points = rng.sample(range(1, ALERTS), KILLS_AFTER_SEND + KILLS_AT_RANDOM)
        return cls(set(points[:KILLS_AFTER_SEND]), set(points[KILLS_AFTER_SEND:]), rng)


class MortalSender:
    """The real sender, wrapped so that the killer can strike its dispatcher."""

    def __init__(self, inner: TelegramSender, killer: Killer) -> None:
        self.inner = inner
        self.killer = killer
        self.dispatcher_task: asyncio.Task[None] | None = None

    async def send(self, message: OutboxMessage) -> str | None:
        delivered = await self.inner.send(message)
        killer, task = self.killer, self.dispatcher_task
        assert task is not None
        killer.sends += 1
        if killer.sends in killer.after_send:
            killer.kills.append("after send")
            task.cancel()
            await asyncio.Event().wait()  # cancelled here, before the row is marked sent
        if killer.sends in killer.at_random:
            killer.kills.append("at random")
            asyncio.get_running_loop().call_later(killer.rng.uniform(0, 0.01), task.cancel)
        return delivered


async def a_process(sessions: Sessions, bot: Bot, killer: Killer, done: asyncio.Event) -> None:
    """A dispatcher, replaced by a new one whenever it is killed, until everything is sent."""
    while True:
        sender = MortalSender(TelegramSender(bot), killer)
        # A claim that dies with its dispatcher counts as an attempt; the default limit of 8
        # is for messages that keep killing their dispatcher, not for a test that does.
        dispatcher = Dispatcher(
            sessions, {CHANNEL: sender}, lease=LEASE, max_attempts=100, poll_interval=0.02
        )
        task = asyncio.create_task(dispatcher.run_forever(done))
        sender.dispatcher_task = task
        with contextlib.suppress(asyncio.CancelledError):
            await task
        if done.is_set():
            return


async def test_killed_dispatchers_lose_nothing_and_seldom_duplicate(
    api: FakeTelegramAPI, sessions: Sessions
) -> None:
    for person in STAFF:
        api.add_chat(tu.private_chat(person))
    async with transaction(sessions) as session:
        for number in range(ALERTS):
            await enqueue(
                session,
                key=f"alert:{number}",
                channel=CHANNEL,
                recipient=str(STAFF[number % len(STAFF)]["id"]),
                text=f"alert #{number}",
                purpose="alert",
                buttons=[("Acknowledge", f"flag:{number}:acknowledge")],
            )

    killer = Killer.planned(seed=20261124)
    done = asyncio.Event()
    started = time.monotonic()
    with cancelled_queries_tolerated():
        async with Bot(TOKEN, base_url=api.base_url) as bot:
            processes = [
                asyncio.create_task(a_process(sessions, bot, killer, done))
                for _ in range(PROCESSES)
            ]
            try:
                async with asyncio.timeout(DEADLINE):
                    while (await counts(sessions))[OutboxStatus.SENT] < ALERTS:
                        await asyncio.sleep(0.05)
            finally:
                done.set()
                await asyncio.gather(*processes)
    elapsed = time.monotonic() - started

    assert await counts(sessions) == {
        OutboxStatus.PENDING: 0,
        OutboxStatus.SENDING: 0,
        OutboxStatus.SENT: ALERTS,
        OutboxStatus.FAILED: 0,
    }
    received = Counter(m.text for person in STAFF for m in api.sent_messages(person["id"]))
    assert set(received) == {f"alert #{number}" for number in range(ALERTS)}, "none lost"
    duplicates = sum(count - 1 for count in received.values())
    kills = Counter(killer.kills)
    print(
        f"\n{ALERTS} alerts in {elapsed:.1f}s, {dict(kills)} kills: {duplicates} duplicates, "
        f"{sum(received.values())} messages received"
    )
    assert kills == {"after send": KILLS_AFTER_SEND, "at random": KILLS_AT_RANDOM}
    assert duplicates >= KILLS_AFTER_SEND, "a kill after a send is a duplicate"
    assert duplicates <= len(killer.kills), "a kill duplicates at most the message in flight"
    assert duplicates < ALERTS / 100


async def test_a_dispatcher_killed_while_idle_stays_dead() -> None:
    """Wherever in its idle loop the kill lands (each turn of the event loop in turn), the
    dispatcher ends: it does not take its own cancellation for one of its helpers'."""
    for turns in range(12):
        stop = asyncio.Event()
        dispatcher = Dispatcher(async_sessionmaker(), {}, poll_interval=0)  # no database needed
        task = asyncio.create_task(dispatcher.run_forever(stop))
        for _ in range(turns):
            await asyncio.sleep(0)
        task.cancel()
        await asyncio.wait([task], timeout=1)
        stop.set()  # a dispatcher that survived the kill ends now, rather than after the test
        await asyncio.wait([task], timeout=1)
        assert task.cancelled(), f"killed after {turns} turns of the event loop, it carried on"


async def counts(sessions: Sessions) -> dict[OutboxStatus, int]:
    async with sessions() as session:
        return await OutboxRepository(session).counts()
