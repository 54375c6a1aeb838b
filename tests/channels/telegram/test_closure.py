"""Closing a chat: notice, read-only after the grace period, the bot leaves; or cancelled."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.channels.telegram.runtime import TelegramRuntime
from bot.errors import ConflictError
from bot.services.closure import cancel_closure, request_closure
from bot.store.db import transaction
from bot.store.models import ChatClosure, ChatStatus, ClosureStatus, OutboxMessage, utcnow
from bot.texts import TelegramTexts
from tests.channels.telegram.support import (
    YEAR3,
    audit_actions,
    chat_row,
    register,
    rows,
    sent_in,
)
from tests.fakes.telegram_api import FakeTelegramAPI

pytestmark = pytest.mark.anyio
Sessions = async_sessionmaker[AsyncSession]
GRACE = timedelta(hours=24)


async def ask_to_close(sessions: Sessions) -> None:
    async with transaction(sessions) as session:
        chat = await chat_row(sessions, YEAR3)
        merged = await session.merge(chat)
        await request_closure(session, merged, "repeated abuse between parents", "Mrs Anita Patel",
                              GRACE, utcnow())  # fmt: skip


async def closure(sessions: Sessions) -> ChatClosure:
    [only] = await rows(sessions, ChatClosure)
    return only


async def test_a_closure_runs_to_closed(
    api: FakeTelegramAPI, sessions: Sessions, bot: TelegramRuntime
) -> None:
    await register(api, sessions)
    api.set_bot_status(YEAR3, "administrator", can_restrict_members=True)
    await ask_to_close(sessions)

    assert await bot.advance_closures(utcnow()) == 1
    sent = await sent_in(api, YEAR3, 4)  # explained, registered, notice, closure notice
    assert "the Senior Leadership Team has asked for this chat to be closed" in (sent[3].text or "")
    assert "repeated abuse between parents" in (sent[3].text or "")
    assert await bot.advance_closures(utcnow()) == 0  # the grace period has not run out

    later = utcnow() + GRACE + timedelta(minutes=1)
    assert await bot.advance_closures(later) == 1
    [locked] = await api.wait_for_call("setChatPermissions")
    assert locked.params["chat_id"] == YEAR3["id"]
    assert (await closure(sessions)).status == ClosureStatus.LOCKED
    assert await bot.advance_closures(later) == 1
    await api.wait_for_call("leaveChat")
    done = await closure(sessions)
    assert done.status == ClosureStatus.CLOSED
    assert (await chat_row(sessions, YEAR3)).status == ChatStatus.LEFT
    actions = await audit_actions(sessions)
    for step in ("requested", "notice_posted", "locked", "closed"):
        assert f"closure.{step}" in actions


async def test_without_the_right_the_bot_says_what_an_admin_must_do(
    api: FakeTelegramAPI, sessions: Sessions, bot: TelegramRuntime
) -> None:
    await register(api, sessions)
    api.set_bot_status(YEAR3, "administrator", can_restrict_members=False)
    await ask_to_close(sessions)
    later = utcnow() + GRACE + timedelta(minutes=1)
    await bot.advance_closures(later)
    await bot.advance_closures(later)
    sent = await sent_in(api, YEAR3, 5)
    assert "A group admin can do it" in (sent[4].text or "")
    assert api.calls_to("setChatPermissions") == []
    assert (
        await closure(sessions)
    ).problem == "the bot is not an admin allowed to restrict members"


async def test_a_cancelled_closure_stops_cleanly(
    api: FakeTelegramAPI, sessions: Sessions, bot: TelegramRuntime, texts: TelegramTexts
) -> None:
    await register(api, sessions)
    await ask_to_close(sessions)
    await bot.advance_closures(utcnow())
    async with transaction(sessions) as session:
        chat = await session.merge(await chat_row(sessions, YEAR3))
        await cancel_closure(session, chat, "Mrs Anita Patel", utcnow(), texts=texts)
        with pytest.raises(ConflictError, match="no closure under way"):
            await cancel_closure(session, chat, "Mrs Anita Patel", utcnow(), texts=texts)
    # The chat was told of the closure, so it is told it is off.
    withdrawn = [row for row in await rows(sessions, OutboxMessage) if "withdrawn" in row.text]
    assert [row.recipient for row in withdrawn] == [str(YEAR3["id"])]
    later = utcnow() + GRACE + timedelta(minutes=1)
    assert await bot.advance_closures(later) == 0
    assert (await closure(sessions)).status == ClosureStatus.CANCELLED
    assert api.calls_to("setChatPermissions") == []
    assert api.calls_to("leaveChat") == []
    assert (await chat_row(sessions, YEAR3)).status == ChatStatus.REGISTERED


async def test_a_closure_cancelled_before_the_notice_tells_nobody(
    api: FakeTelegramAPI, sessions: Sessions, bot: TelegramRuntime, texts: TelegramTexts
) -> None:
    await register(api, sessions)
    await ask_to_close(sessions)
    async with transaction(sessions) as session:
        chat = await session.merge(await chat_row(sessions, YEAR3))
        with pytest.raises(ConflictError, match="already being closed"):
            await request_closure(session, chat, "again", "Mrs Anita Patel", GRACE, utcnow())
        await cancel_closure(session, chat, "Mrs Anita Patel", utcnow(), texts=texts)
    assert await bot.advance_closures(utcnow()) == 0
    assert not [row for row in await rows(sessions, OutboxMessage) if row.purpose == "closure"]
