"""Factories for database rows: plain async functions with keyword defaults."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from bot.policy_files import load_school
from bot.services.schools import load_school as seed_school
from bot.store.models import Chat, ChatMember, ChatStatus, School
from bot.store.repositories.chats import ChatRepository
from bot.store.repositories.members import MemberRepository
from tests.conftest import SCHOOL_FILE

NOW = datetime(2026, 11, 24, 14, 0, tzinfo=UTC)
NOTICE = "test-1"


async def a_school(session: AsyncSession) -> School:
    return await seed_school(session, load_school(SCHOOL_FILE), "test")


async def a_chat(
    session: AsyncSession,
    school: School | None = None,
    *,
    platform_chat_id: str = "-1001",
    title: str = "Year 3 Parents",
    registered: bool = True,
) -> Chat:
    chat = await ChatRepository(session).find_or_add("telegram", platform_chat_id, title)
    if registered:
        school = school or await a_school(session)
        chat.school_id, chat.class_name = school.id, "Year 3"
        chat.status, chat.registered_at, chat.notice_version = ChatStatus.REGISTERED, NOW, NOTICE
    await session.flush()
    return chat


async def a_member(
    session: AsyncSession, chat: Chat, *, user_id: str = "501", name: str = "Becky Sutton"
) -> ChatMember:
    return await MemberRepository(session).find_or_add(chat.id, user_id, name, None)


async def another_school(session: AsyncSession, name: str = "Elsewhere Primary School") -> School:
    """A second school in the same installation (a trust's), with the test school's staff."""
    config = load_school(SCHOOL_FILE)
    renamed = config.model_copy(update={"school": config.school.model_copy(update={"name": name})})
    return await seed_school(session, renamed, "test")
