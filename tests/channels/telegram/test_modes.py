"""The bot as configured or deployed: privacy mode, observe-only, flood control, bad updates."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.store.db import create_engine, session_factory
from bot.store.models import AuditEvent, ChatStatus, Flag, InboxStatus
from bot.texts import TelegramTexts
from tests.channels.telegram.conftest import StartBot
from tests.channels.telegram.support import (
    ABUSIVE,
    DOWN_URL,
    HARMLESS,
    IN_HOURS,
    PAT,
    SAM,
    YEAR3,
    YEAR4,
    a_school_with_code,
    audit_actions,
    chat_row,
    consents_of,
    deliver,
    inbox_item,
    register,
    rows,
    said,
    sent_in,
    wait_for,
)
from tests.fakes import telegram_updates as tu
from tests.fakes.telegram_api import FakeTelegramAPI

pytestmark = pytest.mark.anyio
Sessions = async_sessionmaker[AsyncSession]


async def test_a_bot_that_cannot_read_messages_says_so_and_tells_the_school(
    api: FakeTelegramAPI, sessions: Sessions, start_bot: StartBot, texts: TelegramTexts
) -> None:
    api.privacy_mode = True  # BotFather's default: a plain member sees only commands
    await start_bot()

    await deliver(api, sessions, tu.my_chat_member(None, YEAR3, PAT, "left", "member"))
    assert [m.text for m in await sent_in(api, YEAR3, 2)] == [
        texts.unregistered.format(minutes=60),
        texts.cannot_read,
    ]
    chat = await chat_row(sessions, YEAR3)
    assert (chat.bot_is_admin, chat.bot_can_read_all) == (False, False)
    [blind] = [e for e in await rows(sessions, AuditEvent) if e.action == "chat.bot_cannot_read"]
    assert blind.subject == f"chat:{chat.id}"

    # Made an admin, it can read everything: no more warnings.
    promoted = tu.my_chat_member(None, YEAR3, PAT, "member", "administrator")
    await deliver(api, sessions, promoted)
    chat = await chat_row(sessions, YEAR3)
    assert (chat.bot_is_admin, chat.bot_can_read_all) == (True, True)
    assert "chat.bot_promoted" in await audit_actions(sessions)

    # Added to another group as an admin straight away, it never warns there.
    await deliver(api, sessions, tu.my_chat_member(None, YEAR4, PAT, "left", "administrator"))
    assert [m.text for m in await sent_in(api, YEAR4, 1)] == [texts.unregistered.format(minutes=60)]
    assert (await audit_actions(sessions)).count("chat.bot_cannot_read") == 1
    assert len(said(api, YEAR3)) == 2


async def test_observe_only_records_everything_and_says_nothing_unprompted(
    api: FakeTelegramAPI, sessions: Sessions, start_bot: StartBot, texts: TelegramTexts
) -> None:
    await start_bot(observe_only=True)
    code = await a_school_with_code(sessions)
    api.set_member_status(YEAR3, PAT, "creator")
    await deliver(api, sessions, tu.my_chat_member(None, YEAR3, PAT, "left", "administrator"))
    await deliver(api, sessions, tu.command(None, YEAR3, PAT, f"/register {code}"))
    await deliver(api, sessions, tu.command(None, YEAR3, SAM, "/consent"))
    await deliver(api, sessions, tu.message(None, YEAR3, SAM, ABUSIVE, date=IN_HOURS))
    await deliver(api, sessions, tu.message(None, YEAR3, PAT, ABUSIVE, date=IN_HOURS))
    # A private chat is not a group chat: the bot still answers there, which also shows that
    # everything before it was done, since updates are processed in order.
    private = tu.private_chat(SAM)
    await deliver(api, sessions, tu.command(None, private, SAM, "/start"))
    await sent_in(api, private, 1)

    # Only answers to what members did, and the notice they must see to agree, are said; the
    # bot's own explanation in the then unregistered chat is not.
    spoken = said(api, YEAR3)
    assert len(spoken) == 3  # registered, the notice, consent recorded
    assert texts.unregistered.format(minutes=60) not in spoken
    assert (await chat_row(sessions, YEAR3)).status == ChatStatus.REGISTERED
    assert [c.method for c in await consents_of(sessions, SAM)] == ["command"]
    [flag] = await rows(sessions, Flag)
    assert [r.rule for r in flag.reasons] == ["abusive-to-parent"]
    assert (await chat_row(sessions, YEAR3)).unconsented_messages == 1  # Pat's


async def test_flood_control_is_waited_out(
    api: FakeTelegramAPI, sessions: Sessions, start_bot: StartBot, texts: TelegramTexts
) -> None:
    await start_bot()
    api.fail_next("sendMessage", 429, retry_after=1)
    await deliver(api, sessions, tu.my_chat_member(None, YEAR3, PAT, "left", "member"))
    [explained] = await sent_in(api, YEAR3, 1)
    assert explained.text == texts.unregistered.format(minutes=60)
    assert len(api.calls_to("sendMessage")) == 2  # refused once, then sent


async def test_an_update_that_breaks_the_handler_fails_alone(
    api: FakeTelegramAPI, sessions: Sessions, start_bot: StartBot
) -> None:
    await start_bot()
    await register(api, sessions)
    # It parses (python-telegram-bot checks no types), but a chat id must be a number.
    odd_chat = {"id": "not-a-number", "type": "supergroup", "title": "Odd"}
    broken = await deliver(api, sessions, tu.message(None, odd_chat, SAM, HARMLESS))
    assert broken.status == InboxStatus.FAILED
    assert broken.payload is None
    assert broken.error is not None
    assert broken.error.startswith("ValueError")

    after = await deliver(api, sessions, tu.command(None, YEAR3, SAM, "/consent"))
    assert after.status == InboxStatus.PROCESSED
    assert len(await consents_of(sessions, SAM)) == 1


async def test_an_update_the_database_refuses_fails_alone(
    api: FakeTelegramAPI, sessions: Sessions, start_bot: StartBot
) -> None:
    await start_bot()
    # Telegram caps titles at 128 characters; this one is too long for the column (PostgreSQL
    # refuses it, SQLite stores it): either way the inbox must move on.
    long_title = tu.group(-1009999999999, "x" * 300)
    odd = await deliver(api, sessions, tu.my_chat_member(None, long_title, PAT, "left", "member"))
    assert odd.status in (InboxStatus.PROCESSED, InboxStatus.FAILED)
    assert odd.payload is None
    if odd.status == InboxStatus.FAILED:
        assert odd.error is not None
        assert "xxx" not in odd.error  # the update's content is not kept in the error either
    after = await deliver(api, sessions, tu.my_chat_member(None, YEAR3, PAT, "left", "member"))
    assert after.status == InboxStatus.PROCESSED
    await sent_in(api, YEAR3, 1)


async def test_polling_survives_an_update_it_cannot_parse(
    api: FakeTelegramAPI, start_bot: StartBot, caplog: pytest.LogCaptureFixture
) -> None:
    bot = await start_bot()
    nameless = {"id": 5}  # a User must have first_name and is_bot
    api.queue_update(tu.message(None, YEAR3, nameless, HARMLESS))
    polls = len(api.calls_to("getUpdates"))
    await api.wait_for_call("getUpdates", polls + 2)  # it keeps asking
    assert "Error while parsing updates" in caplog.text
    await bot.stop()  # and stops cleanly


async def test_polling_confirms_an_update_only_once_it_is_stored(
    api: FakeTelegramAPI,
    sessions: Sessions,
    start_bot: StartBot,
    caplog: pytest.LogCaptureFixture,
) -> None:
    bot = await start_bot()
    down = create_engine(DOWN_URL)
    bot.sessions = session_factory(down)
    try:
        queued = api.queue_update(tu.my_chat_member(None, YEAR3, PAT, "left", "member"))
        await wait_for(lambda: _logged(caplog, "database unavailable ("), "a failed store")
        confirming = [c for c in api.calls_to("getUpdates") if c.params.get("offset")]
        assert confirming == []  # Telegram still holds the update
    finally:
        bot.sessions = sessions
        await down.dispose()

    item = await inbox_item(sessions, queued["update_id"])
    assert item.status == InboxStatus.PROCESSED
    await sent_in(api, YEAR3, 1)

    async def confirmed() -> bool | None:
        offsets = [call.params.get("offset") for call in api.calls_to("getUpdates")]
        return True if queued["update_id"] + 1 in offsets else None

    await wait_for(confirmed, "the update to be confirmed")


async def _logged(caplog: pytest.LogCaptureFixture, start: str) -> bool | None:
    """Whether a message starting with ``start`` was logged (None: not yet)."""
    messages = [record.getMessage() for record in caplog.records]
    return True if any(message.startswith(start) for message in messages) else None
