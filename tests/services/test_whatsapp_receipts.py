"""Answered webhooks (receipts), WhatsApp's 24-hour windows, and their purge."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.services import receipts, windows
from bot.services.receipts import Answer
from bot.services.retention import RetentionDefaults, purge_expired
from bot.store.db import transaction
from bot.store.models import JoinRequest, MessagingWindow, WebhookReceipt
from tests.factories import a_chat

pytestmark = pytest.mark.anyio
Sessions = async_sessionmaker[AsyncSession]

NOW = datetime(2026, 11, 24, 14, 0, tzinfo=UTC)
PAT = "whatsapp:+447700900001"
DEFAULTS = RetentionDefaults(timedelta(days=30), timedelta(days=365), timedelta(days=2190))


async def test_a_key_is_handled_once_and_a_replay_gets_the_stored_answer(
    sessions: Sessions,
) -> None:
    async with transaction(sessions) as session:
        first = await receipts.claim(session, "twilio", "incoming:SM1", NOW)
        assert first.answered is None
        await receipts.record(session, first, Answer(200, "<Response/>"))
    async with transaction(sessions) as session:
        again = await receipts.claim(session, "twilio", "incoming:SM1", NOW + timedelta(days=1))
        assert again.answered == Answer(200, "<Response/>")
        assert again.ref == first.ref
        other = await receipts.claim(session, "twilio", "incoming:SM2", NOW)
        assert other.answered is None
        assert other.ref != first.ref


async def test_a_claim_rolled_back_leaves_the_key_free(sessions: Sessions) -> None:
    async def fail_after_claiming() -> None:
        async with transaction(sessions) as session:
            await receipts.claim(session, "twilio", "pre:abc", NOW)
            raise RuntimeError("the handling failed")

    with pytest.raises(RuntimeError):
        await fail_after_claiming()
    async with transaction(sessions) as session:
        assert (await receipts.claim(session, "twilio", "pre:abc", NOW)).answered is None


async def test_a_content_key_seen_long_enough_ago_is_handled_anew(sessions: Sessions) -> None:
    fresh_for = timedelta(minutes=5)
    async with transaction(sessions) as session:
        first = await receipts.claim(session, "twilio", "pre:same", NOW, fresh_for=fresh_for)
        await receipts.record(session, first, Answer(403))
    async with transaction(sessions) as session:
        retry = await receipts.claim(
            session, "twilio", "pre:same", NOW + timedelta(minutes=4), fresh_for=fresh_for
        )
        assert retry.answered == Answer(403)
        later = await receipts.claim(
            session, "twilio", "pre:same", NOW + timedelta(minutes=6), fresh_for=fresh_for
        )
        assert later.answered is None
        assert later.ref != first.ref  # a new handling: new message ids and outbox keys
        await receipts.record(session, later, Answer(200, '{"body": "x"}'))
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(WebhookReceipt)) == 1


def test_long_keys_are_hashed_to_fit() -> None:
    short = receipts.key_of("status", "SM1", "delivered")
    assert short == "status:SM1:delivered"
    long = receipts.key_of("pre", "CH" + "a" * 32, "MB" + "b" * 32, "17", "c" * 64)
    assert long.startswith("pre:sha256:")
    assert len(long) <= receipts.MAX_KEY
    assert long == receipts.key_of("pre", "CH" + "a" * 32, "MB" + "b" * 32, "17", "c" * 64)


async def test_the_window_is_open_for_24_hours_after_someone_last_wrote(sessions: Sessions) -> None:
    async with transaction(sessions) as session:
        assert not await windows.in_window(session, PAT, NOW)
        await windows.record_inbound(session, PAT, NOW)
        await windows.record_inbound(session, PAT, NOW - timedelta(hours=3))  # never moves back
    async with transaction(sessions) as session:
        assert await windows.in_window(session, PAT, NOW + timedelta(hours=23, minutes=59))
        assert not await windows.in_window(session, PAT, NOW + timedelta(hours=24))
        await windows.record_inbound(session, PAT, NOW + timedelta(hours=30))
    async with transaction(sessions) as session:
        assert await windows.in_window(session, PAT, NOW + timedelta(hours=31))
        assert await session.scalar(select(func.count()).select_from(MessagingWindow)) == 1


async def test_receipts_windows_and_lapsed_join_requests_are_purged(sessions: Sessions) -> None:
    async with transaction(sessions) as session:
        chat = await a_chat(session)
        for key, at in (("old", NOW - timedelta(days=8)), ("recent", NOW - timedelta(days=6))):
            claimed = await receipts.claim(session, "twilio", key, at)
            await receipts.record(session, claimed, Answer(200))
        await windows.record_inbound(session, PAT, NOW - timedelta(days=3))
        await windows.record_inbound(session, "whatsapp:+447700900002", NOW - timedelta(days=1))
        for address, expires in ((PAT, NOW - timedelta(minutes=1)), ("b", NOW + timedelta(days=1))):
            session.add(
                JoinRequest(chat_id=chat.id, address=address, created_at=NOW, expires_at=expires)
            )
    async with transaction(sessions) as session:
        purged = await purge_expired(session, NOW, DEFAULTS)
        assert purged.updates == 3
        assert list(await session.scalars(select(WebhookReceipt.key))) == ["recent"]
        assert list(await session.scalars(select(MessagingWindow.address))) == [
            "whatsapp:+447700900002"
        ]
        assert list(await session.scalars(select(JoinRequest.address))) == ["b"]


async def test_an_answers_words_are_blanked_once_twilio_no_longer_retries(
    sessions: Sessions,
) -> None:
    """A relay answer quotes the message with its sender's name; /mydata's, a member's data."""
    relayed = '{"body": "Pat Jones: see you at pick-up"}'
    async with transaction(sessions) as session:
        for key, at in (("pre:old", NOW - timedelta(minutes=16)), ("pre:new", NOW)):
            claimed = await receipts.claim(session, "twilio", key, at)
            await receipts.record(session, claimed, Answer(200, relayed))
    async with transaction(sessions) as session:
        purged = await purge_expired(session, NOW, DEFAULTS)
        assert purged.updates == 1
    async with transaction(sessions) as session:
        late = await receipts.claim(session, "twilio", "pre:old", NOW)
        assert late.answered == Answer(200)  # its status alone: the receipt still stops a replay
        recent = await receipts.claim(session, "twilio", "pre:new", NOW)
        assert recent.answered == Answer(200, relayed)
