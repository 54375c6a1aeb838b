"""People, chats and steps shared by the Telegram end-to-end tests.

Every step drives the real ``TelegramRuntime`` through the fake Bot API (polling) or the FastAPI
webhook route, and waits for the outcome in the database or on the fake: never a fixed sleep.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import selectinload

from bot.services.moderation import Retention
from bot.services.registration import create_code
from bot.services.staff_links import create_link_code
from bot.store.db import transaction
from bot.store.models import (
    AuditEvent,
    Chat,
    ChatMember,
    Consent,
    Flag,
    InboxItem,
    InboxStatus,
    School,
    StaffMember,
    StoredMessage,
    utcnow,
)
from tests.factories import a_school
from tests.fakes import telegram_updates as tu
from tests.fakes.telegram_api import FakeTelegramAPI, SentMessage

T = TypeVar("T")
JSON = dict[str, Any]

TOKEN = "123:ABC"
PUBLIC_URL = "https://example.test"
RETENTION = Retention(metadata=timedelta(days=30), flags=timedelta(days=365))
LEAVE_AFTER = timedelta(minutes=60)
# Nothing listens on port 1: a database that is down.
DOWN_URL = "postgresql+asyncpg://schoolgate@127.0.0.1:1/schoolgate"
WAIT = 5.0
"""Seconds to wait for an outcome before failing: generous, as only failures wait this long."""

# Tuesday 24 November 2026, 14:00 in London: in term and working hours, so only words decide.
IN_HOURS = datetime(2026, 11, 24, 14, 0, tzinfo=UTC)
# One stamp for every test's school, so the engine cache the tests share compiles the school's
# policy engine once (about 0.4 s) instead of once per test.
SCHOOL_STAMP = datetime(2026, 11, 1, tzinfo=UTC)

PAT = tu.user(1001, "Pat", "Jones", username="pat_jones")  # a parent and group admin
SAM = tu.user(1002, "Sam", "Reed")  # another parent
OKAFOR = tu.user(2001, "David", "Okafor", username="mr_okafor")  # staff: @mr_okafor in the file
ANITA = tu.user(7001, "Anita", "Patel", username="anita_patel")  # the head: SLT and DSL
ANITA_PRIVATE = tu.private_chat(ANITA)
SARAH = tu.user(7002, "Sarah", "Bennett")  # the business manager: SLT, not DSL
YEAR3 = tu.group()
YEAR4 = tu.group(-1001234567891, "Year 4 Parents")

ABUSIVE = "ur a vile woman and everyone knows it"
HARMLESS = "what time is pick up on friday?"


# -- waiting ---------------------------------------------------------------------------------


async def wait_for(check: Callable[[], Awaitable[T | None]], what: str, timeout: float = WAIT) -> T:
    """Poll ``check`` until it returns something other than None (or fail after ``timeout`` s)."""
    try:
        async with asyncio.timeout(timeout):
            while (found := await check()) is None:
                await asyncio.sleep(0.01)
    except TimeoutError:
        raise AssertionError(f"waited {timeout}s for {what}") from None
    return found


async def inbox_item(sessions: async_sessionmaker[AsyncSession], update_id: int) -> InboxItem:
    """The inbox row of an update once it is done (processed or failed)."""

    async def done() -> InboxItem | None:
        async with sessions() as session:
            item = await session.scalar(select(InboxItem).where(InboxItem.update_id == update_id))
        return item if item is not None and item.status != InboxStatus.PENDING else None

    return await wait_for(done, f"update {update_id} to be processed")


async def deliver(
    api: FakeTelegramAPI, sessions: async_sessionmaker[AsyncSession], update: JSON
) -> InboxItem:
    """Queue an update for getUpdates and wait until the bot has processed it."""
    queued = api.queue_update(update)
    return await inbox_item(sessions, queued["update_id"])


Deliver = Callable[[JSON], Awaitable[InboxItem]]
"""Gets an update to the bot (by getUpdates or the webhook) and waits until it is processed."""


async def sent_in(
    api: FakeTelegramAPI, chat: JSON, count: int, timeout: float = WAIT
) -> list[SentMessage]:
    """Wait until the bot has sent ``count`` messages in ``chat``; return them all."""

    async def enough() -> list[SentMessage] | None:
        sent = api.sent_messages(chat["id"])
        return sent if len(sent) >= count else None

    what = f"{count} message(s) from the bot in {chat.get('title')}"
    return await wait_for(enough, what, timeout)


# -- reading the database --------------------------------------------------------------------


async def rows(sessions: async_sessionmaker[AsyncSession], model: type[T]) -> list[T]:
    async with sessions() as session:
        query = select(model)
        if model is Flag:
            query = query.options(selectinload(Flag.reasons))
        return list(await session.scalars(query.order_by(model.id)))  # type: ignore[attr-defined]


async def chat_row(sessions: async_sessionmaker[AsyncSession], chat: JSON) -> Chat:
    async with sessions() as session:
        found = await session.scalar(select(Chat).where(Chat.platform_chat_id == str(chat["id"])))
    assert found is not None, f"no chat row for {chat.get('title')}"
    return found


async def audit_actions(sessions: async_sessionmaker[AsyncSession]) -> list[str]:
    return [event.action for event in await rows(sessions, AuditEvent)]


async def consents_of(sessions: async_sessionmaker[AsyncSession], user: JSON) -> list[Consent]:
    async with sessions() as session:
        query = (
            select(Consent)
            .join(ChatMember, Consent.member_id == ChatMember.id)
            .where(ChatMember.platform_user_id == str(user["id"]))
            .order_by(Consent.id)
        )
        return list(await session.scalars(query))


async def messages_of(
    sessions: async_sessionmaker[AsyncSession], user: JSON
) -> list[StoredMessage]:
    async with sessions() as session:
        query = (
            select(StoredMessage)
            .join(ChatMember, StoredMessage.member_id == ChatMember.id)
            .where(ChatMember.platform_user_id == str(user["id"]))
            .order_by(StoredMessage.id)
        )
        return list(await session.scalars(query))


# -- arranging -------------------------------------------------------------------------------


async def the_school(session: AsyncSession) -> School:
    """The test school, seeded with its staff the first time a test asks for it."""
    school = await session.scalar(select(School))
    if school is None:
        school = await a_school(session)
        school.updated_at = SCHOOL_STAMP
    return school


async def a_school_with_code(
    sessions: async_sessionmaker[AsyncSession],
    *,
    valid_for: timedelta = timedelta(hours=72),
    created: datetime | None = None,
) -> str:
    """The test school in the database (seeded once per test) and a new registration code."""
    async with transaction(sessions) as session:
        school = await the_school(session)
        return await create_code(session, school, "Year 3", "test", valid_for, created or utcnow())


async def link_staff(
    api: FakeTelegramAPI,
    sessions: async_sessionmaker[AsyncSession],
    user: JSON,
    name: str,
) -> SentMessage:
    """The school's staff member called ``name`` links their Telegram account (``user``): a link
    code from the admin pages, sent as ``/link <code>`` in a private chat with the bot. Returns
    the bot's answer there, once it has checked that it says they are linked."""
    async with transaction(sessions) as session:
        await the_school(session)
        staff = await session.scalar(select(StaffMember).where(StaffMember.name == name))
        assert staff is not None, f"no staff member called {name} in the school's file"
        code = await create_link_code(session, staff, timedelta(hours=1), utcnow())
    chat = tu.private_chat(user)
    item = await deliver(api, sessions, tu.command(None, chat, user, f"/link {code}"))
    assert item.status == InboxStatus.PROCESSED, item.error
    [linked] = await sent_in(api, chat, 1)
    assert (linked.text or "").startswith(f"Linked, {name}"), linked.text
    return linked


async def link_head(api: FakeTelegramAPI, sessions: async_sessionmaker[AsyncSession]) -> None:
    """The head, Mrs Anita Patel (SLT and DSL), links Telegram (ANITA): her alerts come there."""
    await link_staff(api, sessions, ANITA, "Mrs Anita Patel")


async def register(
    api: FakeTelegramAPI,
    sessions: async_sessionmaker[AsyncSession],
    chat: JSON = YEAR3,
    admin: JSON = PAT,
    code: str | None = None,
    via: Deliver | None = None,
) -> JSON:
    """Add the bot to ``chat`` as an admin and register it: returns the consent notice."""
    send = via or (lambda update: deliver(api, sessions, update))
    code = code or await a_school_with_code(sessions)
    api.set_member_status(chat, admin, "creator")
    await send(tu.my_chat_member(None, chat, admin, "left", "administrator"))
    await send(tu.command(None, chat, admin, f"/register {code}"))

    async def notice() -> JSON | None:
        sent = api.sent_messages(chat["id"])
        for first, then in pairwise(sent):
            if (first.text or "").startswith("This chat is now registered"):
                return then.message
        return None

    return await wait_for(notice, f"{chat.get('title')} to be registered")


def consent_button(notice: JSON) -> str:
    """The callback data of the notice's one "I agree" button."""
    [[button]] = notice["reply_markup"]["inline_keyboard"]
    assert button["text"] == "I agree"
    return str(button["callback_data"])


async def agree(
    api: FakeTelegramAPI, sessions: async_sessionmaker[AsyncSession], notice: JSON, user: JSON
) -> InboxItem:
    """``user`` presses "I agree" under the notice."""
    press = tu.callback_query(None, user, notice, consent_button(notice))
    return await deliver(api, sessions, press)


def said(api: FakeTelegramAPI, chat: JSON) -> list[str]:
    """Everything the bot has said in ``chat`` so far."""
    return [m.text or "" for m in api.sent_messages(chat["id"])]


async def said_at(api: FakeTelegramAPI, chat: JSON, number: int) -> str:
    """The ``number``-th thing the bot says in ``chat`` (counting from 1), once it has."""
    return (await sent_in(api, chat, number))[number - 1].text or ""
