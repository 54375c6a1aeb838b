"""Alerts, reminders and group posts through Twilio: the dispatcher's WhatsApp, SMS and group
senders, with the real twilio client against the fake Twilio API, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.channels.whatsapp.answers import MAX_BODY
from bot.channels.whatsapp.delivery import (
    MAX_SMS,
    SMS,
    WHATSAPP,
    WHATSAPP_GROUP,
    StatusReport,
    Templates,
    cut,
    failure,
    record_status,
    twilio_senders,
)
from bot.channels.whatsapp.twilio_client import TwilioApiError, WhatsAppApi
from bot.policy import PolicyEngine
from bot.services import consent, review, windows
from bot.services.alerts import AlertContext, alert_now
from bot.services.dispatcher import Dispatcher, PermanentFailure, RetryLater
from bot.services.moderation import Retention, check_message
from bot.services.outbox import enqueue
from bot.store.db import transaction
from bot.store.models import (
    Chat,
    ChatMember,
    ChatStatus,
    Flag,
    OutboxMessage,
    OutboxStatus,
    School,
    utcnow,
)
from bot.store.repositories.chats import ChatRepository
from bot.store.repositories.members import MemberRepository
from bot.store.repositories.outbox import OutboxRepository
from bot.store.repositories.schools import SchoolRepository
from bot.texts import TelegramTexts
from tests.conftest import message
from tests.factories import NOW, a_school
from tests.fakes.twilio_api import FakeTwilioAPI
from tests.fakes.twilio_webhooks import (
    PUBLIC_BASE_URL,
    SCHOOL_NUMBER,
    SCHOOL_WHATSAPP,
    parent,
)

pytestmark = pytest.mark.anyio
Sessions = async_sessionmaker[AsyncSession]
RETENTION = Retention(metadata=timedelta(days=30), flags=timedelta(days=365))
ALERT_TEMPLATE = "HX" + "a1" * 16
REMINDER_TEMPLATE = "HX" + "b2" * 16
INVITE_TEMPLATE = "HX" + "c3" * 16
HEAD_PHONE = "+447700900777"
HEAD_WHATSAPP = f"whatsapp:{HEAD_PHONE}"
SCHOOL_NAME = "Peartree Spring Primary School"
ON_TWILIO = frozenset({"telegram", "whatsapp", "sms"})


def a_dispatcher(
    sessions: Sessions, twilio_client: WhatsAppApi, templates: Templates | None = None
) -> Dispatcher:
    senders = twilio_senders(
        twilio_client, sessions, whatsapp_from=SCHOOL_WHATSAPP, sms_from=SCHOOL_NUMBER,
        templates=templates or Templates(alert=ALERT_TEMPLATE, reminder=REMINDER_TEMPLATE),
        public_base_url=PUBLIC_BASE_URL,
    )  # fmt: skip
    return Dispatcher(sessions, senders)


async def a_group(session: AsyncSession, school: School, sid: str) -> Chat:
    """A hosted WhatsApp class group, registered to ``school``."""
    chat = await ChatRepository(session).find_or_add("whatsapp", sid, "Year 3 Parents")
    chat.school_id, chat.class_name = school.id, "Year 3"
    chat.status, chat.registered_at, chat.notice_version = ChatStatus.REGISTERED, NOW, "test-1"
    await session.flush()
    return chat


async def a_parent(session: AsyncSession, chat: Chat, n: int = 1) -> ChatMember:
    member = await MemberRepository(session).find_or_add(chat.id, parent(n), "Becky Sutton", None)
    await consent.give(session, chat, member, "reply", NOW)
    return member


async def a_flag(
    session: AsyncSession, engine: PolicyEngine, chat: Chat, member: ChatMember
) -> Flag:
    """A real flag: an abusive reply to another parent (high severity: alerted at once)."""
    rude = message("you absolute idiot", id="IM0001", reply_to="Kerry Marsh")
    checked = await check_message(session, engine, chat, member, rude, RETENTION, NOW)
    assert checked.flag is not None
    return checked.flag


async def head_takes_alerts_on(session: AsyncSession, school: School, *channels: str) -> None:
    [head] = [s for s in await SchoolRepository(session).staff(school.id) if s.dsl]
    head.phone, head.alert_channels = HEAD_PHONE, list(channels)


async def alert_queued(
    sessions: Sessions, engine: PolicyEngine, texts: TelegramTexts, *channels: str
) -> Flag:
    """A flag in a WhatsApp group, alerted to the head on ``channels``."""
    async with transaction(sessions) as session:
        school = await a_school(session)
        await head_takes_alerts_on(session, school, *channels)
        chat = await a_group(session, school, "CH" + "0" * 32)
        member = await a_parent(session, chat)
        flag = await a_flag(session, engine, chat, member)
        alert = AlertContext(flag, list(flag.reasons), chat, member, "you absolute idiot")
        assert await alert_now(session, texts, alert, channels=ON_TWILIO) == len(channels)
    return flag


async def rows(sessions: Sessions, purpose: str | None = None) -> list[OutboxMessage]:
    async with sessions() as session:
        return await OutboxRepository(session).listing(purpose=purpose)


async def test_inside_the_window_an_alert_is_free_text_with_a_link_for_its_buttons(
    sessions: Sessions,
    engine: PolicyEngine,
    texts: TelegramTexts,
    twilio: FakeTwilioAPI,
    twilio_client: WhatsAppApi,
) -> None:
    flag = await alert_queued(sessions, engine, texts, WHATSAPP)
    async with transaction(sessions) as session:
        await windows.record_inbound(session, HEAD_WHATSAPP, utcnow() - timedelta(hours=2))
    twilio.open_whatsapp_window(HEAD_WHATSAPP)
    assert await a_dispatcher(sessions, twilio_client).deliver_due() == 1

    [row] = await rows(sessions, "alert")
    assert (row.channel, row.recipient, row.status) == (WHATSAPP, HEAD_WHATSAPP, OutboxStatus.SENT)
    assert row.buttons  # Telegram's buttons, kept on the row for Telegram
    [sent] = twilio.sent_messages(to=HEAD_WHATSAPP)
    assert (sent.from_, sent.content_sid, sent.error_code) == (SCHOOL_WHATSAPP, None, None)
    assert sent.body == (f"{row.text}\n\nTo act on it: {PUBLIC_BASE_URL}/flags/{flag.id}")
    assert row.delivered_id == sent.sid


async def test_a_long_alert_is_cut_but_keeps_its_link(
    sessions: Sessions,
    engine: PolicyEngine,
    texts: TelegramTexts,
    twilio: FakeTwilioAPI,
    twilio_client: WhatsAppApi,
) -> None:
    flag = await alert_queued(sessions, engine, texts, WHATSAPP)
    async with transaction(sessions) as session:
        [row] = await OutboxRepository(session).listing(purpose="alert")
        row.text = "High concern in Year 3 Parents\n" + "so many words " * 300
        await windows.record_inbound(session, HEAD_WHATSAPP, utcnow())
    twilio.open_whatsapp_window(HEAD_WHATSAPP)
    await a_dispatcher(sessions, twilio_client).deliver_due()
    [sent] = twilio.sent_messages(to=HEAD_WHATSAPP)
    assert sent.body is not None
    assert len(sent.body) <= MAX_BODY
    assert sent.body.endswith(f"many…\n\nTo act on it: {PUBLIC_BASE_URL}/flags/{flag.id}")


async def test_outside_the_window_an_alert_uses_the_alert_template(
    sessions: Sessions,
    engine: PolicyEngine,
    texts: TelegramTexts,
    twilio: FakeTwilioAPI,
    twilio_client: WhatsAppApi,
) -> None:
    flag = await alert_queued(sessions, engine, texts, WHATSAPP)
    async with transaction(sessions) as session:
        # They wrote to the school's number, but more than 24 hours ago.
        await windows.record_inbound(session, HEAD_WHATSAPP, utcnow() - timedelta(hours=25))
    assert await a_dispatcher(sessions, twilio_client).deliver_due() == 1

    [row] = await rows(sessions, "alert")
    assert row.status == OutboxStatus.SENT
    [sent] = twilio.sent_messages(to=HEAD_WHATSAPP)
    assert (sent.body, sent.content_sid, sent.error_code) == (None, ALERT_TEMPLATE, None)
    assert sent.content_variables == {
        "1": SCHOOL_NAME,
        "2": "High concern in Year 3 Parents",
        "3": f"{PUBLIC_BASE_URL}/flags/{flag.id}",
    }


async def test_outside_the_window_without_a_template_the_alert_fails_saying_why(
    sessions: Sessions,
    engine: PolicyEngine,
    texts: TelegramTexts,
    twilio: FakeTwilioAPI,
    twilio_client: WhatsAppApi,
) -> None:
    await alert_queued(sessions, engine, texts, WHATSAPP)
    await a_dispatcher(sessions, twilio_client, Templates(reminder=REMINDER_TEMPLATE)).deliver_due()

    [row] = await rows(sessions, "alert")
    assert row.status == OutboxStatus.FAILED
    assert row.error == (
        "outside WhatsApp's 24-hour window and no approved template is set (TWILIO_TEMPLATE_ALERT)"
    )
    assert twilio.sent_messages() == []


async def test_a_busy_twilio_is_tried_again_later(
    sessions: Sessions,
    engine: PolicyEngine,
    texts: TelegramTexts,
    twilio: FakeTwilioAPI,
    twilio_client: WhatsAppApi,
) -> None:
    await alert_queued(sessions, engine, texts, WHATSAPP)
    twilio.fail_next("message.create", 503)
    dispatcher = a_dispatcher(sessions, twilio_client)
    await dispatcher.deliver_due()
    [row] = await rows(sessions, "alert")
    assert (row.status, row.attempts) == (OutboxStatus.PENDING, 1)
    assert "HTTP 503" in (row.error or "")
    assert twilio.sent_messages() == []

    await dispatcher.deliver_due(utcnow() + timedelta(seconds=5))
    [row] = await rows(sessions, "alert")
    assert (row.status, row.attempts) == (OutboxStatus.SENT, 2)
    assert len(twilio.sent_messages(to=HEAD_WHATSAPP)) == 1


async def test_an_sms_alert_is_its_summary_and_link(
    sessions: Sessions,
    engine: PolicyEngine,
    texts: TelegramTexts,
    twilio: FakeTwilioAPI,
    twilio_client: WhatsAppApi,
) -> None:
    flag = await alert_queued(sessions, engine, texts, SMS)
    assert await a_dispatcher(sessions, twilio_client).deliver_due() == 1

    [row] = await rows(sessions, "alert")
    assert (row.channel, row.recipient, row.status) == (SMS, HEAD_PHONE, OutboxStatus.SENT)
    [sent] = twilio.sent_messages(to=HEAD_PHONE)
    assert sent.from_ == SCHOOL_NUMBER
    assert sent.body == f"High concern in Year 3 Parents\n{PUBLIC_BASE_URL}/flags/{flag.id}"


async def test_an_unsubscribed_number_fails_for_good_saying_why(
    sessions: Sessions,
    engine: PolicyEngine,
    texts: TelegramTexts,
    twilio: FakeTwilioAPI,
    twilio_client: WhatsAppApi,
) -> None:
    await alert_queued(sessions, engine, texts, SMS)
    twilio.fail_next("message.create", 400, code=21610, message="Attempt to send to unsubscribed")
    await a_dispatcher(sessions, twilio_client).deliver_due()
    [row] = await rows(sessions, "alert")
    assert row.status == OutboxStatus.FAILED
    assert row.error == (
        "SMS: the recipient has opted out of messages from this number (they replied STOP) "
        "(Twilio error 21610)"
    )


async def test_a_reminder_goes_to_a_whatsapp_member_privately(
    sessions: Sessions,
    engine: PolicyEngine,
    texts: TelegramTexts,
    twilio: FakeTwilioAPI,
    twilio_client: WhatsAppApi,
) -> None:
    async with transaction(sessions) as session:
        school = await a_school(session)
        chat = await a_group(session, school, "CH" + "1" * 32)
        member = await a_parent(session, chat, 2)
        flag = await a_flag(session, engine, chat, member)
        case = await review.find_case(session, flag.id)
        assert case is not None
        reviewer = review.Reviewer("user:1", "Mrs Anita Patel")
        await review.act(session, case, review.Step.REMIND, reviewer, texts=texts, now=NOW)
        await review.act(session, case, review.Step.MEET, reviewer, texts=texts, now=NOW)
    [reminder] = await rows(sessions, "reminder")
    assert (reminder.channel, reminder.recipient, reminder.reply_to) == (WHATSAPP, parent(2), None)

    # The parent wrote in the group a moment ago: the reminder goes as it is.
    async with transaction(sessions) as session:
        await windows.record_inbound(session, parent(2), utcnow())
    twilio.open_whatsapp_window(parent(2))
    await a_dispatcher(sessions, twilio_client).deliver_due()
    first, second = twilio.sent_messages(to=parent(2))
    assert first.body == reminder.text
    assert first.body.startswith("Hi Becky, a gentle reminder from the school")
    assert (first.error_code, second.error_code) == (None, None)
    assert all(row.status == OutboxStatus.SENT for row in await rows(sessions))


async def test_outside_the_window_a_reminder_uses_the_reminder_template(
    sessions: Sessions,
    engine: PolicyEngine,
    texts: TelegramTexts,
    twilio: FakeTwilioAPI,
    twilio_client: WhatsAppApi,
) -> None:
    async with transaction(sessions) as session:
        school = await a_school(session)
        chat = await a_group(session, school, "CH" + "2" * 32)
        member = await a_parent(session, chat, 3)
        flag = await a_flag(session, engine, chat, member)
        case = await review.find_case(session, flag.id)
        assert case is not None
        reviewer = review.Reviewer("user:1", "Mrs Anita Patel")
        await review.act(session, case, review.Step.REMIND, reviewer, texts=texts, now=NOW)
    await a_dispatcher(sessions, twilio_client).deliver_due()
    [reminder] = await rows(sessions, "reminder")
    [sent] = twilio.sent_messages(to=parent(3))
    assert (sent.body, sent.content_sid) == (None, REMINDER_TEMPLATE)
    assert sent.content_variables == {"1": SCHOOL_NAME, "2": reminder.text}


async def test_an_invitation_outside_the_window_uses_the_invite_template(
    sessions: Sessions, twilio: FakeTwilioAPI, twilio_client: WhatsAppApi
) -> None:
    async with transaction(sessions) as session:
        school = await a_school(session)
        await enqueue(
            session, key="invite:1", channel="whatsapp", recipient=parent(4),
            text="Peartree invites you to Year 3 Parents on WhatsApp: reply JOIN to join.",
            purpose="invite", school_id=school.id,
        )  # fmt: skip
    templates = Templates(alert=ALERT_TEMPLATE, reminder=REMINDER_TEMPLATE, invite=INVITE_TEMPLATE)
    await a_dispatcher(sessions, twilio_client, templates).deliver_due()
    [sent] = twilio.sent_messages(to=parent(4))
    assert sent.content_sid == INVITE_TEMPLATE
    assert sent.content_variables is not None
    assert sent.content_variables["1"] == SCHOOL_NAME


async def test_a_message_twilio_took_but_could_not_deliver_is_marked_failed(
    sessions: Sessions, engine: PolicyEngine, texts: TelegramTexts, twilio_client: WhatsAppApi
) -> None:
    await alert_queued(sessions, engine, texts, "whatsapp")
    async with transaction(sessions) as session:
        await windows.record_inbound(session, HEAD_WHATSAPP, utcnow())
    await a_dispatcher(sessions, twilio_client).deliver_due()
    [alert] = await rows(sessions, "alert")
    assert alert.status == OutboxStatus.SENT
    assert alert.delivered_id is not None
    async with transaction(sessions) as session:
        delivered = StatusReport(alert.delivered_id, "delivered", None, HEAD_WHATSAPP)
        await record_status(session, delivered, NOW)
    assert (await rows(sessions, "alert"))[0].status == OutboxStatus.SENT
    async with transaction(sessions) as session:
        failed = StatusReport(alert.delivered_id, "undelivered", 63016, HEAD_WHATSAPP)
        await record_status(session, failed, NOW)
    [alert] = await rows(sessions, "alert")
    assert alert.status == OutboxStatus.FAILED
    assert alert.error is not None
    assert "24-hour window" in alert.error
    assert "63016" in alert.error


async def test_a_notice_is_posted_to_the_group_by_schoolgate(
    sessions: Sessions, twilio: FakeTwilioAPI, twilio_client: WhatsAppApi
) -> None:
    group = await twilio_client.create_conversation("Year 3 Parents")
    twilio.open_whatsapp_window(parent(4))
    await twilio_client.add_whatsapp_participant(group.sid, parent(4), SCHOOL_WHATSAPP, "Becky")
    async with transaction(sessions) as session:
        await enqueue(
            session, key="notice:1", channel=WHATSAPP_GROUP, recipient=group.sid,
            text="Notice from the school:\nplease be kind.", purpose="notice",
        )  # fmt: skip
    await a_dispatcher(sessions, twilio_client).deliver_due()

    [row] = await rows(sessions, "notice")
    [posted] = twilio.messages(group.sid)
    assert (row.status, row.delivered_id) == (OutboxStatus.SENT, posted.sid)
    assert (posted.author, posted.body) == (
        "Schoolgate",
        "Notice from the school:\nplease be kind.",
    )
    [delivered] = twilio.delivered_to(parent(4))
    assert delivered.body == posted.body


async def test_a_notice_longer_than_one_message_is_posted_whole_in_parts(
    sessions: Sessions, twilio: FakeTwilioAPI, twilio_client: WhatsAppApi
) -> None:
    """A school's own notice may run to 4,000 characters; how to agree comes at its end."""
    group = await twilio_client.create_conversation("Year 3 Parents")
    paragraphs = [f"Paragraph {n}: " + " ".join(["word"] * 120) for n in range(6)]
    notice = "\n\n".join([*paragraphs, "Reply AGREE to agree."])
    async with transaction(sessions) as session:
        await enqueue(
            session, key="notice:long", channel=WHATSAPP_GROUP, recipient=group.sid,
            text=notice, purpose="notice",
        )  # fmt: skip
    await a_dispatcher(sessions, twilio_client).deliver_due()

    [row] = await rows(sessions, "notice")
    posted = twilio.messages(group.sid)
    assert len(posted) > 1
    assert all(len(p.body or "") <= 1600 for p in posted)
    assert "\n\n".join(p.body or "" for p in posted) == notice
    assert (row.status, row.delivered_id) == (OutboxStatus.SENT, posted[-1].sid)


async def test_a_closed_group_takes_no_more_posts(
    sessions: Sessions, twilio: FakeTwilioAPI, twilio_client: WhatsAppApi
) -> None:
    group = await twilio_client.create_conversation("Year 4 Parents")
    await twilio_client.close_conversation(group.sid)
    async with transaction(sessions) as session:
        await enqueue(
            session, key="notice:2", channel=WHATSAPP_GROUP, recipient=group.sid,
            text="Anyone there?", purpose="notice",
        )  # fmt: skip
    await a_dispatcher(sessions, twilio_client).deliver_due()
    [row] = await rows(sessions, "notice")
    assert row.status == OutboxStatus.FAILED
    assert row.error == "WhatsApp group: the group's conversation is closed (Twilio error 50377)"


@pytest.mark.parametrize(
    ("status", "code", "retried"),
    [
        (None, None, True),  # no answer at all
        (429, 20429, True),
        (500, 20500, True),
        (401, 20003, True),  # wrong credentials: every row would fail alike until fixed
        (400, 21211, False),
        (400, 21614, False),
        (400, 63016, False),
        (404, 20404, False),
    ],
)
def test_twilio_errors_are_retried_only_when_a_retry_can_help(
    status: int | None, code: int | None, retried: bool
) -> None:
    outcome = failure(TwilioApiError(status, code, "refused"), "WhatsApp")
    assert isinstance(outcome, RetryLater if retried else PermanentFailure)
    assert outcome.reason.startswith("WhatsApp: ")


def test_texts_are_cut_at_a_word() -> None:
    assert cut("short", 10) == "short"
    assert cut("a message far too long for one text", 20) == "a message far too…"
    assert len(cut("x" * 500, MAX_SMS)) == MAX_SMS
