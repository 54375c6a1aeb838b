"""Learning from the school's decisions (bot.services.learning): which decided flags are kept
as examples, that turning it on asks every member again, and that an example goes wherever the
member's words go; on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.policy import PolicyEngine
from bot.services import consent, learning, people, review
from bot.services.moderation import Retention, check_message
from bot.services.retention import RetentionDefaults, purge_expired
from bot.services.review import Decision, Reviewer
from bot.services.school_settings import settings_of
from bot.store.db import transaction
from bot.store.models import (
    Flag,
    LearningExample,
    OutboxMessage,
    School,
    SchoolModel,
    utcnow,
)
from bot.store.repositories.learning import LearningRepository
from bot.texts import TelegramTexts, load_telegram_texts
from tests.conftest import CONFIG_DIR, message
from tests.factories import NOW, a_chat, a_member, a_school

pytestmark = pytest.mark.anyio
Sessions = async_sessionmaker[AsyncSession]
RETENTION = Retention(metadata=timedelta(days=30), flags=timedelta(days=365))
HEAD = Reviewer("user:1", "Mrs Anita Patel")
LATER = NOW + timedelta(hours=1)


@pytest.fixture(scope="module")
def texts() -> TelegramTexts:
    return load_telegram_texts(CONFIG_DIR)


async def learning_on(session: AsyncSession, school: School, texts: TelegramTexts) -> None:
    await learning.set_learning(session, school, True, texts.notice, RETENTION, "test", NOW)


async def a_flag(
    session: AsyncSession,
    engine: PolicyEngine,
    school: School,
    *,
    user_id: str = "501",
    chat_id: str = "-1001",
    at: str = "2026-11-24T14:30:00+00:00",
) -> review.Case:
    """A consenting parent's rude reply, flagged by the engine, in the school's chat."""
    chat = await a_chat(session, school, platform_chat_id=chat_id)
    member = await a_member(session, chat, user_id=user_id)
    await consent.give(session, chat, member, "button", NOW)
    rude = message("you absolute idiot", id=f"m{user_id}", reply_to="Kerry Marsh", sent_at=at)
    when = rude.sent_at
    checked = await check_message(session, engine, chat, member, rude, RETENTION, when)
    assert checked.flag is not None
    case = await review.find_case(session, checked.flag.id)
    assert case is not None
    return case


async def decide(
    session: AsyncSession, case: review.Case, decision: Decision, texts: TelegramTexts
) -> None:
    note = "Friendly banter between sisters" if decision is Decision.FALSE_POSITIVE else None
    await review.decide(
        session, case, decision, HEAD, note=note, texts=texts, channels=frozenset(), now=LATER
    )


async def a_kept_example(
    session: AsyncSession, engine: PolicyEngine, texts: TelegramTexts, decision: Decision
) -> tuple[School, review.Case]:
    """A learning school with one flag SLT decided (so kept as an example)."""
    school = await a_school(session)
    await learning_on(session, school, texts)
    case = await a_flag(session, engine, school, user_id="501")
    await decide(session, case, decision, texts)
    return school, case


async def kept(session: AsyncSession) -> set[int]:
    return set(await session.scalars(select(LearningExample.flag_id)))


async def test_turning_it_on_says_so_in_a_new_notice_that_everyone_must_agree_to(
    sessions: Sessions, texts: TelegramTexts
) -> None:
    async with transaction(sessions) as session:
        school = await a_school(session)
        chat = await a_chat(session, school)
        member = await a_member(session, chat)
        await consent.give(session, chat, member, "button", NOW)
        version = await learning.set_learning(
            session, school, True, texts.notice, RETENTION, "user:1", NOW
        )
        assert version is not None
        assert chat.notice_version == version
        assert not await consent.has_consented(session, chat, member)
        notice = await session.scalar(
            select(OutboxMessage).where(OutboxMessage.purpose == "notice")
        )
        assert notice is not None
        assert "Learning from the school's decisions" in notice.text
        assert "after 365 days" in notice.text  # the flags' period, filled in
        # Already on: nothing changes, nobody is asked again.
        again = await learning.set_learning(
            session, school, True, texts.notice, RETENTION, "user:1", NOW
        )
        assert again is None
        assert chat.notice_version == version


async def test_a_decided_flag_is_kept_only_when_it_can_teach(
    sessions: Sessions, engine: PolicyEngine, texts: TelegramTexts
) -> None:
    async with transaction(sessions) as session:
        school = await a_school(session)
        before = await a_flag(
            session, engine, school, user_id="500", at="2026-11-24T13:00:00+00:00"
        )
        await learning_on(session, school, texts)
        confirmed = await a_flag(session, engine, school, user_id="501")
        cleared = await a_flag(session, engine, school, user_id="502", chat_id="-1002")
        escalated = await a_flag(session, engine, school, user_id="503", chat_id="-1003")
        acknowledged = await a_flag(session, engine, school, user_id="504", chat_id="-1004")
        for case, decision in (
            (before, Decision.CONFIRM),
            (confirmed, Decision.CONFIRM),
            (cleared, Decision.FALSE_POSITIVE),
            (escalated, Decision.ESCALATE),
            (acknowledged, Decision.ACKNOWLEDGE),
        ):
            await decide(session, case, decision, texts)
        # Raised before the school chose it (under a notice that did not say so): never kept.
        assert await kept(session) == {confirmed.flag.id, cleared.flag.id}
        examples = await LearningRepository(session).examples(school.id)
        assert [(e.flag_id, e.confirmed, e.rules) for e in examples] == [
            (confirmed.flag.id, True, frozenset({"abusive-to-parent"})),
            (cleared.flag.id, False, frozenset({"abusive-to-parent"})),
        ]
        assert examples[0].text == "you absolute idiot"
        # The member's own data says so.
        mine = await consent.subject_access(session, "telegram", "502")
        assert [f["kept_as_example"] for f in mine["chats"][0]["flags"]] == [True]
        theirs = await consent.subject_access(session, "telegram", "503")
        assert [f["kept_as_example"] for f in theirs["chats"][0]["flags"]] == [False]
        # A safeguarding matter is never an example, even one kept before.
        await decide(session, confirmed, Decision.ESCALATE, texts)
        assert await kept(session) == {cleared.flag.id}


async def test_withdrawing_deletes_the_examples_and_drops_the_model_refitted_with_them(
    sessions: Sessions, engine: PolicyEngine, texts: TelegramTexts
) -> None:
    async with transaction(sessions) as session:
        school = await a_school(session)
        await learning_on(session, school, texts)
        mine = await a_flag(session, engine, school, user_id="501")
        theirs = await a_flag(session, engine, school, user_id="502", chat_id="-1002")
        for case in (mine, theirs):
            await decide(session, case, Decision.CONFIRM, texts)
        trained = await LearningRepository(session).model_row(school.id)
        trained.weights, trained.trained_at, trained.base = b"trained", NOW, "v1"
        stamp = school.updated_at
    async with transaction(sessions) as session:
        await consent.withdraw(session, "telegram", "501", LATER)
    async with transaction(sessions) as session:
        assert await kept(session) == {theirs.flag.id}
        model = await LearningRepository(session).model(school.id)
        assert model is not None
        assert model.weights is None
        assert model.requested_at == LATER
        refreshed = await session.get(School, school.id)
        assert refreshed is not None
        assert refreshed.updated_at > stamp  # every process rebuilds the school's engine


async def test_erasing_a_parent_deletes_their_examples(
    sessions: Sessions, engine: PolicyEngine, texts: TelegramTexts
) -> None:
    async with transaction(sessions) as session:
        school, case = await a_kept_example(session, engine, texts, Decision.FALSE_POSITIVE)
        assert await kept(session) == {case.flag.id}
        await people.erase(session, school.id, "telegram", "501", "user:1", LATER)
        assert await kept(session) == set()
        assert await LearningRepository(session).examples(school.id) == []


async def test_an_example_ends_with_its_flag_at_the_end_of_retention(
    sessions: Sessions, engine: PolicyEngine, texts: TelegramTexts
) -> None:
    async with transaction(sessions) as session:
        _, case = await a_kept_example(session, engine, texts, Decision.CONFIRM)
        assert await kept(session) == {case.flag.id}
    defaults = RetentionDefaults(RETENTION.metadata, RETENTION.flags, timedelta(days=2190))
    async with transaction(sessions) as session:
        await purge_expired(session, case.flag.keep_until + timedelta(days=1), defaults)
    async with transaction(sessions) as session:
        assert await session.scalar(select(func.count()).select_from(Flag)) == 0
        assert await kept(session) == set()


async def test_turning_it_off_deletes_every_example_and_the_model(
    sessions: Sessions, engine: PolicyEngine, texts: TelegramTexts
) -> None:
    async with transaction(sessions) as session:
        school, case = await a_kept_example(session, engine, texts, Decision.CONFIRM)
        assert await kept(session) == {case.flag.id}
        await LearningRepository(session).model_row(school.id)
        await learning.set_learning(session, school, False, texts.notice, RETENTION, "t", LATER)
        assert settings_of(school).learning is None
        assert await kept(session) == set()
        assert await session.scalar(select(func.count()).select_from(SchoolModel)) == 0
        # Nothing decided from now on is kept.
        other = await a_flag(session, engine, school, user_id="502", chat_id="-1002")
        await decide(session, other, Decision.CONFIRM, texts)
        assert await kept(session) == set()


async def test_retraining_is_asked_for_nightly_and_on_request(
    sessions: Sessions, texts: TelegramTexts
) -> None:
    async with transaction(sessions) as session:
        school = await a_school(session)
        assert not await learning.request_retraining(session, school, "user:1", NOW)
        await learning_on(session, school, texts)
        assert await learning.request_retraining(session, school, "user:1", NOW)
        row = await LearningRepository(session).model_row(school.id)
        assert row.requested_at == NOW
        # Trained after last night's 02:00 (school time): nothing more is due tonight.
        row.requested_at, row.trained_at = None, NOW
        assert await learning.ask_nightly(session, NOW + timedelta(hours=3)) == [school.id]
        assert row.requested_at is None
        # The next night (02:00 London time is 02:00 UTC in November) it is.
        tomorrow = NOW.replace(hour=2, minute=1) + timedelta(days=1)
        await learning.ask_nightly(session, tomorrow)
        assert row.requested_at == tomorrow


async def test_only_one_process_takes_a_retraining(
    sessions: Sessions, texts: TelegramTexts
) -> None:
    now = utcnow()
    async with transaction(sessions) as session:
        school = await a_school(session)
        await learning_on(session, school, texts)
        await learning.request_retraining(session, school, "user:1", now)
    async with transaction(sessions) as session:
        repo = LearningRepository(session)
        assert await repo.due([school.id], now) == [school.id]
        assert await repo.claim(school.id, now, now + timedelta(minutes=30)) == now
        assert await repo.claim(school.id, now, now + timedelta(minutes=30)) is None
        assert await repo.due([school.id], now) == []
