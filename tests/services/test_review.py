"""SLT's decisions and actions on a flag (bot.services.review), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.errors import BadInputError, ConflictError, NotFoundError
from bot.policy import PolicyEngine
from bot.services import consent, review
from bot.services.alerts import alert_buttons
from bot.services.moderation import Retention, check_message
from bot.services.review import Decision, Outcome, Reviewer, Step
from bot.services.schools import day_bounds
from bot.store.db import transaction
from bot.store.models import (
    AuditEvent,
    FlagSource,
    FlagStatus,
    OutboxMessage,
    OutboxStatus,
    School,
    StaffMember,
)
from bot.store.repositories.outbox import OutboxRepository
from bot.texts import TelegramTexts, load_telegram_texts
from tests.conftest import CONFIG_DIR, message
from tests.factories import NOW, a_chat, a_member, another_school

pytestmark = pytest.mark.anyio
TG = frozenset({"telegram"})  # the channels of an installation without e-mail
MAIL = frozenset({"telegram", "email"})  # the channels of an installation with e-mail
Sessions = async_sessionmaker[AsyncSession]
RETENTION = Retention(metadata=timedelta(days=30), flags=timedelta(days=365))
SENT = datetime.fromisoformat("2026-11-24T14:00:00+00:00")
RUDE = "you absolute idiot"
HEAD = Reviewer("user:1", "Mrs Anita Patel")
DEPUTY = Reviewer("user:2", "Mr Sam Deputy")


@pytest.fixture(scope="module")
def texts() -> TelegramTexts:
    return load_telegram_texts(CONFIG_DIR)


async def a_case(
    session: AsyncSession,
    engine: PolicyEngine,
    *,
    school: School | None = None,
    bot_admin: bool = False,
    private_chat: str | None = None,
) -> review.Case:
    """A real flag: a consenting parent's abusive reply, checked by the policy engine."""
    chat = await a_chat(session, school)
    chat.bot_is_admin = bot_admin
    sender = await a_member(session, chat)
    sender.private_chat_id = private_chat
    await consent.give(session, chat, sender, "button", NOW)
    rude = message(RUDE, id="42", reply_to="Kerry Marsh")
    checked = await check_message(session, engine, chat, sender, rude, RETENTION, NOW)
    assert checked.flag is not None
    case = await review.find_case(session, checked.flag.id)
    assert case is not None
    return case


async def audit(session: AsyncSession, action: str) -> list[AuditEvent]:
    query = select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
    return list(await session.scalars(query))


async def outbox(session: AsyncSession, purpose: str) -> list[OutboxMessage]:
    return await OutboxRepository(session).listing(purpose=purpose)


async def test_acknowledging_records_who_and_when_once(
    sessions: Sessions, engine: PolicyEngine, texts: TelegramTexts
) -> None:
    async with transaction(sessions) as session:
        case = await a_case(session, engine)
        decided = await review.decide(
            session, case, Decision.ACKNOWLEDGE, HEAD, note=None, texts=texts, channels=TG, now=NOW
        )
        flag = case.flag
        assert decided.changed
        assert flag.status == FlagStatus.ACKNOWLEDGED
        assert (flag.acknowledged_at, flag.acknowledged_by) == (NOW, "user:1")
        assert (flag.decided_at, flag.decided_by, flag.decision_note) == (NOW, "user:1", None)
        again = await review.decide(
            session, case, Decision.ACKNOWLEDGE, DEPUTY, note=None, texts=texts, channels=TG,
            now=NOW + timedelta(hours=1),
        )  # fmt: skip
        assert not again.changed
        assert flag.acknowledged_by == "user:1"
        [event] = await audit(session, "flag.acknowledged")
        assert (event.actor, event.subject) == ("user:1", f"flag:{flag.id}")
        assert event.school_id == case.school_id


async def test_not_a_breach_needs_a_reason_and_slt_may_change_their_mind(
    sessions: Sessions, engine: PolicyEngine, texts: TelegramTexts
) -> None:
    async with transaction(sessions) as session:
        case = await a_case(session, engine)
        for blank in (None, "", "   "):
            with pytest.raises(BadInputError, match="reason"):
                await review.decide(
                    session, case, Decision.FALSE_POSITIVE, HEAD, note=blank, texts=texts,
                    channels=TG, now=NOW,
                )  # fmt: skip
        assert (case.flag.status, case.flag.decided_at) == (FlagStatus.OPEN, None)
        assert await audit(session, "flag.false_positive") == []

        await review.decide(
            session, case, Decision.CONFIRM, HEAD, note=None, texts=texts, channels=TG, now=NOW
        )
        assert case.flag.status == FlagStatus.CONFIRMED
        later = NOW + timedelta(days=1)
        await review.decide(
            session, case, Decision.FALSE_POSITIVE, DEPUTY, note=" Banter between sisters. ",
            texts=texts, channels=TG, now=later,
        )  # fmt: skip
        flag = case.flag
        assert flag.status == FlagStatus.FALSE_POSITIVE
        assert (flag.decided_by, flag.decided_at) == ("user:2", later)
        assert flag.decision_note == "Banter between sisters."
        assert flag.acknowledged_by == "user:1"  # the first to act on it
        assert len(await audit(session, "flag.confirmed")) == 1
        [cleared] = await audit(session, "flag.false_positive")
        assert cleared.details["reason"] == "Banter between sisters."
        assert cleared.details["rules"] == ["abusive-to-parent"]
        assert cleared.details["previous"] == "confirmed"


async def test_an_acknowledgement_does_not_undo_a_decision(
    sessions: Sessions, engine: PolicyEngine, texts: TelegramTexts
) -> None:
    async with transaction(sessions) as session:
        case = await a_case(session, engine)
        await review.decide(
            session, case, Decision.CONFIRM, HEAD, note=None, texts=texts, channels=TG, now=NOW
        )
        late = await review.decide(
            session, case, Decision.ACKNOWLEDGE, DEPUTY, note=None, texts=texts, channels=TG,
            now=NOW,
        )  # fmt: skip
        assert not late.changed
        assert case.flag.status == FlagStatus.CONFIRMED
        assert await audit(session, "flag.acknowledged") == []


async def staff(session: AsyncSession, name: str) -> StaffMember:
    found = await session.scalar(select(StaffMember).where(StaffMember.name == name))
    assert found is not None
    return found


async def test_escalating_hides_the_flag_from_slt_and_alerts_the_dsl(
    sessions: Sessions, engine: PolicyEngine, texts: TelegramTexts
) -> None:
    async with transaction(sessions) as session:
        case = await a_case(session, engine)
        head = await staff(session, "Mrs Anita Patel")  # DSL, with an e-mail address
        head.telegram_user_id = 7001
        bursar = await staff(session, "Mrs Sarah Bennett")  # SLT, not DSL
        bursar.telegram_user_id = 7002
        decided = await review.decide(
            session, case, Decision.ESCALATE, DEPUTY, note="Mentions a child at home",
            texts=texts, channels=MAIL, now=NOW,
        )  # fmt: skip
        flag = case.flag
        assert decided.alerted == 2
        assert (flag.status, flag.safeguarding) == (FlagStatus.ESCALATED, True)
        alerts = await outbox(session, "alert")
        assert {(a.channel, a.recipient) for a in alerts} == {
            ("telegram", "7001"),
            ("email", "head@peartree.example.sch.uk"),
        }
        assert all(a.staff_id == head.id and a.flag_id == flag.id for a in alerts)
        text = alerts[0].text
        assert text.startswith("Escalated to the Designated Safeguarding Lead by Mr Sam Deputy")
        assert "Mentions a child at home" in text
        assert RUDE in text
        [event] = await audit(session, "flag.escalated")
        assert event.details["reason"] == "Mentions a child at home"
        assert event.details["rules"] == ["abusive-to-parent"]

        with pytest.raises(NotFoundError):
            await review.open_case(session, flag.id, case.school_id, see_safeguarding=False)
        seen = await review.open_case(session, flag.id, case.school_id, see_safeguarding=True)
        assert seen.flag.id == flag.id

        # Escalating again changes nothing and alerts nobody twice.
        again = await review.decide(
            session, case, Decision.ESCALATE, DEPUTY, note=None, texts=texts, channels=MAIL, now=NOW
        )
        assert not again.changed
        assert len(await outbox(session, "alert")) == 2


async def test_the_dsl_is_alerted_only_on_the_channels_they_chose(
    sessions: Sessions, engine: PolicyEngine, texts: TelegramTexts
) -> None:
    async with transaction(sessions) as session:
        case = await a_case(session, engine)
        head = await staff(session, "Mrs Anita Patel")
        head.telegram_user_id, head.alert_channels = 7001, ["telegram"]
        decided = await review.decide(
            session, case, Decision.ESCALATE, DEPUTY, note=None, texts=texts, channels=MAIL, now=NOW
        )
        assert decided.alerted == 1
        [alert] = await outbox(session, "alert")
        assert alert.channel == "telegram"
        assert "Why: (none given)" in alert.text


async def test_remind_and_meet_go_to_the_sender(
    sessions: Sessions, engine: PolicyEngine, texts: TelegramTexts
) -> None:
    async with transaction(sessions) as session:
        case = await a_case(session, engine)
        assert await review.act(session, case, Step.REMIND, HEAD, texts=texts, now=NOW) is (
            Outcome.QUEUED
        )
        [reminder] = await outbox(session, "reminder")
        # No private chat with the bot: a reply to the message in the chat.
        assert (reminder.recipient, reminder.reply_to) == (case.chat.platform_chat_id, "42")
        assert reminder.text.startswith("Hi Becky, a gentle reminder from the school")
        assert "Sending abusive messages to fellow parents/carers" in reminder.text

        case.sender.private_chat_id = "501"
        await review.act(session, case, Step.MEET, HEAD, texts=texts, now=NOW)
        [meeting] = await outbox(session, "meeting")
        assert (meeting.recipient, meeting.reply_to) == ("501", None)
        assert meeting.text.startswith("Hi Becky, Peartree Spring Primary School would like")
        assert len(await audit(session, "flag.reminder_sent")) == 1
        assert len(await audit(session, "flag.meeting_requested")) == 1


@pytest.mark.parametrize(
    ("bot_admin", "age", "deleted"),
    [
        (True, timedelta(hours=1), True),
        (True, timedelta(hours=49), False),  # Telegram no longer lets a bot delete it
        (False, timedelta(hours=1), False),
    ],
)
async def test_removal_deletes_through_the_outbox_or_asks_the_sender(
    sessions: Sessions,
    engine: PolicyEngine,
    texts: TelegramTexts,
    bot_admin: bool,
    age: timedelta,
    deleted: bool,
) -> None:
    async with transaction(sessions) as session:
        case = await a_case(session, engine, bot_admin=bot_admin)
        outcome = await review.act(session, case, Step.REMOVE, HEAD, texts=texts, now=SENT + age)
        deletes, requests = await outbox(session, "delete"), await outbox(session, "removal")
        if deleted:
            assert outcome is Outcome.DELETED
            [delete] = deletes
            assert (delete.channel, delete.recipient) == ("telegram", case.chat.platform_chat_id)
            assert delete.reply_to == "42"
            assert delete.flag_id == case.flag.id
            assert requests == []
        else:
            assert outcome is Outcome.ASKED
            assert deletes == []
            [request] = requests
            assert request.text.startswith("Hi Becky, the school has asked for your message")
        [event] = await audit(session, "flag.removal_requested")
        assert event.details == {"outcome": "deleted" if deleted else "asked sender"}


async def test_after_telegram_refused_the_deletion_the_sender_is_asked(
    sessions: Sessions, engine: PolicyEngine, texts: TelegramTexts
) -> None:
    async with transaction(sessions) as session:
        case = await a_case(session, engine, bot_admin=True)
        first = await review.act(session, case, Step.REMOVE, HEAD, texts=texts, now=SENT)
        assert first is Outcome.DELETED
        [delete] = await outbox(session, "delete")
        # The dispatcher gave up on it: Telegram answered that the bot lacks the right.
        delete.status, delete.error = OutboxStatus.FAILED, "Bad Request: not enough rights"
        await session.flush()
        again = await review.act(session, case, Step.REMOVE, HEAD, texts=texts, now=SENT)
        assert again is Outcome.ASKED
        [request] = await outbox(session, "removal")
        assert request.text.startswith("Hi Becky, the school has asked for your message")


async def test_on_whatsapp_removal_always_asks_the_sender_privately(
    sessions: Sessions, engine: PolicyEngine, texts: TelegramTexts
) -> None:
    async with transaction(sessions) as session:
        case = await a_case(session, engine, bot_admin=True)
        case.chat.platform, case.chat.platform_chat_id = "whatsapp", "CH" + "0" * 32
        case.sender.platform_user_id = "whatsapp:+447700900001"
        await session.flush()
        # Recent, and the bot "admin": on Telegram it would delete it; WhatsApp cannot unsend.
        outcome = await review.act(session, case, Step.REMOVE, HEAD, texts=texts, now=SENT)
        assert outcome is Outcome.ASKED
        assert await outbox(session, "delete") == []
        [request] = await outbox(session, "removal")
        assert (request.channel, request.recipient) == ("whatsapp", "whatsapp:+447700900001")
        assert request.reply_to is None
        assert request.text.startswith("Hi Becky, the school has asked for your message")
        [event] = await audit(session, "flag.removal_requested")
        assert event.details == {"outcome": "asked sender", "why": "whatsapp cannot unsend"}


@pytest.mark.parametrize("step", list(Step))
async def test_a_report_has_no_sender_to_act_on(
    sessions: Sessions, engine: PolicyEngine, texts: TelegramTexts, step: Step
) -> None:
    async with transaction(sessions) as session:
        case = await a_case(session, engine)
        case.flag.source = FlagSource.REPORT  # its member is the parent who reported it
        assert not review.acts_on_sender(case)
        with pytest.raises(ConflictError, match="This is a report: the message's author is not"):
            await review.act(session, case, step, HEAD, texts=texts, now=NOW)
        assert await OutboxRepository(session).listing() == []
        assert await audit(session, "flag.reminder_sent") == []
        labels = [label for label, _ in alert_buttons(texts, case.flag)]
        assert labels == ["Acknowledge", "Not a breach"]  # no buttons that would reach them


async def test_another_schools_flag_is_not_found(sessions: Sessions, engine: PolicyEngine) -> None:
    async with transaction(sessions) as session:
        case = await a_case(session, engine)
        elsewhere = await another_school(session)
        with pytest.raises(NotFoundError):
            await review.open_case(session, case.flag.id, elsewhere.id, see_safeguarding=True)
        with pytest.raises(NotFoundError):
            await review.open_case(session, 2**40, case.school_id, see_safeguarding=True)


async def test_the_context_shows_words_only_where_they_are_kept_and_the_view_is_audited(
    sessions: Sessions, engine: PolicyEngine, texts: TelegramTexts
) -> None:
    async with transaction(sessions) as session:
        case = await a_case(session, engine)
        other = await a_member(session, case.chat, user_id="502", name="Kerry Marsh")
        await consent.give(session, case.chat, other, "button", NOW)
        flagged = {}
        for id, text, minute in [
            ("40", "anyone got a spare book bag?", 58),
            ("41", "ur a vile woman and everyone knows it", 59),
            ("43", "see you at pick up", 1),
        ]:
            sent_at = f"2026-11-24T{13 if minute > 30 else 14}:{minute:02d}:00+00:00"
            said = message(text, id=id, sent_at=sent_at, sender="Kerry Marsh")
            checked = await check_message(session, engine, case.chat, other, said, RETENTION, NOW)
            flagged[id] = checked.flag
        assert flagged["40"] is None
        assert flagged["43"] is None
        assert flagged["41"] is not None
        escalated = await review.find_case(session, flagged["41"].id)
        assert escalated is not None
        await review.decide(
            session, escalated, Decision.ESCALATE, HEAD, note=None, texts=texts, channels=TG,
            now=NOW,
        )  # fmt: skip

        seen = await review.examine(session, case, DEPUTY, see_safeguarding=False, via="test")
        assert [(n.sender, n.text, n.why_not, n.this) for n in seen.context] == [
            ("Kerry Marsh", None, "words not kept", False),
            ("Kerry Marsh", None, "words not shown: a safeguarding matter for the DSL", False),
            ("Becky Sutton", RUDE, None, True),
            ("Kerry Marsh", None, "words not kept", False),
        ]
        dsl = await review.examine(session, case, HEAD, see_safeguarding=True, via="test")
        assert dsl.context[1].text == "ur a vile woman and everyone knows it"
        slt_view, dsl_view = await audit(session, "flag.viewed")
        assert slt_view.details == {"via": "test", "context_words": []}
        assert dsl_view.details["context_words"] == [flagged["41"].message_id]
        assert [e.action for e in dsl.history] == ["flag.raised", "flag.viewed", "flag.viewed"]
        assert dsl.name("user:2") == "user:2"  # no such account: shown as it is logged
        assert dsl.name("system") == "Schoolgate"


def test_local_dates_become_utc_bounds() -> None:
    london = ZoneInfo("Europe/London")
    start, end = day_bounds(london, date(2026, 7, 1), date(2026, 7, 1))
    assert start == datetime(2026, 6, 30, 23, 0, tzinfo=UTC)  # British Summer Time
    assert end == datetime(2026, 7, 1, 23, 0, tzinfo=UTC)
    assert day_bounds(london, None, None) == (None, None)
    with pytest.raises(BadInputError):
        day_bounds(london, date(2026, 7, 2), date(2026, 7, 1))
