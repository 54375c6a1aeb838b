"""The dispatcher, with an in-memory sender: retries, backoff, giving up, leases, order, running."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import Counter
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.services import dispatcher as dispatcher_module
from bot.services.dispatcher import Dispatcher, PermanentFailure, RetryLater, backoff
from bot.services.outbox import enqueue
from bot.store.db import transaction
from bot.store.models import OutboxMessage, OutboxStatus
from bot.store.repositories.outbox import OutboxRepository
from tests.database import cancelled_queries_tolerated
from tests.factories import NOW

pytestmark = pytest.mark.anyio
Sessions = async_sessionmaker[AsyncSession]
SECOND = timedelta(seconds=1)
SLACK = timedelta(seconds=2)
"""How far the dispatcher's clock may have moved on from the ``now`` it was given."""


class FakeSender:
    """Records what it sends; ``failures`` by idempotency key are raised first, in order."""

    def __init__(
        self, failures: dict[str, list[Exception]] | None = None, delay: float = 0.0
    ) -> None:
        self.failures = failures or {}
        self.delay = delay
        self.sent: list[OutboxMessage] = []

    async def send(self, message: OutboxMessage) -> str | None:
        if self.delay:
            await asyncio.sleep(self.delay)
        failures = self.failures.get(message.idempotency_key)
        if failures:
            raise failures.pop(0)
        self.sent.append(message)
        return f"m{len(self.sent)}"

    @property
    def keys(self) -> list[str]:
        return [message.idempotency_key for message in self.sent]


async def queue(sessions: Sessions, *keys: str, channel: str = "telegram") -> list[OutboxMessage]:
    """Messages named "<recipient><n>", e.g. "a1", "a2", "b1", to recipients "a", "b"."""
    rows = []
    async with transaction(sessions) as session:
        for key in keys:
            row = await enqueue(
                session,
                key=key,
                channel=channel,
                recipient=key.rstrip("0123456789"),
                text=f"text of {key}",
                purpose="alert",
                now=NOW,
            )
            rows.append(row)
    return rows


async def rows(sessions: Sessions) -> dict[str, OutboxMessage]:
    async with sessions() as session:
        return {r.idempotency_key: r for r in await OutboxRepository(session).listing()}


def dispatcher(sessions: Sessions, sender: FakeSender, **options: Any) -> Dispatcher:
    return Dispatcher(sessions, {"telegram": sender}, **options)


def about(moment: datetime | None, expected: datetime) -> bool:
    return moment is not None and expected <= moment < expected + SLACK


# -- delivering -------------------------------------------------------------------------------


async def test_due_messages_are_sent_and_marked_sent(sessions: Sessions) -> None:
    await queue(sessions, "a1", "b1", "c1")
    sender = FakeSender()
    assert await dispatcher(sessions, sender).deliver_due(NOW) == 3
    assert sender.keys == ["a1", "b1", "c1"]
    stored = await rows(sessions)
    assert {r.status for r in stored.values()} == {OutboxStatus.SENT}
    assert [stored[k].delivered_id for k in ("a1", "b1", "c1")] == ["m1", "m2", "m3"]
    assert about(stored["a1"].sent_at, NOW)
    assert await dispatcher(sessions, sender).deliver_due(NOW) == 0
    assert len(sender.sent) == 3


async def test_a_batch_is_at_most_batch_rows(sessions: Sessions) -> None:
    await queue(sessions, *(f"r{n}" for n in range(5)))
    sender = FakeSender()
    assert await dispatcher(sessions, sender, batch=2).deliver_due(NOW) == 2
    assert sender.keys == ["r0", "r1"]


def test_backoff_doubles_from_a_second_up_to_ten_minutes() -> None:
    assert [backoff(n).total_seconds() for n in range(1, 12)] == [
        1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 600
    ]  # fmt: skip
    assert backoff(1000) == timedelta(minutes=10)
    assert backoff(1, retry_after=timedelta(seconds=30)) == timedelta(seconds=30)
    assert backoff(3, retry_after=timedelta(seconds=1)) == timedelta(seconds=4)


async def test_a_transient_failure_is_retried_with_backoff(sessions: Sessions) -> None:
    await queue(sessions, "a1")
    sender = FakeSender({"a1": [RetryLater(None, "timed out"), RetryLater(None, "502")]})
    dispatch = dispatcher(sessions, sender)

    await dispatch.deliver_due(NOW)
    row = (await rows(sessions))["a1"]
    assert (row.status, row.attempts, row.error) == (OutboxStatus.PENDING, 1, "timed out")
    assert about(row.next_attempt_at, NOW + SECOND)

    assert await dispatch.deliver_due(NOW + SECOND / 2) == 0, "not due yet"
    assert await dispatch.deliver_due(NOW + SLACK) == 1
    row = (await rows(sessions))["a1"]
    assert (row.attempts, row.error) == (2, "502")
    assert about(row.next_attempt_at, NOW + SLACK + 2 * SECOND)

    assert await dispatch.deliver_due(NOW + 2 * SLACK + 2 * SECOND) == 1
    row = (await rows(sessions))["a1"]
    assert (row.status, row.attempts, row.error) == (OutboxStatus.SENT, 3, None)
    assert sender.keys == ["a1"]


async def test_the_servers_retry_after_is_honoured_when_longer(sessions: Sessions) -> None:
    await queue(sessions, "a1")
    sender = FakeSender({"a1": [RetryLater(timedelta(seconds=35), "429 retry after 35")]})
    await dispatcher(sessions, sender).deliver_due(NOW)
    row = (await rows(sessions))["a1"]
    assert about(row.next_attempt_at, NOW + timedelta(seconds=35))


async def test_a_message_is_given_up_after_max_attempts(
    sessions: Sessions, caplog: pytest.LogCaptureFixture
) -> None:
    await queue(sessions, "a1")
    sender = FakeSender({"a1": [RetryLater(None, "down")] * 3})
    dispatch = dispatcher(sessions, sender, max_attempts=3)
    for minutes in range(3):
        assert await dispatch.deliver_due(NOW + timedelta(minutes=minutes)) == 1
    row = (await rows(sessions))["a1"]
    assert (row.status, row.attempts) == (OutboxStatus.FAILED, 3)
    assert row.error == "gave up after 3 attempts: down"
    assert "failed for good: gave up after 3 attempts" in caplog.text
    assert await dispatch.deliver_due(NOW + timedelta(hours=1)) == 0


async def test_a_permanent_failure_fails_at_once_and_the_next_message_still_goes(
    sessions: Sessions, caplog: pytest.LogCaptureFixture
) -> None:
    await queue(sessions, "a1", "a2")
    sender = FakeSender({"a1": [PermanentFailure("Forbidden: bot was blocked by the user")]})
    assert await dispatcher(sessions, sender).deliver_due(NOW) == 2
    stored = await rows(sessions)
    assert (stored["a1"].status, stored["a1"].attempts, stored["a1"].error) == (
        OutboxStatus.FAILED,
        1,
        "Forbidden: bot was blocked by the user",
    )
    assert stored["a2"].status == OutboxStatus.SENT
    assert "failed for good" in caplog.text


async def test_an_unexpected_error_is_logged_and_retried(
    sessions: Sessions, caplog: pytest.LogCaptureFixture
) -> None:
    await queue(sessions, "a1")
    sender = FakeSender({"a1": [KeyError("chat_id")]})
    await dispatcher(sessions, sender).deliver_due(NOW)
    row = (await rows(sessions))["a1"]
    assert (row.status, row.error) == (OutboxStatus.PENDING, "KeyError: 'chat_id'")
    assert "unexpected error from the telegram sender" in caplog.text


async def test_messages_for_a_channel_without_a_sender_are_left_waiting(
    sessions: Sessions,
) -> None:
    await queue(sessions, "head", channel="email")
    sender = FakeSender()
    assert await dispatcher(sessions, sender).deliver_due(NOW) == 0
    assert await Dispatcher(sessions, {}).deliver_due(NOW) == 0
    assert (await rows(sessions))["head"].status == OutboxStatus.PENDING


# -- crashes and leases -----------------------------------------------------------------------


async def test_a_message_whose_dispatcher_died_is_sent_once_its_lease_runs_out(
    sessions: Sessions,
) -> None:
    await queue(sessions, "a1")
    lease = timedelta(seconds=30)
    async with transaction(sessions) as session:  # a dispatcher claims it, then dies
        await OutboxRepository(session).claim_due(NOW, lease, 10)
    sender = FakeSender()
    dispatch = dispatcher(sessions, sender, lease=lease)
    assert await dispatch.deliver_due(NOW + 10 * SECOND) == 0
    assert await dispatch.deliver_due(NOW + lease + SECOND) == 1
    row = (await rows(sessions))["a1"]
    assert (row.status, row.attempts) == (OutboxStatus.SENT, 2)
    assert sender.keys == ["a1"]


async def test_a_message_that_keeps_killing_its_dispatcher_is_given_up(
    sessions: Sessions,
) -> None:
    await queue(sessions, "a1")
    lease = timedelta(seconds=30)
    for n in range(2):
        async with transaction(sessions) as session:
            await OutboxRepository(session).claim_due(NOW + n * 2 * lease, lease, 10)
    sender = FakeSender()
    assert await dispatcher(sessions, sender, max_attempts=2).deliver_due(NOW + 5 * lease) == 1
    row = (await rows(sessions))["a1"]
    assert (row.status, row.error) == (OutboxStatus.FAILED, "abandoned mid-delivery 2 times")
    assert sender.sent == []


async def test_the_lease_is_renewed_while_a_slow_batch_is_sent(sessions: Sessions) -> None:
    """Six sends of 0.1 s outlast a 0.3 s lease; another dispatcher looking all the while
    finds nothing to take."""
    await queue(sessions, *(f"a{n}" for n in range(6)))
    slow, other = FakeSender(delay=0.1), FakeSender()
    lease = timedelta(seconds=0.3)
    working = asyncio.create_task(dispatcher(sessions, slow, lease=lease).deliver_due())
    async with asyncio.timeout(2):
        while await pending(sessions, OutboxStatus.SENDING) < 6:
            await asyncio.sleep(0.005)
    rival = dispatcher(sessions, other, lease=lease)
    while not working.done():
        await rival.deliver_due()
        await asyncio.sleep(0.02)
    assert await working == 6
    assert (slow.keys, other.keys) == ([f"a{n}" for n in range(6)], [])


KILLS = 24


async def test_dispatchers_killed_over_and_over_lose_nothing(sessions: Sessions) -> None:
    """Each kill duplicates at most the one message its dispatcher had in flight."""
    keys = [f"{recipient}{n}" for n in range(40) for recipient in "abcde"]
    await queue(sessions, *keys)
    sender = FakeSender(delay=0.001)
    rng = random.Random(4)
    kills = 0

    async def a_process() -> None:
        nonlocal kills
        while True:
            stop = asyncio.Event()
            dispatch = dispatcher(
                sessions, sender, lease=timedelta(seconds=0.05), max_attempts=100, batch=10
            )
            task = asyncio.create_task(dispatch.run_forever(stop))
            # Kill only once this dispatcher has made progress: on a slow, loaded machine a kill
            # on a fixed clock could come before any dispatcher ever got a message out.
            before = len(sender.keys)
            for _ in range(200):
                if len(sender.keys) > before or task.done():
                    break
                await asyncio.sleep(0.005)
            done, _ = await asyncio.wait({task}, timeout=rng.uniform(0.0, 0.02))
            if done:
                return
            if kills >= KILLS:  # enough: let this one finish the rest
                while await pending(sessions):
                    await asyncio.sleep(0.01)
                stop.set()
                await task
                return
            if await pending(sessions) == 0:
                stop.set()
                await task
                return
            task.cancel()
            kills += 1
            with contextlib.suppress(asyncio.CancelledError):
                await task

    with cancelled_queries_tolerated():
        async with asyncio.timeout(60):
            await asyncio.gather(a_process(), a_process())
    assert await pending(sessions) == 0
    sent = Counter(sender.keys)
    assert set(sent) == set(keys)
    duplicates = sum(n - 1 for n in sent.values())
    assert kills >= 20
    assert duplicates <= kills
    assert_in_order_per_recipient(sender.keys, keys)


async def pending(sessions: Sessions, *statuses: OutboxStatus) -> int:
    """Rows in these states (by default: not yet finished)."""
    async with sessions() as session:
        counts = await OutboxRepository(session).counts()
    return sum(counts[s] for s in statuses or (OutboxStatus.PENDING, OutboxStatus.SENDING))


# -- order ------------------------------------------------------------------------------------


def assert_in_order_per_recipient(sent: Iterable[str], queued: list[str]) -> None:
    """Each recipient's messages went out in the order they were queued (first sends)."""
    first_sends = list(dict.fromkeys(sent))
    for recipient in {key.rstrip("0123456789") for key in queued}:
        mine = [key for key in first_sends if key.rstrip("0123456789") == recipient]
        assert mine == [key for key in queued if key.rstrip("0123456789") == recipient]


async def test_a_recipients_messages_wait_behind_one_being_retried(sessions: Sessions) -> None:
    await queue(sessions, "a1", "b1", "a2", "a3", "b2")
    sender = FakeSender({"a1": [RetryLater(None, "timed out")]})
    dispatch = dispatcher(sessions, sender)
    assert await dispatch.deliver_due(NOW) == 5
    assert sender.keys == ["b1", "b2"]
    stored = await rows(sessions)
    assert [(stored[k].status, stored[k].attempts) for k in ("a1", "a2", "a3")] == [
        (OutboxStatus.PENDING, 1),
        (OutboxStatus.PENDING, 0),  # given back untried
        (OutboxStatus.PENDING, 0),
    ]
    assert await dispatch.deliver_due(NOW + SECOND / 2) == 0
    assert await dispatch.deliver_due(NOW + SLACK) == 3
    assert sender.keys == ["b1", "b2", "a1", "a2", "a3"]


async def test_racing_dispatchers_send_each_message_once_and_in_order(
    sessions: Sessions,
) -> None:
    keys = [f"{recipient}{n}" for n in range(10) for recipient in "abcd"]
    await queue(sessions, *keys)
    sender = FakeSender(delay=0.002)
    # Uneven batches, so the two keep overlapping.
    racers = [dispatcher(sessions, sender, batch=3), dispatcher(sessions, sender, batch=5)]

    async def race(dispatch: Dispatcher) -> None:
        while await pending(sessions):
            await dispatch.deliver_due()
            await asyncio.sleep(0)

    async with asyncio.timeout(20):
        await asyncio.gather(*(race(racer) for racer in racers))
    assert sorted(sender.keys) == sorted(keys), "each once"
    assert_in_order_per_recipient(sender.keys, keys)


# -- running ----------------------------------------------------------------------------------


async def test_running_it_sends_at_once_when_woken_and_stops_when_told(
    sessions: Sessions,
) -> None:
    sender = FakeSender()
    # A poll interval far longer than the test: only wake() can explain a prompt delivery.
    dispatch = dispatcher(sessions, sender, poll_interval=60)
    stop = asyncio.Event()
    running = asyncio.create_task(dispatch.run_forever(stop))
    await asyncio.sleep(0.05)
    await queue(sessions, "a1")
    dispatch.wake()
    async with asyncio.timeout(2):
        while not sender.sent:
            await asyncio.sleep(0.01)
    stop.set()
    async with asyncio.timeout(2):
        await running


async def test_running_it_survives_a_database_outage(
    sessions: Sessions, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dispatcher_module, "OUTAGE_FIRST", 0.01)
    claim_due = OutboxRepository.claim_due
    outages = 3

    async def failing(self: OutboxRepository, *args: Any, **kwargs: Any) -> list[OutboxMessage]:
        nonlocal outages
        if outages:
            outages -= 1
            raise OperationalError("SELECT", {}, ConnectionRefusedError("database is down"))
        return await claim_due(self, *args, **kwargs)

    monkeypatch.setattr(OutboxRepository, "claim_due", failing)
    caplog.set_level(logging.ERROR)
    await queue(sessions, "a1")
    sender = FakeSender()
    stop = asyncio.Event()
    running = asyncio.create_task(
        dispatcher(sessions, sender, poll_interval=0.01).run_forever(stop)
    )
    async with asyncio.timeout(5):
        while not sender.sent:
            await asyncio.sleep(0.01)
    stop.set()
    await running
    assert outages == 0
    assert caplog.text.count("outbox delivery failed (database unavailable)") == 3
