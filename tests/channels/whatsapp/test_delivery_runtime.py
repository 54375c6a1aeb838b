"""One dispatcher for every channel: the process's ``Runtime`` delivers Telegram, e-mail,
WhatsApp groups and the rest, whichever are configured, e-mail and WhatsApp with Telegram off."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.channels.whatsapp.twilio_client import WhatsAppApi
from bot.errors import ConfigError
from bot.policy import PolicyEngine
from bot.runtime import Runtime, alert_channels, check_twilio
from bot.services import consent
from bot.services.moderation import Retention, check_message
from bot.services.outbox import enqueue
from bot.services.schools import EngineCache
from bot.settings import Settings
from bot.store.db import session_factory, transaction
from bot.store.models import Chat, ChatMember, ChatStatus, OutboxStatus
from bot.store.repositories.outbox import OutboxRepository
from tests.channels.telegram.support import WAIT, wait_for
from tests.conftest import ROOT, SCHOOL_FILE, message
from tests.database import migrated_engine, sqlite_url
from tests.factories import NOW, a_chat, a_member, a_school
from tests.fakes import telegram_updates as tu
from tests.fakes.smtp import Inbox, smtp_inbox
from tests.fakes.telegram_api import FakeTelegramAPI
from tests.fakes.twilio_api import FakeTwilioAPI
from tests.fakes.twilio_webhooks import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    SCHOOL_NUMBER,
    SCHOOL_WHATSAPP,
    parent,
)

pytestmark = pytest.mark.anyio
Sessions = async_sessionmaker[AsyncSession]
TOKEN = "123:ABC"
STAFF = tu.user(2001, "David", "Okafor")
MAIL_TO = "head@peartree.example.sch.uk"
RETENTION = Retention(metadata=timedelta(days=30), flags=timedelta(days=365))


@pytest.fixture
def inbox() -> Iterator[Inbox]:
    """A real SMTP server on loopback for the test: what it has received."""
    with smtp_inbox() as received:
        yield received


@pytest.fixture
async def twilio_api() -> AsyncIterator[FakeTwilioAPI]:
    async with FakeTwilioAPI() as fake:
        yield fake


def twilio_settings(api: FakeTwilioAPI) -> dict[str, Any]:
    return {
        "twilio_account_sid": ACCOUNT_SID,
        "twilio_auth_token": SecretStr(AUTH_TOKEN),
        "twilio_whatsapp_from": SCHOOL_WHATSAPP,
        "twilio_sms_from": SCHOOL_NUMBER,
        "twilio_api_base_url": api.base_url,
    }


async def queue(sessions: Sessions, channel: str, recipient: str, text: str) -> None:
    async with transaction(sessions) as session:
        await enqueue(
            session, key=f"test:{channel}", channel=channel, recipient=recipient, text=text,
            purpose="notice",
        )  # fmt: skip


async def eventually(check: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    """Wait until ``check()`` is true; fail saying ``what`` did not happen after ``timeout`` s."""

    async def met() -> bool | None:
        return True if check() else None

    await wait_for(met, what, timeout)


async def all_sent(sessions: Sessions, timeout: float = WAIT) -> None:
    """Wait until the outbox has sent something and has nothing left to send."""

    async def done() -> bool | None:
        async with sessions() as session:
            counts = await OutboxRepository(session).counts()
        return True if counts[OutboxStatus.SENT] > 0 and counts[OutboxStatus.PENDING] == 0 else None

    await wait_for(done, "the outbox to send everything queued", timeout)


async def test_email_is_delivered_with_telegram_off(
    sessions: Sessions,
    db_engine: AsyncEngine,
    engines: EngineCache,
    inbox: Inbox,
) -> None:
    settings = Settings(
        telegram_bot_token=None, smtp_url=SecretStr(inbox.url), school_file=SCHOOL_FILE
    )
    runtime = Runtime(settings, db_engine, sessions, engines)
    await runtime.start()
    try:
        assert runtime.telegram is None
        assert runtime.dispatcher is not None
        assert set(runtime.dispatcher.senders) == {"email"}
        await queue(sessions, "email", MAIL_TO, "Flag 7 needs a look.")
        runtime.wake_outbox()
        await eventually(lambda: len(inbox.received) == 1, "the e-mail")
    finally:
        await runtime.stop()
    [mail] = inbox.received
    assert mail["To"] == MAIL_TO
    assert "Flag 7 needs a look." in str(mail.get_payload())


async def test_one_dispatcher_delivers_telegram_email_and_whatsapp(
    sessions: Sessions,
    db_engine: AsyncEngine,
    inbox: Inbox,
    twilio_api: FakeTwilioAPI,
) -> None:
    async with FakeTelegramAPI(token=TOKEN) as telegram_api:
        telegram_api.add_chat(tu.private_chat(STAFF))
        settings = Settings(
            telegram_bot_token=SecretStr(TOKEN), telegram_api_base_url=telegram_api.base_url,
            smtp_url=SecretStr(inbox.url), school_file=SCHOOL_FILE, **twilio_settings(twilio_api),
        )  # fmt: skip
        runtime = Runtime.build(settings, db_engine)
        # Nothing connects before start: Twilio's aiohttp client needs the running loop.
        assert (runtime.twilio, runtime.dispatcher) == (None, None)
        await runtime.start()
        try:
            assert runtime.telegram is not None
            assert runtime.telegram.dispatcher is None  # the process's dispatcher does it
            assert runtime.dispatcher is not None
            assert set(runtime.dispatcher.senders) == {
                "telegram", "email", "whatsapp", "whatsapp-group", "sms",
            }  # fmt: skip
            assert runtime.alert_channels == {"telegram", "email", "whatsapp", "sms"}
            assert runtime.whatsapp_closures is not None
            twilio = runtime.twilio
            assert twilio is not None
            group = await twilio.create_conversation("Year 3 Parents")
            twilio_api.open_whatsapp_window(parent(1))
            await twilio.add_whatsapp_participant(group.sid, parent(1), SCHOOL_WHATSAPP, "Becky")
            await queue(runtime.sessions, "telegram", str(STAFF["id"]), "By Telegram")
            await queue(runtime.sessions, "email", MAIL_TO, "By e-mail")
            await queue(runtime.sessions, "whatsapp-group", group.sid, "To the group")
            runtime.telegram.wake_outbox()  # as the Telegram runtime does after an update
            await eventually(lambda: len(inbox.received) == 1, "the e-mail")
            await eventually(lambda: len(twilio_api.messages(group.sid)) == 1, "the group message")
            await eventually(
                lambda: len(telegram_api.sent_messages(STAFF["id"])) == 1, "the Telegram message"
            )
            await all_sent(runtime.sessions)
        finally:
            await runtime.stop()
    assert runtime.twilio is None  # closed with the runtime
    assert [d.body for d in twilio_api.delivered_to(parent(1))] == ["To the group"]


async def test_at_start_a_group_under_older_notice_words_is_asked_to_agree_again(
    sessions: Sessions, db_engine: AsyncEngine, twilio_api: FakeTwilioAPI
) -> None:
    """config/texts reworded (a new notice version): WhatsApp groups hear it as Telegram's do."""
    settings = Settings(
        telegram_bot_token=None, school_file=SCHOOL_FILE, **twilio_settings(twilio_api)
    )
    async with WhatsAppApi.connect(ACCOUNT_SID, AUTH_TOKEN, twilio_api.base_url) as twilio:
        group = await twilio.create_conversation("Year 3 Parents")
        twilio_api.open_whatsapp_window(parent(1))
        await twilio.add_whatsapp_participant(group.sid, parent(1), SCHOOL_WHATSAPP, "Becky")
    async with transaction(sessions) as session:
        school = await a_school(session)
        chat = Chat(
            platform="whatsapp", platform_chat_id=group.sid, title="Year 3 Parents",
            school_id=school.id, status=ChatStatus.REGISTERED, notice_version="test-1",
        )  # fmt: skip
        session.add(chat)
        await session.flush()
        becky = await a_member(session, chat, user_id=parent(1))
        await consent.give(session, chat, becky, "reply", NOW)
    runtime = Runtime.build(settings, db_engine)
    await runtime.start()
    try:
        await eventually(lambda: len(twilio_api.delivered_to(parent(1))) == 1, "the new notice")
    finally:
        await runtime.stop()
    [notice] = twilio_api.delivered_to(parent(1))
    assert notice.body is not None
    assert school.name in notice.body
    assert notice.body.endswith(runtime.whatsapp_texts.notice_suffix)
    async with sessions() as session:
        refreshed = await session.get(Chat, chat.id)
        assert refreshed is not None
        assert refreshed.notice_version == runtime.texts.notice.version
        member = await session.get(ChatMember, becky.id)
        assert member is not None
        assert not await consent.has_consented(session, refreshed, member)


@pytest.mark.parametrize(
    ("given", "problem"),
    [
        ({"twilio_whatsapp_from": SCHOOL_WHATSAPP}, "not TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN"),
        (
            {"twilio_account_sid": ACCOUNT_SID, "twilio_auth_token": SecretStr(AUTH_TOKEN),
             "twilio_whatsapp_from": SCHOOL_NUMBER},
            "TWILIO_WHATSAPP_FROM is a WhatsApp address like whatsapp:",
        ),
        (
            {"twilio_account_sid": ACCOUNT_SID, "twilio_auth_token": SecretStr(AUTH_TOKEN),
             "twilio_sms_from": "MG0123"},
            "TWILIO_SMS_FROM is a number like",
        ),
    ],
)  # fmt: skip
def test_twilio_settings_that_cannot_work_stop_start_up(
    given: dict[str, Any], problem: str
) -> None:
    with pytest.raises(ConfigError, match=problem):
        check_twilio(Settings(**given))


def test_staff_alerts_go_only_on_the_channels_configured() -> None:
    assert alert_channels(Settings(telegram_bot_token=None)) == {"telegram"}
    with_sms = Settings(
        telegram_bot_token=None, smtp_url=SecretStr("smtp://localhost"),
        twilio_account_sid=ACCOUNT_SID, twilio_auth_token=SecretStr(AUTH_TOKEN),
        twilio_sms_from=SCHOOL_NUMBER,
    )  # fmt: skip
    assert alert_channels(with_sms) == {"telegram", "email", "sms"}


async def test_with_telegram_off_unanswered_alerts_are_still_sent_again(
    sessions: Sessions, db_engine: AsyncEngine, engines: EngineCache, engine: PolicyEngine
) -> None:
    settings = Settings(
        telegram_bot_token=None, smtp_url=SecretStr("smtp://127.0.0.1:1"), school_file=SCHOOL_FILE
    )
    runtime = Runtime(settings, db_engine, sessions, engines)
    async with transaction(sessions) as session:
        chat = await a_chat(session)
        member = await a_member(session, chat)
        await consent.give(session, chat, member, "button", NOW)
        rude = message("you absolute idiot", id="9", reply_to="Kerry Marsh")
        checked = await check_message(session, engine, chat, member, rude, RETENTION, NOW)
        assert checked.flag is not None
    assert await runtime.summarise_and_escalate(NOW + timedelta(hours=3)) == 1
    async with sessions() as session:
        [again] = await OutboxRepository(session).listing(purpose="alert")
    assert (again.channel, again.recipient) == ("email", MAIL_TO)
    assert again.text.startswith("Not yet acknowledged after 30 minutes")


async def test_the_worker_command_delivers_whatsapp_without_telegram(
    twilio_api: FakeTwilioAPI, tmp_path: Path
) -> None:
    """``schoolgate worker`` as a process of its own, with only Twilio configured."""
    url = sqlite_url(tmp_path)
    engine = await migrated_engine(url)
    try:
        async with WhatsAppApi.connect(ACCOUNT_SID, AUTH_TOKEN, twilio_api.base_url) as twilio:
            group = await twilio.create_conversation("Year 3 Parents")
        await queue(session_factory(engine), "whatsapp-group", group.sid, "To the group")
        environment = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("TELEGRAM_", "TWILIO_", "SMTP_"))
        } | {
            "DATABASE_URL": url, "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
            "TWILIO_AUTH_TOKEN": AUTH_TOKEN, "TWILIO_WHATSAPP_FROM": SCHOOL_WHATSAPP,
            "TWILIO_API_BASE_URL": twilio_api.base_url, "PYTHONPATH": str(ROOT),
        }  # fmt: skip
        worker = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "worker", cwd=tmp_path, env=environment,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            await eventually(
                lambda: len(twilio_api.messages(group.sid)) == 1, "the worker's post", timeout=60
            )
            await all_sent(session_factory(engine), timeout=10)
        finally:
            worker.send_signal(signal.SIGINT)
            async with asyncio.timeout(10):
                out, err = await worker.communicate()
    finally:
        await engine.dispose()
    assert worker.returncode == 0, err.decode()
    [posted] = twilio_api.messages(group.sid)
    assert (posted.author, posted.body) == ("Schoolgate", "To the group")
    lines = out.decode().splitlines()
    assert "==> also delivering on: whatsapp, whatsapp-group" in lines
    assert lines[-1] == "==> worker stopped"
