"""Closing a hosted WhatsApp group: the notice is posted to the group, and after the grace
period the group's Twilio conversation is closed (the real twilio client against the fake)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.channels.whatsapp.closure import WhatsAppClosures
from bot.channels.whatsapp.delivery import WHATSAPP_GROUP, GroupSender
from bot.channels.whatsapp.twilio_client import WhatsAppApi
from bot.errors import ConflictError
from bot.services.closure import cancel_closure, due_closures, request_closure, timeline
from bot.services.dispatcher import Dispatcher
from bot.store.db import transaction
from bot.store.models import AuditEvent, Chat, ChatClosure, ChatStatus, ClosureStatus, OutboxStatus
from bot.store.repositories.chats import ChatRepository
from bot.store.repositories.outbox import OutboxRepository
from bot.texts import TelegramTexts
from tests.factories import NOW, a_chat, a_school
from tests.fakes.twilio_api import FakeTwilioAPI
from tests.fakes.twilio_webhooks import SCHOOL_WHATSAPP, parent

pytestmark = pytest.mark.anyio
Sessions = async_sessionmaker[AsyncSession]
GRACE = timedelta(hours=1)
LATER = NOW + GRACE + timedelta(minutes=1)


class Wakes:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1


async def a_closing_group(
    sessions: Sessions, twilio: FakeTwilioAPI, twilio_client: WhatsAppApi
) -> tuple[str, int, int]:
    """A group on Twilio with a parent in it, registered, and asked to close: its
    conversation SID, chat id and closure id."""
    group = await twilio_client.create_conversation("Year 3 Parents")
    twilio.open_whatsapp_window(parent(1))
    await twilio_client.add_whatsapp_participant(group.sid, parent(1), SCHOOL_WHATSAPP, "Becky")
    async with transaction(sessions) as session:
        school = await a_school(session)
        chat = await ChatRepository(session).find_or_add("whatsapp", group.sid, "Year 3 Parents")
        chat.school_id, chat.status, chat.notice_version = school.id, ChatStatus.REGISTERED, "t-1"
        await session.flush()
        closure = await request_closure(
            session, chat, "Arguments that keep coming back", "Mrs Anita Patel", GRACE, NOW,
            actor="user:1",
        )  # fmt: skip
    return group.sid, chat.id, closure.id


async def state(sessions: Sessions, closure_id: int) -> tuple[ClosureStatus, ChatStatus]:
    async with sessions() as session:
        closure = await session.get(ChatClosure, closure_id)
        assert closure is not None
        chat = await session.get(Chat, closure.chat_id)
        assert chat is not None
        return closure.status, chat.status


async def test_the_group_is_told_then_closed_on_twilio_after_the_grace_period(
    sessions: Sessions, twilio: FakeTwilioAPI, twilio_client: WhatsAppApi, texts: TelegramTexts
) -> None:
    sid, chat_id, closure_id = await a_closing_group(sessions, twilio, twilio_client)
    wakes = Wakes()
    closures = WhatsAppClosures(sessions, twilio_client, texts, wakes)

    assert await closures.advance(NOW) == 1
    assert wakes.count == 1  # the notice goes at once
    assert await state(sessions, closure_id) == (ClosureStatus.NOTICE_POSTED, ChatStatus.REGISTERED)
    async with sessions() as session:
        [notice] = await OutboxRepository(session).listing(purpose="closure")
    assert (notice.channel, notice.recipient) == (WHATSAPP_GROUP, sid)
    assert notice.text.startswith("Notice from Peartree Spring Primary School: the Senior")
    assert "Arguments that keep coming back" in notice.text

    # Past the grace period, but the notice has not gone yet: members read it first.
    assert await closures.advance(LATER) == 0
    assert twilio.conversation(sid).state == "active"

    await Dispatcher(sessions, {WHATSAPP_GROUP: GroupSender(twilio_client)}).deliver_due()
    [posted] = twilio.messages(sid)
    assert (posted.author, posted.body) == ("Schoolgate", notice.text)
    assert [d.body for d in twilio.delivered_to(parent(1))] == [notice.text]

    assert await closures.advance(NOW + timedelta(minutes=30)) == 0  # still in the grace period
    assert await closures.advance(LATER) == 1
    assert twilio.conversation(sid).state == "closed"
    assert await state(sessions, closure_id) == (ClosureStatus.CLOSED, ChatStatus.LEFT)
    async with sessions() as session:
        query = select(AuditEvent.action).where(AuditEvent.subject == f"chat:{chat_id}")
        actions = list(await session.scalars(query.order_by(AuditEvent.id)))
        closure = await session.get(ChatClosure, closure_id)
        assert closure is not None
        steps = [step.what for step in timeline(closure, "whatsapp")]
    assert actions == [
        "closure.requested", "closure.notice_posted", "closure.locked", "closure.closed",
    ]  # fmt: skip
    assert steps[-1] == "The group was closed on WhatsApp"
    assert await closures.advance(LATER + timedelta(hours=1)) == 0


async def test_a_conversation_closed_already_counts_and_an_outage_is_waited_out(
    sessions: Sessions, twilio: FakeTwilioAPI, twilio_client: WhatsAppApi, texts: TelegramTexts
) -> None:
    sid, _, closure_id = await a_closing_group(sessions, twilio, twilio_client)
    closures = WhatsAppClosures(sessions, twilio_client, texts, Wakes())
    await closures.advance(NOW)
    async with transaction(sessions) as session:
        [notice] = await OutboxRepository(session).listing(purpose="closure")
        notice.status = OutboxStatus.FAILED  # it could not go: the group closes all the same

    twilio.fail_next("conversation.update", 503)
    assert await closures.advance(LATER) == 0
    assert await state(sessions, closure_id) == (ClosureStatus.NOTICE_POSTED, ChatStatus.REGISTERED)

    await twilio_client.close_conversation(sid)  # closed meanwhile, in Twilio's console
    assert await closures.advance(LATER) == 1
    assert await state(sessions, closure_id) == (ClosureStatus.CLOSED, ChatStatus.LEFT)


async def test_a_cancelled_closure_is_announced_in_the_group_and_nothing_closes(
    sessions: Sessions, twilio: FakeTwilioAPI, twilio_client: WhatsAppApi, texts: TelegramTexts
) -> None:
    sid, chat_id, closure_id = await a_closing_group(sessions, twilio, twilio_client)
    closures = WhatsAppClosures(sessions, twilio_client, texts, Wakes())
    await closures.advance(NOW)
    async with transaction(sessions) as session:
        chat = await session.get(Chat, chat_id)
        assert chat is not None
        await cancel_closure(session, chat, "Mrs Anita Patel", NOW, texts=texts)
        cancelled = await OutboxRepository(session).by_key(f"closure:{closure_id}:cancelled")
    assert cancelled is not None
    assert (cancelled.channel, cancelled.recipient) == (WHATSAPP_GROUP, sid)
    assert await closures.advance(LATER) == 0
    assert twilio.conversation(sid).state == "active"


async def test_each_platform_takes_only_its_own_closures(
    sessions: Sessions, twilio: FakeTwilioAPI, twilio_client: WhatsAppApi
) -> None:
    _, _, whatsapp_closure = await a_closing_group(sessions, twilio, twilio_client)
    async with transaction(sessions) as session:
        telegram_chat = await a_chat(session)
        telegram_closure = await request_closure(
            session, telegram_chat, "Enough", "Mrs Anita Patel", GRACE, NOW
        )
        assert [c.id for c in await due_closures(session, NOW, "whatsapp")] == [whatsapp_closure]
        assert [c.id for c in await due_closures(session, NOW, "telegram")] == [telegram_closure.id]
        assert len(await due_closures(session, NOW)) == 2


async def test_the_report_line_is_not_a_group_to_close(sessions: Sessions) -> None:
    async with transaction(sessions) as session:
        school = await a_school(session)
        line = await ChatRepository(session).find_or_add(
            "whatsapp", f"report-line:{school.id}", "WhatsApp report line"
        )
        line.school_id, line.status = school.id, ChatStatus.REGISTERED
        with pytest.raises(ConflictError, match="report line is not a group"):
            await request_closure(session, line, "Why not", "Mrs Anita Patel", GRACE, NOW)
