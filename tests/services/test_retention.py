from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.policy import PolicyEngine
from bot.services import consent
from bot.services.moderation import Retention, check_message
from bot.services.retention import INBOX_KEEP, purge_expired
from bot.store.db import transaction
from bot.store.models import AuditEvent, Flag, InboxItem, InboxStatus, StoredMessage
from bot.store.repositories.inbox import InboxRepository
from tests.conftest import message
from tests.factories import NOW, a_chat, a_member

pytestmark = pytest.mark.anyio
RETENTION = Retention(metadata=timedelta(days=30), flags=timedelta(days=365))


async def count(session: AsyncSession, model: type[object]) -> int:
    return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_each_record_goes_when_its_time_is_up(
    sessions: async_sessionmaker[AsyncSession], engine: PolicyEngine
) -> None:
    async with transaction(sessions) as session:
        chat = await a_chat(session)
        member = await a_member(session, chat)
        await consent.give(session, chat, member, "button", NOW)
        plain = message("see you at pick up", id="1")
        rude = message("you absolute idiot", id="2", reply_to="Kerry Marsh")
        for each in (plain, rude):
            await check_message(session, engine, chat, member, each, RETENTION, NOW)
        inbox = InboxRepository(session)
        await inbox.add("telegram", 1, {"update_id": 1})
        await inbox.add("telegram", 2, {"update_id": 2})
        (done,) = [i for i in await session.scalars(select(InboxItem)) if i.update_id == 1]
        inbox.finish(done, InboxStatus.PROCESSED)
        for item in await session.scalars(select(InboxItem)):
            item.received_at = NOW

    async with transaction(sessions) as session:
        soon = await purge_expired(session, NOW + timedelta(days=1))
        assert not soon.anything
        month = await purge_expired(session, NOW + RETENTION.metadata + INBOX_KEEP)
        assert (month.messages, month.flags, month.updates) == (1, 0, 1)
        assert await count(session, StoredMessage) == 1  # the flagged one is kept longer
        assert await count(session, InboxItem) == 1  # a pending update is never dropped
        year = await purge_expired(session, NOW + RETENTION.flags + timedelta(days=1))
        assert (year.messages, year.flags) == (1, 1)
        assert await count(session, Flag) == 0
        audit = await session.scalars(select(AuditEvent.action))
        assert list(audit).count("retention.purged") == 2
