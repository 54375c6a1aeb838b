from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.services.registration import Outcome, code_hash, create_code, register_chat
from bot.store.db import transaction
from bot.store.models import ChatStatus, RegistrationCode
from tests.factories import NOTICE, NOW, a_chat, a_school

pytestmark = pytest.mark.anyio
DAY = timedelta(days=1)


async def test_a_code_registers_one_chat_once(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with transaction(sessions) as session:
        school = await a_school(session)
        code = await create_code(session, school, "Year 3", "admin", DAY, NOW)
        first = await a_chat(session, platform_chat_id="-1", registered=False)
        second = await a_chat(session, platform_chat_id="-2", registered=False)

        done = await register_chat(session, first, code.lower(), "tg:1", NOTICE, NOW)
        assert done.outcome is Outcome.REGISTERED
        assert (first.status, first.class_name, first.school_id) == (
            ChatStatus.REGISTERED, "Year 3", school.id,
        )  # fmt: skip
        assert first.notice_version == NOTICE
        again = await register_chat(session, second, code, "tg:1", NOTICE, NOW)
        assert again.outcome is Outcome.USED
        assert (
            await register_chat(session, first, code, "tg:1", NOTICE, NOW)
        ).outcome is Outcome.ALREADY


async def test_expired_and_unknown_codes(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with transaction(sessions) as session:
        school = await a_school(session)
        code = await create_code(session, school, "Year 3", "admin", DAY, NOW)
        chat = await a_chat(session, registered=False)
        late = await register_chat(session, chat, code, "tg:1", NOTICE, NOW + DAY)
        assert late.outcome is Outcome.EXPIRED
        wrong = await register_chat(session, chat, "AAAA-AAAA", "tg:1", NOTICE, NOW)
        assert wrong.outcome is Outcome.UNKNOWN
        assert chat.status == ChatStatus.UNREGISTERED


async def test_only_the_hash_of_a_code_is_stored(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with transaction(sessions) as session:
        code = await create_code(session, await a_school(session), "Y3", "admin", DAY, NOW)
        stored = await session.get(RegistrationCode, 1)
        assert stored is not None
        assert code not in stored.code_hash
        assert stored.code_hash == code_hash(code.replace("-", " "))
