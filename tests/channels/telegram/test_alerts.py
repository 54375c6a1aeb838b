"""SLT alerts, their buttons, and reminders to senders, end to end through the fake Bot API."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, time, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.channels.telegram.delivery import DELETE, TelegramSender
from bot.channels.telegram.runtime import TelegramRuntime
from bot.services import review
from bot.services.dispatcher import PermanentFailure
from bot.store.db import transaction
from bot.store.models import Flag, FlagStatus, OutboxMessage, utcnow
from bot.texts import TelegramTexts
from tests.channels.telegram.support import (
    ABUSIVE,
    ANITA,
    ANITA_PRIVATE,
    IN_HOURS,
    SAM,
    SARAH,
    YEAR3,
    agree,
    audit_actions,
    deliver,
    link_head,
    link_staff,
    register,
    rows,
    sent_in,
    wait_for,
)
from tests.fakes import telegram_updates as tu
from tests.fakes.telegram_api import FakeTelegramAPI, SentMessage

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("bot")]
TG = frozenset({"telegram"})  # the channels of an installation without e-mail
Sessions = async_sessionmaker[AsyncSession]

# Sunday 29 November 2026, 10:00 in London: outside working hours.
SUNDAY = datetime(2026, 11, 29, 10, 0, tzinfo=UTC)


async def an_alert(api: FakeTelegramAPI) -> SentMessage:
    _linked, alert = await sent_in(api, ANITA_PRIVATE, 2)
    return alert


def button(alert: SentMessage, label: str) -> str:
    markup = alert.reply_markup or {}
    for row in markup["inline_keyboard"]:
        for each in row:
            if each["text"] == label:
                return str(each["callback_data"])
    raise AssertionError(f"no {label!r} button on the alert")


async def press(api: FakeTelegramAPI, sessions: Sessions, alert: SentMessage, label: str) -> None:
    data = button(alert, label)
    await deliver(api, sessions, tu.callback_query(None, ANITA, alert.message, data))


async def flag_status(sessions: Sessions) -> FlagStatus:
    [flag] = await rows(sessions, Flag)
    return flag.status


async def test_an_abusive_message_alerts_the_linked_head_who_acknowledges_it(
    api: FakeTelegramAPI, sessions: Sessions
) -> None:
    await link_head(api, sessions)
    notice = await register(api, sessions)
    await agree(api, sessions, notice, SAM)
    await deliver(api, sessions, tu.message(None, YEAR3, SAM, ABUSIVE, date=IN_HOURS))

    alert = await an_alert(api)
    text = alert.text or ""
    assert "High concern in Year 3 Parents" in text
    assert "From: Sam Reed" in text
    assert ABUSIVE in text
    assert "abusive-to-parent: Sending abusive messages to fellow parents/carers" in text
    await press(api, sessions, alert, "Acknowledge")
    assert await flag_status(sessions) == FlagStatus.ACKNOWLEDGED
    answers = await api.wait_for_call("answerCallbackQuery", count=2)  # the consent, then this
    assert answers[-1].params["text"] == "Acknowledged by Mrs Anita Patel."
    assert "flag.acknowledged" in await audit_actions(sessions)


async def test_not_a_breach_is_recorded_as_a_false_positive(
    api: FakeTelegramAPI, sessions: Sessions
) -> None:
    await link_head(api, sessions)
    notice = await register(api, sessions)
    await agree(api, sessions, notice, SAM)
    await deliver(api, sessions, tu.message(None, YEAR3, SAM, ABUSIVE, date=IN_HOURS))
    await press(api, sessions, await an_alert(api), "Not a breach")
    assert await flag_status(sessions) == FlagStatus.FALSE_POSITIVE
    assert "flag.false_positive" in await audit_actions(sessions)


async def test_request_removal_deletes_a_recent_message_when_the_bot_is_admin(
    api: FakeTelegramAPI, sessions: Sessions
) -> None:
    await link_head(api, sessions)
    notice = await register(api, sessions)  # the bot is made an admin here
    api.set_bot_status(YEAR3, "administrator", can_delete_messages=True)
    await agree(api, sessions, notice, SAM)
    rude = tu.message(None, YEAR3, SAM, ABUSIVE, date=utcnow())
    await deliver(api, sessions, rude)
    await press(api, sessions, await an_alert(api), "Request removal")
    [deleted] = await api.wait_for_call("deleteMessage")
    assert deleted.params["message_id"] == rude["message"]["message_id"]


async def test_someone_else_cannot_act_on_an_alert(
    api: FakeTelegramAPI, sessions: Sessions
) -> None:
    await link_head(api, sessions)
    notice = await register(api, sessions)
    await agree(api, sessions, notice, SAM)
    await deliver(api, sessions, tu.message(None, YEAR3, SAM, ABUSIVE, date=IN_HOURS))
    alert = await an_alert(api)
    forged = tu.callback_query(None, SAM, alert.message, button(alert, "Acknowledge"))
    await deliver(api, sessions, forged)
    assert await flag_status(sessions) == FlagStatus.OPEN


async def test_an_out_of_hours_contact_gets_one_kind_reminder(
    api: FakeTelegramAPI, sessions: Sessions
) -> None:
    notice = await register(api, sessions)
    await agree(api, sessions, notice, SAM)
    for n in range(2):
        asked = tu.message(None, YEAR3, SAM, f"@mr_okafor is it PE on monday? ({n})", date=SUNDAY)
        await deliver(api, sessions, asked)

    async def reminders() -> list[OutboxMessage] | None:
        async with sessions() as session:
            query = select(OutboxMessage).where(OutboxMessage.purpose == "reminder")
            found = list(await session.scalars(query))
        return found if found and all(r.sent_at for r in found) else None

    [reminder] = await wait_for(reminders, "the reminder to be sent")
    assert reminder.rule == "out-of-hours"
    assert reminder.recipient == str(YEAR3["id"])  # Sam has no private chat: a reply
    text = reminder.text
    assert text.startswith("Hi Sam, just a gentle reminder")
    assert "Mr David Okafor will be back tomorrow at 8:00" in text
    assert "the school office: 01632 960000" in text


async def test_a_meeting_request_goes_to_the_sender_privately_where_possible(
    api: FakeTelegramAPI, sessions: Sessions
) -> None:
    await link_head(api, sessions)
    notice = await register(api, sessions)
    await agree(api, sessions, notice, SAM)
    sam_private = tu.private_chat(SAM)
    await deliver(api, sessions, tu.command(None, sam_private, SAM, "/start"))
    await deliver(api, sessions, tu.message(None, YEAR3, SAM, ABUSIVE, date=IN_HOURS))
    await press(api, sessions, await an_alert(api), "Request a meeting")
    sent = await sent_in(api, sam_private, 2)  # the /start answer, then the request
    text = sent[-1].text or ""
    assert text.startswith("Hi Sam, Peartree Spring Primary School would like to meet you")
    assert "01632 960000" in text
    assert "flag.meeting_requested" in await audit_actions(sessions)


async def test_an_alert_nobody_acknowledges_is_sent_again_once(
    api: FakeTelegramAPI, sessions: Sessions, bot: TelegramRuntime
) -> None:
    await link_head(api, sessions)
    notice = await register(api, sessions)
    await agree(api, sessions, notice, SAM)
    await deliver(api, sessions, tu.message(None, YEAR3, SAM, ABUSIVE, date=IN_HOURS))
    await an_alert(api)
    assert await bot.summarise_and_escalate(utcnow()) == 0  # not yet
    later = utcnow() + timedelta(minutes=31)
    assert await bot.summarise_and_escalate(later) == 1
    assert await bot.summarise_and_escalate(later) == 1  # queued again: the same key, no-op
    sent = await sent_in(api, ANITA_PRIVATE, 3)
    assert (sent[2].text or "").startswith("Not yet acknowledged after 30 minutes")
    await asyncio.sleep(0.2)  # nothing more arrives
    assert len(api.sent_messages(ANITA_PRIVATE["id"])) == 3


async def test_the_daily_digest_lists_open_medium_and_low_flags(
    api: FakeTelegramAPI, sessions: Sessions, bot: TelegramRuntime
) -> None:
    await link_head(api, sessions)
    notice = await register(api, sessions)
    await agree(api, sessions, notice, SAM)
    moan = "honestly this school is a total shambles, worst school in the area"
    await deliver(api, sessions, tu.message(None, YEAR3, SAM, moan, date=IN_HOURS))
    [flag] = await rows(sessions, Flag)
    assert flag.severity == "medium"
    afternoon = datetime.combine(utcnow().date(), time(16, 5), tzinfo=UTC)  # London is on GMT
    await bot.summarise_and_escalate(afternoon)
    await bot.summarise_and_escalate(afternoon)  # once a day, however often it is asked
    sent = await sent_in(api, ANITA_PRIVATE, 2)
    digest = sent[1].text or ""
    assert digest.startswith("Schoolgate daily summary for Peartree Spring Primary School: 1 open")
    assert "Medium: disrepute in Year 3 Parents, from Sam Reed" in digest
    await asyncio.sleep(0.2)
    assert len(api.sent_messages(ANITA_PRIVATE["id"])) == 2


async def test_only_the_dsl_acts_on_a_flag_escalated_to_them(
    api: FakeTelegramAPI, sessions: Sessions, texts: TelegramTexts
) -> None:
    await link_head(api, sessions)
    await link_staff(api, sessions, SARAH, "Mrs Sarah Bennett")  # the bursar: SLT, not DSL
    notice = await register(api, sessions)
    await agree(api, sessions, notice, SAM)
    await deliver(api, sessions, tu.message(None, YEAR3, SAM, ABUSIVE, date=IN_HOURS))
    alert = await an_alert(api)
    [flag] = await rows(sessions, Flag)
    async with transaction(sessions) as session:  # as SLT would from the admin pages
        case = await review.find_case(session, flag.id)
        assert case is not None
        deputy = review.Reviewer("user:1", "Mr Deputy")
        await review.decide(
            session, case, review.Decision.ESCALATE, deputy, note="A child at risk",
            texts=texts, channels=TG, now=utcnow(),
        )  # fmt: skip
    escalated = (await sent_in(api, ANITA_PRIVATE, 3))[2]
    assert (escalated.text or "").startswith("Escalated to the Designated Safeguarding Lead")

    forged = tu.callback_query(None, SARAH, alert.message, button(alert, "Acknowledge"))
    await deliver(api, sessions, forged)
    answers = await api.wait_for_call("answerCallbackQuery", count=2)
    assert answers[-1].params["text"] == texts.alert_not_yours
    assert await flag_status(sessions) == FlagStatus.ESCALATED

    await press(api, sessions, escalated, "Not a breach")
    assert await flag_status(sessions) == FlagStatus.FALSE_POSITIVE
    [flag] = await rows(sessions, Flag)
    assert flag.decision_note == "marked from the Telegram alert"


async def test_deleting_a_message_that_is_gone_fails_for_good_with_a_clear_reason(
    api: FakeTelegramAPI, sessions: Sessions, bot: TelegramRuntime
) -> None:
    await register(api, sessions)
    said_before = len(api.sent_messages(YEAR3["id"]))
    sender = TelegramSender(bot.bot)
    gone = OutboxMessage(
        purpose=DELETE, channel="telegram", recipient=str(YEAR3["id"]), reply_to="424242",
        text="Delete message 424242 in Year 3 Parents (flag 1)",
    )  # fmt: skip
    with pytest.raises(PermanentFailure, match=r"could not be deleted.*not found"):
        await sender.send(gone)
    unnamed = OutboxMessage(purpose=DELETE, channel="telegram", recipient="-1", text="Delete")
    with pytest.raises(PermanentFailure, match="no message to delete"):
        await sender.send(unnamed)
    [tried] = api.calls_to("deleteMessage")
    assert tried.params["message_id"] == 424242
    assert len(api.sent_messages(YEAR3["id"])) == said_before  # nothing was sent instead
