from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.policy import PolicyEngine
from bot.services import consent
from bot.services.moderation import Retention, check_message
from bot.store.db import transaction
from bot.store.models import FlagStatus
from bot.store.repositories.flags import FlagRepository
from bot.store.repositories.messages import MessageRepository
from tests.conftest import message
from tests.factories import NOW, a_chat, a_member

pytestmark = pytest.mark.anyio
RETENTION = Retention(metadata=timedelta(days=30), flags=timedelta(days=365))


async def test_consent_is_per_notice_version(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with transaction(sessions) as session:
        chat = await a_chat(session)
        member = await a_member(session, chat)
        assert not await consent.has_consented(session, chat, member)
        assert await consent.give(session, chat, member, "button", NOW)
        assert not await consent.give(session, chat, member, "command", NOW)  # already
        assert await consent.has_consented(session, chat, member)
        cover = await consent.coverage(session, chat)
        assert (cover.consented, cover.members) == (1, 1)
        chat.notice_version = "test-2"  # a new notice needs fresh consent
        assert not await consent.has_consented(session, chat, member)
        assert (await consent.coverage(session, chat)).consented == 0


async def test_only_flagged_words_are_kept_and_withdrawal_erases_them(
    sessions: async_sessionmaker[AsyncSession], engine: PolicyEngine
) -> None:
    async with transaction(sessions) as session:
        chat = await a_chat(session)
        member = await a_member(session, chat)
        await consent.give(session, chat, member, "button", NOW)
        harmless = await check_message(
            session, engine, chat, member, message("anyone got a spare book bag?", id="1"),
            RETENTION, NOW,
        )  # fmt: skip
        abusive = await check_message(
            session, engine, chat, member,
            message("you absolute idiot", id="2", reply_to="Kerry Marsh"), RETENTION, NOW,
        )  # fmt: skip
        assert harmless.flag is None
        assert abusive.flag is not None
        assert abusive.flag.status == FlagStatus.OPEN
        assert [r.rule for r in abusive.flag.reasons] == ["abusive-to-parent"]
        stored = await MessageRepository(session).for_member(member.id)
        assert [m.text for m in stored] == [None, "you absolute idiot"]
        assert stored[1].keep_until == NOW + RETENTION.flags
        assert stored[0].keep_until == NOW + RETENTION.metadata

        assert await consent.withdraw(session, "telegram", member.platform_user_id, NOW) == 1
        stored = await MessageRepository(session).for_member(member.id)
        assert [m.text for m in stored] == [None, None]
        (flag,) = await FlagRepository(session).for_member(member.id)
        assert "withdrew consent" in flag.reasons[0].evidence
        assert not await consent.has_consented(session, chat, member)


async def test_an_edit_is_checked_again(
    sessions: async_sessionmaker[AsyncSession], engine: PolicyEngine
) -> None:
    async with transaction(sessions) as session:
        chat = await a_chat(session)
        member = await a_member(session, chat)
        original = message("see you all at pick up", id="7")
        assert (
            await check_message(session, engine, chat, member, original, RETENTION, NOW)
        ).flag is None
        edited = replace(original, text="see you all at pick up, @mr_okafor", edited=True)
        checked = await check_message(session, engine, chat, member, edited, RETENTION, NOW)
        assert checked.flag is not None
        assert [r.rule for r in checked.flag.reasons] == ["staff-contact"]
        (stored,) = await MessageRepository(session).for_member(member.id)
        assert stored.edited_at == NOW
        assert stored.contacted_staff


async def test_staff_are_not_flagged(
    sessions: async_sessionmaker[AsyncSession], engine: PolicyEngine
) -> None:
    async with transaction(sessions) as session:
        chat = await a_chat(session)
        teacher = await a_member(session, chat, user_id="900", name="Mr David Okafor")
        staff_message = message(
            "you're all idiots for missing the letter", sender="Mr David Okafor"
        )
        checked = await check_message(session, engine, chat, teacher, staff_message, RETENTION, NOW)
        assert checked.flag is None


async def test_frequent_contact_counts_the_senders_history(
    sessions: async_sessionmaker[AsyncSession], engine: PolicyEngine
) -> None:
    async with transaction(sessions) as session:
        chat = await a_chat(session)
        member = await a_member(session, chat)
        rules = []
        for number in range(5):  # the school allows 3 a week by default
            asked = message(f"@mr_okafor quick question number {number}", id=str(number))
            checked = await check_message(session, engine, chat, member, asked, RETENTION, NOW)
            rules.append([str(r) for r in checked.verdict.rules])
        assert rules[:3] == [["staff-contact"]] * 3
        assert rules[3:] == [["staff-contact", "frequent-contact"]] * 2
