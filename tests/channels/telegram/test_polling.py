"""The Telegram bot end to end, long polling: real update JSON served by the fake Bot API to the
real runtime, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.channels.telegram.runtime import TelegramRuntime
from bot.store.db import transaction
from bot.store.models import (
    Chat,
    ChatMember,
    ChatStatus,
    Flag,
    InboxItem,
    InboxStatus,
    StoredMessage,
    utcnow,
)
from bot.texts import TelegramTexts
from tests.channels.telegram.conftest import StartBot
from tests.channels.telegram.support import (
    ABUSIVE,
    HARMLESS,
    IN_HOURS,
    LEAVE_AFTER,
    OKAFOR,
    PAT,
    SAM,
    YEAR3,
    YEAR4,
    a_school_with_code,
    agree,
    audit_actions,
    chat_row,
    consent_button,
    consents_of,
    deliver,
    inbox_item,
    messages_of,
    register,
    rows,
    said,
    said_at,
    sent_in,
)
from tests.fakes import telegram_updates as tu
from tests.fakes.telegram_api import FakeTelegramAPI

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("bot")]
Sessions = async_sessionmaker[AsyncSession]


# -- an unregistered chat ---------------------------------------------------------------------


async def test_added_to_a_group_the_bot_explains_itself_once_and_reads_nothing(
    api: FakeTelegramAPI, sessions: Sessions, texts: TelegramTexts
) -> None:
    await deliver(api, sessions, tu.my_chat_member(None, YEAR3, PAT, "left", "member"))
    [explained] = await sent_in(api, YEAR3, 1)
    assert explained.text == texts.unregistered.format(minutes=60)

    await deliver(api, sessions, tu.my_chat_member(None, YEAR3, PAT, "member", "administrator"))
    chatter = await deliver(api, sessions, tu.message(None, YEAR3, SAM, ABUSIVE, date=IN_HOURS))
    # Processing is in order: once a later update is done, so is everything the earlier one did.
    await deliver(api, sessions, tu.command(None, YEAR3, SAM, "/privacy"))
    await sent_in(api, YEAR3, 2)

    explanation, privacy = said(api, YEAR3)  # explained once, however often it hears of it
    assert explanation == explained.text
    assert privacy.startswith("Hello, I'm Schoolgate, your school's helper")
    assert (chatter.status, chatter.payload) == (InboxStatus.PROCESSED, None)
    assert await rows(sessions, StoredMessage) == []
    assert await rows(sessions, Flag) == []
    assert await rows(sessions, ChatMember) == []
    chat = await chat_row(sessions, YEAR3)
    assert chat.status == ChatStatus.UNREGISTERED
    assert chat.unconsented_messages == 0  # not even counted: the chat is not the school's
    assert all(item.payload is None for item in await rows(sessions, InboxItem))


async def test_the_bot_leaves_a_chat_not_registered_in_time(
    api: FakeTelegramAPI, sessions: Sessions, bot: TelegramRuntime, texts: TelegramTexts
) -> None:
    await deliver(api, sessions, tu.my_chat_member(None, YEAR3, PAT, "left", "member"))
    await sent_in(api, YEAR3, 1)
    deadline = (await chat_row(sessions, YEAR3)).leave_after
    assert deadline is not None
    assert timedelta(0) < deadline - utcnow() <= LEAVE_AFTER

    assert await bot.leave_unregistered(deadline - timedelta(seconds=1)) == 0
    assert await bot.leave_unregistered(deadline + timedelta(seconds=1)) == 1

    assert said(api, YEAR3)[-1] == texts.leaving
    [left] = api.calls_to("leaveChat")
    assert left.params["chat_id"] == YEAR3["id"]
    assert "chat.left_unregistered" in await audit_actions(sessions)
    assert await bot.leave_unregistered(deadline + timedelta(hours=1)) == 0  # only once


async def test_a_registered_chat_is_not_left(
    api: FakeTelegramAPI, sessions: Sessions, bot: TelegramRuntime
) -> None:
    await register(api, sessions)
    assert await bot.leave_unregistered(utcnow() + LEAVE_AFTER * 2) == 0
    assert api.calls_to("leaveChat") == []


# -- registration ----------------------------------------------------------------------------


async def test_only_a_group_admin_can_register(
    api: FakeTelegramAPI, sessions: Sessions, texts: TelegramTexts
) -> None:
    code = await a_school_with_code(sessions)
    await deliver(api, sessions, tu.my_chat_member(None, YEAR3, PAT, "left", "administrator"))
    await deliver(api, sessions, tu.command(None, YEAR3, SAM, f"/register {code}"))
    assert (await sent_in(api, YEAR3, 2))[-1].text == texts.not_admin
    assert (await chat_row(sessions, YEAR3)).status == ChatStatus.UNREGISTERED

    api.set_member_status(YEAR3, PAT, "administrator")
    await deliver(api, sessions, tu.command(None, YEAR3, PAT, f"/register@schoolgate_bot {code}"))
    *_, registered, notice = await sent_in(api, YEAR3, 4)

    assert registered.text == texts.registered.format(
        school="Peartree Spring Primary School", class_name="Year 3"
    )
    assert registered.message["reply_to_message"]["from"]["id"] == PAT["id"]
    assert notice.text is not None
    assert notice.text.startswith("Hello, I'm Schoolgate, Peartree Spring Primary School's")
    assert "30 days" in notice.text
    assert "365 days" in notice.text
    assert consent_button(notice.message) == f"consent:{texts.notice.version}"
    chat = await chat_row(sessions, YEAR3)
    assert (chat.status, chat.class_name, chat.notice_version, chat.leave_after) == (
        ChatStatus.REGISTERED, "Year 3", texts.notice.version, None,
    )  # fmt: skip
    assert "chat.registered" in await audit_actions(sessions)

    await deliver(api, sessions, tu.command(None, YEAR3, PAT, f"/register {code}"))
    assert (await sent_in(api, YEAR3, 5))[-1].text == texts.already_registered.format(
        school="Peartree Spring Primary School"
    )


async def test_bad_codes_get_the_right_answer(
    api: FakeTelegramAPI, sessions: Sessions, texts: TelegramTexts
) -> None:
    used = await a_school_with_code(sessions)
    await register(api, sessions, YEAR3, code=used)
    expired = await a_school_with_code(
        sessions, valid_for=timedelta(hours=1), created=utcnow() - timedelta(hours=2)
    )
    api.set_member_status(YEAR4, PAT, "creator")
    await deliver(api, sessions, tu.my_chat_member(None, YEAR4, PAT, "left", "administrator"))
    attempts = [
        ("/register", texts.register_usage),
        ("/register ZZZZ-ZZZZ", texts.bad_code),
        (f"/register {expired}", texts.expired_code),
        (f"/register {used.lower()}", texts.used_code),
    ]
    for count, (command, answer) in enumerate(attempts, start=2):  # after the explanation
        await deliver(api, sessions, tu.command(None, YEAR4, PAT, command))
        assert (await sent_in(api, YEAR4, count))[-1].text == answer, command
    assert (await chat_row(sessions, YEAR4)).status == ChatStatus.UNREGISTERED


# -- consent and checking ---------------------------------------------------------------------


async def test_consent_by_button_then_messages_are_checked(
    api: FakeTelegramAPI, sessions: Sessions, texts: TelegramTexts
) -> None:
    notice = await register(api, sessions)

    before = await deliver(api, sessions, tu.message(None, YEAR3, SAM, ABUSIVE, date=IN_HOURS))
    assert (before.status, before.payload) == (InboxStatus.PROCESSED, None)
    assert (await chat_row(sessions, YEAR3)).unconsented_messages == 1
    assert await rows(sessions, StoredMessage) == []
    assert await rows(sessions, Flag) == []

    await agree(api, sessions, notice, SAM)
    [answer] = await api.wait_for_call("answerCallbackQuery")
    assert answer.params["text"] == texts.consent_recorded.format(name="Sam Reed")
    [consent] = await consents_of(sessions, SAM)
    assert (consent.method, consent.notice_version) == ("button", texts.notice.version)

    sent = tu.message(None, YEAR3, SAM, ABUSIVE, date=IN_HOURS)
    await deliver(api, sessions, sent)
    [flag] = await rows(sessions, Flag)
    [reason] = flag.reasons
    assert reason.rule == "abusive-to-parent"
    assert reason.clause == "Sending abusive messages to fellow parents/carers"
    assert "vile" in reason.evidence
    [stored] = await messages_of(sessions, SAM)
    assert (stored.id, stored.text) == (flag.message_id, ABUSIVE)
    assert stored.platform_message_id == str(sent["message"]["message_id"])
    assert stored.sent_at == IN_HOURS
    assert (await chat_row(sessions, YEAR3)).unconsented_messages == 1

    await agree(api, sessions, notice, SAM)  # pressed again
    answers = await api.wait_for_call("answerCallbackQuery", 2)
    assert answers[-1].params["text"] == texts.consent_already.format(name="Sam Reed")
    assert len(await consents_of(sessions, SAM)) == 1


async def test_consent_by_command_and_what_is_kept(
    api: FakeTelegramAPI, sessions: Sessions, texts: TelegramTexts
) -> None:
    await register(api, sessions)
    await deliver(api, sessions, tu.command(None, YEAR3, SAM, "/consent"))
    assert await said_at(api, YEAR3, 4) == texts.consent_recorded.format(name="Sam Reed")
    [consent] = await consents_of(sessions, SAM)
    assert consent.method == "command"

    await deliver(api, sessions, tu.message(None, YEAR3, SAM, HARMLESS, date=IN_HOURS))
    [stored] = await messages_of(sessions, SAM)
    assert stored.text is None  # only that it was sent: its words are not kept
    assert stored.keep_until - utcnow() > timedelta(days=29)
    assert await rows(sessions, Flag) == []


async def test_an_edited_message_is_checked_again(api: FakeTelegramAPI, sessions: Sessions) -> None:
    notice = await register(api, sessions)
    await agree(api, sessions, notice, SAM)
    first = tu.message(None, YEAR3, SAM, HARMLESS, date=IN_HOURS)
    await deliver(api, sessions, first)
    assert await rows(sessions, Flag) == []

    message_id = first["message"]["message_id"]
    edit = tu.edited_message(None, YEAR3, SAM, ABUSIVE, message_id=message_id, date=IN_HOURS)
    await deliver(api, sessions, edit)
    [flag] = await rows(sessions, Flag)
    assert [r.rule for r in flag.reasons] == ["abusive-to-parent"]
    [stored] = await messages_of(sessions, SAM)  # the same message, not a second one
    assert (stored.id, stored.text) == (flag.message_id, ABUSIVE)
    assert stored.edited_at is not None


async def test_a_photo_of_other_children_is_flagged(
    api: FakeTelegramAPI, sessions: Sessions
) -> None:
    notice = await register(api, sessions)
    await agree(api, sessions, notice, SAM)
    photo = tu.photo_message(None, YEAR3, SAM, "sports day pics!", date=IN_HOURS)
    await deliver(api, sessions, photo)
    [flag] = await rows(sessions, Flag)
    [reason] = flag.reasons
    assert reason.rule == "images-consent"
    assert (
        reason.clause == "Posting images of any staff members or pupils without their prior consent"
    )
    assert "sports day" in reason.evidence
    [stored] = await messages_of(sessions, SAM)
    assert (stored.media_kinds, stored.text) == (["photo"], "sports day pics!")


async def test_replying_to_staff_is_staff_contact_and_staff_are_not_flagged(
    api: FakeTelegramAPI, sessions: Sessions
) -> None:
    notice = await register(api, sessions)
    for person in (SAM, OKAFOR):
        await agree(api, sessions, notice, person)
    teacher = tu.message(None, YEAR3, OKAFOR, "Trip letters went home today", date=IN_HOURS)
    await deliver(api, sessions, teacher)
    # Staff are not bound by the parents' code, however they put it.
    await deliver(api, sessions, tu.message(None, YEAR3, OKAFOR, ABUSIVE, date=IN_HOURS))
    assert await rows(sessions, Flag) == []
    assert len(await messages_of(sessions, OKAFOR)) == 2

    question = "can you tell me when the trip money is due?"
    reply = tu.message(None, YEAR3, SAM, question, date=IN_HOURS, reply_to=teacher["message"])
    await deliver(api, sessions, reply)
    [flag] = await rows(sessions, Flag)
    [reason] = flag.reasons
    assert reason.rule == "staff-contact"
    assert reason.clause.startswith("All communications to school staff must be sent via")
    assert "Mr David Okafor" in reason.evidence
    [stored] = await messages_of(sessions, SAM)
    assert stored.contacted_staff


# -- withdrawing, the notice, the member's data ----------------------------------------------


async def test_withdrawing_deletes_the_members_words_at_once(
    api: FakeTelegramAPI, sessions: Sessions, texts: TelegramTexts
) -> None:
    notice = await register(api, sessions)
    await agree(api, sessions, notice, SAM)
    await deliver(api, sessions, tu.message(None, YEAR3, SAM, ABUSIVE, date=IN_HOURS))
    [flag] = await rows(sessions, Flag)
    assert "vile" in flag.reasons[0].evidence

    await deliver(api, sessions, tu.command(None, YEAR3, SAM, "/withdraw"))
    assert await said_at(api, YEAR3, 4) == texts.withdrawn.format(name="Sam")
    [stored] = await messages_of(sessions, SAM)
    assert stored.text is None
    [flag] = await rows(sessions, Flag)  # SLT still know a breach happened, not what was said
    assert "vile" not in flag.reasons[0].evidence
    [consent] = await consents_of(sessions, SAM)
    assert consent.withdrawn_at is not None
    assert "consent.withdrawn" in await audit_actions(sessions)

    await deliver(api, sessions, tu.message(None, YEAR3, SAM, ABUSIVE, date=IN_HOURS))
    assert len(await rows(sessions, Flag)) == 1
    assert (await chat_row(sessions, YEAR3)).unconsented_messages == 1
    await deliver(api, sessions, tu.command(None, YEAR3, SAM, "/withdraw"))
    assert await said_at(api, YEAR3, 5) == texts.not_consented.format(name="Sam")


async def test_privacy_sends_the_notice_again(
    api: FakeTelegramAPI, sessions: Sessions, texts: TelegramTexts
) -> None:
    notice = await register(api, sessions)
    await deliver(api, sessions, tu.command(None, YEAR3, SAM, "/privacy"))
    again = (await sent_in(api, YEAR3, 4))[3]
    assert again.text == notice["text"]
    assert again.reply_markup == notice["reply_markup"]
    await agree(api, sessions, again.message, SAM)  # its button works like the first one's
    assert len(await consents_of(sessions, SAM)) == 1


async def test_mydata_is_sent_privately_once_there_is_a_private_chat(
    api: FakeTelegramAPI, sessions: Sessions, texts: TelegramTexts
) -> None:
    notice = await register(api, sessions)
    await agree(api, sessions, notice, SAM)
    await deliver(api, sessions, tu.message(None, YEAR3, SAM, ABUSIVE, date=IN_HOURS))

    await deliver(api, sessions, tu.command(None, YEAR3, SAM, "/mydata"))
    assert await said_at(api, YEAR3, 4) == texts.mydata_start.format(bot="@schoolgate_bot")

    private = tu.private_chat(SAM)
    await deliver(api, sessions, tu.command(None, private, SAM, "/start"))
    [welcome] = await sent_in(api, private, 1)
    assert welcome.text is not None
    assert welcome.text.startswith("Hello, I'm Schoolgate")

    await deliver(api, sessions, tu.command(None, YEAR3, SAM, "/mydata"))
    assert await said_at(api, YEAR3, 5) == texts.mydata_sent
    report = (await sent_in(api, private, 2))[-1].text or ""
    assert '"user_id": "1002"' in report
    assert ABUSIVE in report
    assert "abusive-to-parent" in report
    assert PAT["first_name"] not in report  # only the member's own data

    await deliver(api, sessions, tu.command(None, private, SAM, "/mydata"))
    assert (await sent_in(api, private, 3))[-1].text == report
    assert (await audit_actions(sessions)).count("member.data_sent") == 2


async def test_a_new_notice_needs_fresh_consent(
    api: FakeTelegramAPI, sessions: Sessions, texts: TelegramTexts
) -> None:
    old = await register(api, sessions)
    await agree(api, sessions, old, SAM)
    async with transaction(sessions) as session:
        await session.execute(update(Chat).values(notice_version="2027-01-1"))

    await deliver(api, sessions, tu.message(None, YEAR3, SAM, ABUSIVE, date=IN_HOURS))
    assert await rows(sessions, Flag) == []
    assert (await chat_row(sessions, YEAR3)).unconsented_messages == 1

    shown = len(api.sent_messages(YEAR3["id"]))
    await agree(api, sessions, old, SAM)  # the old notice's button shows the new notice
    new = (await sent_in(api, YEAR3, shown + 1))[-1].message
    assert consent_button(new) == "consent:2027-01-1"
    assert [c.notice_version for c in await consents_of(sessions, SAM)] == [texts.notice.version]

    await agree(api, sessions, new, SAM)
    assert [c.notice_version for c in await consents_of(sessions, SAM)] == [
        texts.notice.version,
        "2027-01-1",
    ]
    await deliver(api, sessions, tu.message(None, YEAR3, SAM, ABUSIVE, date=IN_HOURS))
    assert len(await rows(sessions, Flag)) == 1


# -- delivery --------------------------------------------------------------------------------


async def test_an_update_delivered_again_is_processed_once(
    api: FakeTelegramAPI, sessions: Sessions, bot: TelegramRuntime, start_bot: StartBot
) -> None:
    notice = await register(api, sessions)
    await agree(api, sessions, notice, SAM)
    abusive = api.queue_update(tu.message(None, YEAR3, SAM, ABUSIVE, date=IN_HOURS))
    await inbox_item(sessions, abusive["update_id"])
    assert len(await rows(sessions, Flag)) == 1

    # The process stops; Telegram, never told the update arrived, sends it again on restart.
    await bot.stop()
    api.reset()
    api.queue_update(abusive)
    await start_bot()
    later = await deliver(api, sessions, tu.message(None, YEAR3, SAM, HARMLESS, date=IN_HOURS))

    assert "offset" not in api.calls_to("getUpdates")[0].params  # it was served the replay
    assert later.status == InboxStatus.PROCESSED
    assert len(await rows(sessions, Flag)) == 1
    assert len(await messages_of(sessions, SAM)) == 2
    replays = [i for i in await rows(sessions, InboxItem) if i.update_id == abusive["update_id"]]
    assert len(replays) == 1
