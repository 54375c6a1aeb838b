"""The outbox: queueing once per key, in the caller's transaction; claiming under a lease."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.services.outbox import enqueue
from bot.store.db import transaction
from bot.store.models import OutboxMessage, OutboxStatus, utcnow
from bot.store.repositories.outbox import OutboxRepository
from tests.factories import NOW

pytestmark = pytest.mark.anyio
Sessions = async_sessionmaker[AsyncSession]
LEASE = timedelta(seconds=30)
SECOND = timedelta(seconds=1)


async def queue(
    sessions: Sessions, key: str, recipient: str = "42", channel: str = "telegram"
) -> OutboxMessage:
    async with transaction(sessions) as session:
        return await enqueue(
            session,
            key=key,
            channel=channel,
            recipient=recipient,
            text=f"text of {key}",
            purpose="alert",
            now=NOW,
        )


async def claim(
    sessions: Sessions, now: timedelta = timedelta(0), limit: int = 50
) -> list[OutboxMessage]:
    """Claim as a dispatcher would at NOW + ``now``."""
    async with transaction(sessions) as session:
        return await OutboxRepository(session).claim_due(NOW + now, LEASE, limit)


async def keys(rows: list[OutboxMessage]) -> list[str]:
    return [row.idempotency_key for row in rows]


async def all_rows(sessions: Sessions) -> list[OutboxMessage]:
    async with sessions() as session:
        return await OutboxRepository(session).listing()


# -- enqueue ----------------------------------------------------------------------------------


async def test_a_queued_message_is_pending_and_due_at_once(sessions: Sessions) -> None:
    async with transaction(sessions) as session:
        row = await enqueue(
            session,
            key="alert:1:2",
            channel="telegram",
            recipient="2001",
            text="High: Year 3 Parents",
            purpose="alert",
            buttons=[("Acknowledge", "flag:1:acknowledge"), ("Not a breach", "flag:1:fp")],
            reply_to="77",
            rule="abuse",
            now=NOW,
        )
    [stored] = await all_rows(sessions)
    assert stored.id == row.id
    assert (stored.status, stored.attempts, stored.created_at) == (OutboxStatus.PENDING, 0, NOW)
    assert stored.buttons == [["Acknowledge", "flag:1:acknowledge"], ["Not a breach", "flag:1:fp"]]
    assert (stored.reply_to, stored.rule, stored.sent_at) == ("77", "abuse", None)
    assert stored.next_attempt_at <= NOW


async def test_a_message_queued_with_a_clock_ahead_of_the_dispatchers_is_still_due(
    sessions: Sessions,
) -> None:
    async with transaction(sessions) as session:
        row = await enqueue(
            session,
            key="k",
            channel="telegram",
            recipient="1",
            text="hi",
            purpose="notice",
            now=utcnow() + timedelta(hours=5),
        )
    assert row.next_attempt_at <= utcnow()


async def test_the_same_key_is_queued_once(sessions: Sessions) -> None:
    first = await queue(sessions, "reminder:1:m9:out-of-hours")
    async with transaction(sessions) as session:
        again = await enqueue(
            session,
            key="reminder:1:m9:out-of-hours",
            channel="telegram",
            recipient="somebody else",
            text="other words",
            purpose="reminder",
        )
        assert again.id == first.id
        twice = await enqueue(
            session, key="reminder:1:m9:out-of-hours", channel="telegram", recipient="x",
            text="y", purpose="reminder",
        )  # fmt: skip
        assert twice.id == first.id
    [row] = await all_rows(sessions)
    assert (row.recipient, row.text, row.purpose) == ("42", first.text, "alert")


async def test_concurrent_transactions_queueing_one_key_make_one_row(sessions: Sessions) -> None:
    rows = await asyncio.gather(*(queue(sessions, "alert:7:1") for _ in range(5)))
    assert len({row.id for row in rows}) == 1
    assert len(await all_rows(sessions)) == 1


async def test_a_message_goes_only_if_the_transaction_that_queued_it_commits(
    sessions: Sessions,
) -> None:
    async def flag_then_fail() -> None:
        async with transaction(sessions) as session:
            await enqueue(
                session, key="k", channel="telegram", recipient="1", text="t", purpose="alert"
            )
            raise RuntimeError("the flag could not be stored")

    with pytest.raises(RuntimeError):
        await flag_then_fail()
    assert await all_rows(sessions) == []


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"key": ""}, "key"),
        ({"key": "k" * 161}, "key"),
        ({"recipient": ""}, "recipient"),
        ({"text": ""}, "text"),
        ({"buttons": [("only a label",)]}, "pair"),
    ],
)
async def test_a_malformed_message_is_refused(
    sessions: Sessions, change: dict[str, object], problem: str
) -> None:
    fields: dict[str, object] = {
        "key": "k",
        "channel": "telegram",
        "recipient": "1",
        "text": "t",
        "purpose": "alert",
    }
    async with sessions() as session:
        with pytest.raises(ValueError, match=problem):
            await enqueue(session, **(fields | change))  # type: ignore[arg-type]


# -- claiming ---------------------------------------------------------------------------------


async def test_a_claim_takes_due_rows_oldest_first_up_to_the_limit(sessions: Sessions) -> None:
    for n in range(5):
        await queue(sessions, f"k{n}", recipient=str(n))
    claimed = await claim(sessions, limit=3)
    assert await keys(claimed) == ["k0", "k1", "k2"]
    for row in claimed:
        assert (row.status, row.attempts, row.claimed_until) == (
            OutboxStatus.SENDING,
            1,
            NOW + LEASE,
        )
    assert await keys(await claim(sessions)) == ["k3", "k4"]
    assert await claim(sessions) == []


async def test_a_row_is_not_claimed_before_it_is_due(sessions: Sessions) -> None:
    row = await queue(sessions, "k")
    async with transaction(sessions) as session:
        await OutboxRepository(session).claim_due(NOW, LEASE, 10)
        await OutboxRepository(session).mark_retry(row.id, "flood", NOW + 4 * SECOND)
    assert await claim(sessions, 3 * SECOND) == []
    [again] = await claim(sessions, 4 * SECOND)
    assert (again.id, again.attempts) == (row.id, 2)


async def test_a_claim_is_not_taken_again_until_its_lease_runs_out(sessions: Sessions) -> None:
    """A dispatcher that claimed a row and died: another claims it once the lease is over."""
    row = await queue(sessions, "k")
    [first] = await claim(sessions)  # ... and its dispatcher is never heard of again
    assert await claim(sessions, LEASE) == [], "the lease still holds at its last instant"
    [second] = await claim(sessions, LEASE + SECOND)
    assert (second.id, second.attempts, second.claimed_until) == (
        row.id,
        2,
        NOW + 2 * LEASE + SECOND,
    )
    assert first.claimed_until == NOW + LEASE, "each claim's lease ends later than the last"


async def test_a_claim_takes_only_its_own_channels(sessions: Sessions) -> None:
    await queue(sessions, "t", channel="telegram")
    await queue(sessions, "e", channel="email", recipient="head@example.org")
    async with transaction(sessions) as session:
        rows = await OutboxRepository(session).claim_due(NOW, LEASE, 10, channels=["email"])
    assert await keys(rows) == ["e"]


async def test_a_recipients_later_messages_wait_for_an_earlier_one(sessions: Sessions) -> None:
    a1 = await queue(sessions, "a1", recipient="A")
    await queue(sessions, "b1", recipient="B")
    await queue(sessions, "a2", recipient="A")
    # a1 is claimed (in flight): a2 must not overtake it, even in another dispatcher's hands.
    async with transaction(sessions) as session:
        [first] = await OutboxRepository(session).claim_due(NOW, LEASE, 1)
    assert first.id == a1.id
    assert await keys(await claim(sessions)) == ["b1"]
    # a1 failed and waits to be tried again: a2 still waits behind it.
    async with transaction(sessions) as session:
        await OutboxRepository(session).mark_retry(a1.id, "timed out", NOW + 2 * SECOND)
    assert await claim(sessions, SECOND) == []
    assert await keys(await claim(sessions, 2 * SECOND)) == ["a1", "a2"]


async def test_a_failed_message_does_not_hold_up_the_next(sessions: Sessions) -> None:
    a1 = await queue(sessions, "a1", recipient="A")
    await queue(sessions, "a2", recipient="A")
    async with transaction(sessions) as session:
        await OutboxRepository(session).claim_due(NOW, LEASE, 1)
        await OutboxRepository(session).mark_failed(a1.id, "Forbidden: bot was blocked")
    assert await keys(await claim(sessions)) == ["a2"]


async def test_racing_claims_never_take_the_same_row(sessions: Sessions) -> None:
    for n in range(60):
        await queue(sessions, f"k{n}", recipient=str(n))
    batches = await asyncio.gather(*(claim(sessions, limit=7) for _ in range(10)))
    ids = [row.id for batch in batches for row in batch]
    assert len(ids) == len(set(ids)) == 60


# -- recording outcomes -----------------------------------------------------------------------


async def test_marks_record_the_outcome(sessions: Sessions) -> None:
    sent, retried, failed = [await queue(sessions, k, recipient=k) for k in ("s", "r", "f")]
    await claim(sessions)
    async with transaction(sessions) as session:
        outbox = OutboxRepository(session)
        assert await outbox.mark_sent(sent.id, "501", NOW + SECOND)
        assert await outbox.mark_retry(retried.id, "NetworkError", NOW + 2 * SECOND)
        assert await outbox.mark_failed(failed.id, "Forbidden: bot was blocked by the user")
        assert not await outbox.mark_sent(sent.id, "502", NOW), "sent once is sent"
    rows = {row.idempotency_key: row for row in await all_rows(sessions)}
    assert (rows["s"].status, rows["s"].delivered_id, rows["s"].sent_at) == (
        OutboxStatus.SENT,
        "501",
        NOW + SECOND,
    )
    assert rows["s"].claimed_until is None
    assert (rows["r"].status, rows["r"].next_attempt_at, rows["r"].error) == (
        OutboxStatus.PENDING,
        NOW + 2 * SECOND,
        "NetworkError",
    )
    assert (rows["f"].status, rows["f"].error) == (
        OutboxStatus.FAILED,
        "Forbidden: bot was blocked by the user",
    )
    async with sessions() as session:
        counts = await OutboxRepository(session).counts()
        assert await OutboxRepository(session).oldest_unsent_created_at() == NOW
    assert counts == {
        OutboxStatus.PENDING: 1,
        OutboxStatus.SENDING: 0,
        OutboxStatus.SENT: 1,
        OutboxStatus.FAILED: 1,
    }


async def test_a_lapsed_claim_cannot_change_a_row_another_dispatcher_holds(
    sessions: Sessions,
) -> None:
    row = await queue(sessions, "k")
    [stale] = await claim(sessions)
    [current] = await claim(sessions, LEASE + SECOND)
    assert stale.claimed_until is not None
    assert current.claimed_until is not None
    async with transaction(sessions) as session:
        outbox = OutboxRepository(session)
        later = NOW + timedelta(hours=1)
        assert not await outbox.mark_retry(row.id, "x", later, claimed_until=stale.claimed_until)
        assert not await outbox.mark_failed(row.id, "x", claimed_until=stale.claimed_until)
        assert await outbox.extend([row.id], stale.claimed_until, later) == set()
        assert await outbox.release([row.id], stale.claimed_until) == 0
        assert await outbox.extend([row.id], current.claimed_until, later) == {row.id}
        assert await outbox.mark_retry(row.id, "x", later, claimed_until=later)


async def test_releasing_a_claim_undoes_the_attempt(sessions: Sessions) -> None:
    row = await queue(sessions, "k")
    [claimed] = await claim(sessions)
    assert claimed.claimed_until is not None
    async with transaction(sessions) as session:
        assert await OutboxRepository(session).release([row.id], claimed.claimed_until) == 1
    async with sessions() as session:
        stored = await session.scalar(select(OutboxMessage))
    assert stored is not None
    assert (stored.status, stored.attempts, stored.claimed_until) == (
        OutboxStatus.PENDING,
        0,
        None,
    )
