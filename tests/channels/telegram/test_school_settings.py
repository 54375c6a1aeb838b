"""A school's own settings take effect in the running bot, end to end through the fake Bot API:
its notice (posted at once, at registration, and at start), its rules, alert timing and channels,
its reminders and its retention."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.channels.telegram.runtime import TelegramRuntime
from bot.services.notices import publish_notice
from bot.services.school_settings import save_settings, settings_of
from bot.store.db import transaction
from bot.store.models import (
    Flag,
    InboxStatus,
    OutboxMessage,
    School,
    StaffMember,
    StoredMessage,
    utcnow,
)
from bot.texts import TelegramTexts
from tests.channels.telegram.conftest import StartBot
from tests.channels.telegram.support import (
    ABUSIVE,
    ANITA_PRIVATE,
    IN_HOURS,
    RETENTION,
    SAM,
    YEAR3,
    a_school_with_code,
    agree,
    chat_row,
    consent_button,
    deliver,
    link_head,
    messages_of,
    register,
    rows,
    sent_in,
    wait_for,
)
from tests.fakes import telegram_updates as tu
from tests.fakes.telegram_api import FakeTelegramAPI

pytestmark = pytest.mark.anyio
Sessions = async_sessionmaker[AsyncSession]

MOAN = "honestly this school is a total shambles, worst school in the area"
OWN_WORDS = "Peartree's own notice for {school}: we keep flagged messages {flag_days} days."
# Sunday 29 November 2026, 10:00 in London: outside working hours.
SUNDAY = datetime(2026, 11, 29, 10, 0, tzinfo=UTC)


async def choose(sessions: Sessions, **fields: object) -> None:
    """The school's settings with ``fields`` changed, as the admin pages save them."""
    async with transaction(sessions) as session:
        school = await session.scalar(select(School))
        assert school is not None
        await save_settings(session, school, settings_of(school).changed(**fields), "test", "test")


async def queued(sessions: Sessions, purpose: str) -> list[OutboxMessage]:
    async with sessions() as session:
        query = select(OutboxMessage).where(OutboxMessage.purpose == purpose)
        return list(await session.scalars(query.order_by(OutboxMessage.id)))


async def test_a_new_notice_is_posted_and_old_consent_no_longer_counts(
    api: FakeTelegramAPI, sessions: Sessions, bot: TelegramRuntime, texts: TelegramTexts
) -> None:
    notice = await register(api, sessions)
    await agree(api, sessions, notice, SAM)
    async with transaction(sessions) as session:
        school = await session.scalar(select(School))
        assert school is not None
        version = await publish_notice(
            session, school, OWN_WORDS, texts.notice, RETENTION, "user:1", utcnow()
        )
    assert version is not None
    bot.wake_outbox()
    posted = (await sent_in(api, YEAR3, 4))[3]  # explained, registered, notice, the new one
    assert posted.text == (
        "Peartree's own notice for Peartree Spring Primary School: we keep flagged messages "
        "365 days."
    )
    assert consent_button(posted.message) == f"consent:{version}"
    assert (await chat_row(sessions, YEAR3)).notice_version == version

    unconsented = await deliver(api, sessions, tu.message(None, YEAR3, SAM, ABUSIVE, date=IN_HOURS))
    assert unconsented.status == InboxStatus.PROCESSED, unconsented.error  # handled, not crashed
    assert await rows(sessions, Flag) == []  # consent to the old words does not count
    assert await messages_of(sessions, SAM) == []  # nor is the message checked and kept
    assert (await chat_row(sessions, YEAR3)).unconsented_messages == 1  # only counted
    old_button = tu.callback_query(None, SAM, notice, consent_button(notice))
    await deliver(api, sessions, old_button)  # the old button shows the new notice again
    reshown = (await sent_in(api, YEAR3, 5))[4]
    assert consent_button(reshown.message) == f"consent:{version}"
    await agree(api, sessions, posted.message, SAM)
    await deliver(api, sessions, tu.message(None, YEAR3, SAM, ABUSIVE, date=IN_HOURS))
    [flag] = await rows(sessions, Flag)
    assert [r.rule for r in flag.reasons] == ["abusive-to-parent"]


async def test_registration_and_privacy_use_the_schools_own_notice(
    api: FakeTelegramAPI, sessions: Sessions, bot: TelegramRuntime
) -> None:
    await a_school_with_code(sessions)
    await choose(
        sessions, notice={"version": "own-1", "text": OWN_WORDS}, retention={"flag_days": 90}
    )
    notice = await register(api, sessions)
    assert notice["text"] == (
        "Peartree's own notice for Peartree Spring Primary School: we keep flagged messages "
        "90 days."
    )
    assert consent_button(notice) == "consent:own-1"
    assert (await chat_row(sessions, YEAR3)).notice_version == "own-1"
    await deliver(api, sessions, tu.command(None, YEAR3, SAM, "/privacy"))
    shown = (await sent_in(api, YEAR3, 4))[3]
    assert shown.text == notice["text"]
    assert consent_button(shown.message) == "consent:own-1"


async def test_at_start_chats_move_to_their_schools_current_notice(
    api: FakeTelegramAPI, sessions: Sessions, start_bot: StartBot
) -> None:
    first = await start_bot()
    await register(api, sessions)
    await first.stop()
    await choose(sessions, notice={"version": "own-2", "text": OWN_WORDS})
    await start_bot()
    posted = (await sent_in(api, YEAR3, 4))[3]
    assert consent_button(posted.message) == "consent:own-2"
    assert (posted.text or "").startswith("Peartree's own notice")
    assert (await chat_row(sessions, YEAR3)).notice_version == "own-2"


async def test_a_disabled_rule_raises_no_flag(
    api: FakeTelegramAPI, sessions: Sessions, bot: TelegramRuntime
) -> None:
    notice = await register(api, sessions)
    await agree(api, sessions, notice, SAM)
    await choose(sessions, rules={"disrepute": {"enabled": False}})
    sent = tu.message(None, YEAR3, SAM, MOAN, date=IN_HOURS)
    item = await deliver(api, sessions, sent)
    assert item.status == InboxStatus.PROCESSED, item.error  # handled, not crashed
    assert await rows(sessions, Flag) == []
    [stored] = await messages_of(sessions, SAM)  # checked and recorded: only not flagged
    assert stored.platform_message_id == str(sent["message"]["message_id"])
    assert stored.text is None  # its words are kept only when it is flagged


async def test_disrepute_set_to_alert_at_once_alerts_the_head(
    api: FakeTelegramAPI, sessions: Sessions, bot: TelegramRuntime
) -> None:
    await link_head(api, sessions)
    notice = await register(api, sessions)
    await agree(api, sessions, notice, SAM)
    await choose(sessions, rules={"disrepute": {"alert": "now"}})
    await deliver(api, sessions, tu.message(None, YEAR3, SAM, MOAN, date=IN_HOURS))
    alert = (await sent_in(api, ANITA_PRIVATE, 2))[1]
    assert (alert.text or "").startswith("Medium concern in Year 3 Parents")


async def test_staff_who_chose_email_get_no_telegram_alert(
    api: FakeTelegramAPI, sessions: Sessions, bot: TelegramRuntime
) -> None:
    await link_head(api, sessions)
    async with transaction(sessions) as session:
        for member in await session.scalars(select(StaffMember)):
            member.alert_channels = ["email"]
    notice = await register(api, sessions)
    await agree(api, sessions, notice, SAM)
    await deliver(api, sessions, tu.message(None, YEAR3, SAM, ABUSIVE, date=IN_HOURS))
    [flag] = await rows(sessions, Flag)
    assert flag.severity == "high"
    assert await queued(sessions, "alert") == []
    # The update is handled (and any alert queued with the flag, in its transaction), and the
    # bot sends alerts only from the outbox: with nothing there for her, nothing can arrive.
    to_her = str(ANITA_PRIVATE["id"])
    assert [m for m in await rows(sessions, OutboxMessage) if m.recipient == to_her] == []
    assert len(api.sent_messages(ANITA_PRIVATE["id"])) == 1  # only "Linked"


async def test_reminders_use_the_schools_words_and_stop_where_it_says(
    api: FakeTelegramAPI, sessions: Sessions, bot: TelegramRuntime
) -> None:
    notice = await register(api, sessions)
    await agree(api, sessions, notice, SAM)
    await choose(
        sessions,
        reminders={"out-of-hours": "Hi {name}, {who} is back {when}. Use {platforms}."},
    )
    asking = "@mr_okafor is it PE on monday?"
    await deliver(api, sessions, tu.message(None, YEAR3, SAM, asking, date=SUNDAY))

    async def reminded() -> list[OutboxMessage] | None:
        found = await queued(sessions, "reminder")
        return found or None

    [reminder] = await wait_for(reminded, "the reminder")
    assert reminder.text.startswith("Hi Sam, Mr David Okafor is back tomorrow at 8:00. Use ")
    await choose(
        sessions, rules={"out-of-hours": {"remind": False}, "staff-contact": {"remind": False}}
    )
    later = SUNDAY + timedelta(days=2)
    await deliver(api, sessions, tu.message(None, YEAR3, SAM, asking + "?", date=later))
    assert len(await queued(sessions, "reminder")) == 1


async def test_the_schools_retention_decides_how_long_things_are_kept(
    api: FakeTelegramAPI, sessions: Sessions, bot: TelegramRuntime
) -> None:
    notice = await register(api, sessions)
    await agree(api, sessions, notice, SAM)
    await choose(sessions, retention={"metadata_days": 7, "flag_days": 60})
    before = utcnow()
    await deliver(api, sessions, tu.message(None, YEAR3, SAM, "see you at pick up", date=IN_HOURS))
    await deliver(api, sessions, tu.message(None, YEAR3, SAM, ABUSIVE, date=IN_HOURS))
    after = utcnow()
    plain, flagged = await rows(sessions, StoredMessage)
    assert before + timedelta(days=7) <= plain.keep_until <= after + timedelta(days=7)
    assert before + timedelta(days=60) <= flagged.keep_until <= after + timedelta(days=60)
    [flag] = await rows(sessions, Flag)
    assert before + timedelta(days=60) <= flag.keep_until <= after + timedelta(days=60)
