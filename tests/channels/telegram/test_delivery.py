"""Delivering the outbox on Telegram: real python-telegram-bot against the fake Bot API, on
SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from telegram import Bot

from bot.channels.telegram.delivery import CHANNEL, TelegramSender, telegram_bot
from bot.services.dispatcher import Dispatcher
from bot.services.outbox import enqueue
from bot.store.db import session_factory, transaction
from bot.store.models import OutboxMessage, OutboxStatus, utcnow
from bot.store.repositories.outbox import OutboxRepository
from tests.channels.telegram.conftest import StartBot
from tests.channels.telegram.support import OKAFOR, PAT, TOKEN, YEAR3, sent_in, wait_for
from tests.conftest import ROOT
from tests.database import migrated_engine, sqlite_url
from tests.factories import NOW
from tests.fakes import telegram_updates as tu
from tests.fakes.telegram_api import FakeTelegramAPI

pytestmark = pytest.mark.anyio
Sessions = async_sessionmaker[AsyncSession]
SLACK = timedelta(seconds=2)


@pytest.fixture
async def bot(api: FakeTelegramAPI) -> AsyncIterator[Bot]:
    """A plain bot, without the runtime's rate limiter: a 429 reaches the sender at once."""
    async with Bot(TOKEN, base_url=api.base_url) as plain:
        yield plain


async def queue(
    sessions: Sessions, recipient: int, now: datetime = NOW, **fields: Any
) -> OutboxMessage:
    async with transaction(sessions) as session:
        return await enqueue(
            session,
            key=fields.pop("key", "alert:1:1"),
            channel=CHANNEL,
            recipient=str(recipient),
            text=fields.pop("text", "High: Year 3 Parents"),
            purpose="alert",
            now=now,
            **fields,
        )


async def stored(sessions: Sessions, key: str = "alert:1:1") -> OutboxMessage:
    async with sessions() as session:
        row = await OutboxRepository(session).by_key(key)
    assert row is not None
    return row


def dispatcher(sessions: Sessions, bot: Bot) -> Dispatcher:
    return Dispatcher(sessions, {CHANNEL: TelegramSender(bot)})


async def test_a_message_goes_with_its_buttons_one_per_row_as_a_reply(
    api: FakeTelegramAPI, sessions: Sessions, bot: Bot
) -> None:
    flagged = tu.message(None, YEAR3, PAT, "ur a vile woman")
    api.observe_update(flagged)
    replied_to = flagged["message"]["message_id"]
    await queue(
        sessions,
        YEAR3["id"],
        text="Pat, please keep to the code of conduct.",
        buttons=[("Acknowledge", "flag:1:acknowledge"), ("Not a breach", "flag:1:fp")],
        reply_to=str(replied_to),
    )
    assert await dispatcher(sessions, bot).deliver_due() == 1

    [sent] = api.sent_messages(YEAR3["id"])
    assert sent.text == "Pat, please keep to the code of conduct."
    assert sent.reply_markup == {
        "inline_keyboard": [
            [{"text": "Acknowledge", "callback_data": "flag:1:acknowledge"}],
            [{"text": "Not a breach", "callback_data": "flag:1:fp"}],
        ]
    }
    assert sent.message["reply_to_message"]["message_id"] == replied_to
    [call] = api.calls_to("sendMessage")
    assert call.params["reply_parameters"]["allow_sending_without_reply"] is True
    row = await stored(sessions)
    assert (row.status, row.delivered_id) == (OutboxStatus.SENT, str(sent.message_id))


async def test_a_reply_to_a_message_since_deleted_still_goes(
    api: FakeTelegramAPI, sessions: Sessions, bot: Bot
) -> None:
    api.add_chat(YEAR3)
    await queue(sessions, YEAR3["id"], reply_to="987654")
    await dispatcher(sessions, bot).deliver_due()
    [sent] = api.sent_messages(YEAR3["id"])
    assert "reply_to_message" not in sent.message
    assert (await stored(sessions)).status == OutboxStatus.SENT


async def test_flood_control_is_waited_out_as_the_server_says(
    api: FakeTelegramAPI, sessions: Sessions, bot: Bot
) -> None:
    api.add_chat(tu.private_chat(OKAFOR))
    await queue(sessions, OKAFOR["id"])
    api.fail_next("sendMessage", 429, retry_after=5)
    dispatch = dispatcher(sessions, bot)

    await dispatch.deliver_due(NOW)
    row = await stored(sessions)
    assert (row.status, row.attempts) == (OutboxStatus.PENDING, 1)
    assert (row.error or "").startswith("flood control")
    # The server's five seconds, not the first backoff's one.
    assert NOW + timedelta(seconds=5) <= row.next_attempt_at < NOW + timedelta(seconds=5) + SLACK
    assert await dispatch.deliver_due(NOW + timedelta(seconds=4)) == 0

    assert await dispatch.deliver_due(NOW + timedelta(seconds=5) + SLACK) == 1
    assert (await stored(sessions)).status == OutboxStatus.SENT
    assert len(api.sent_messages(OKAFOR["id"])) == 1


async def test_the_runtimes_bot_waits_out_a_429_itself(api: FakeTelegramAPI) -> None:
    """PTB's rate limiter sleeps for retry_after and tries again before reporting anything."""
    api.add_chat(tu.private_chat(OKAFOR))
    api.fail_next("sendMessage", 429, retry_after=1)
    limited = telegram_bot(TOKEN, api.base_url)
    message = OutboxMessage(
        channel=CHANNEL, recipient=str(OKAFOR["id"]), text="High: Year 3", buttons=[]
    )
    async with limited:
        started = time.monotonic()
        delivered = await TelegramSender(limited).send(message)
    assert time.monotonic() - started >= 1
    [sent] = api.sent_messages(OKAFOR["id"])
    assert delivered == str(sent.message_id)
    assert len(api.calls_to("sendMessage")) == 2


@pytest.mark.parametrize(
    ("arrange", "status", "error"),
    [
        pytest.param(
            lambda api: api.set_bot_status(tu.private_chat(OKAFOR), "kicked"),
            OutboxStatus.FAILED,
            "Forbidden: bot was blocked by the user",
            id="blocked",
        ),
        pytest.param(
            lambda api: api.reset(),  # the chat was never known
            OutboxStatus.FAILED,
            "Bad Request: Chat not found",
            id="chat-not-found",
        ),
        pytest.param(
            lambda api: api.fail_next("sendMessage", 400, migrate_to_chat_id=-1009),
            OutboxStatus.FAILED,
            "the group became a supergroup, now chat -1009",
            id="migrated",
        ),
        pytest.param(
            lambda api: api.fail_next("sendMessage", 502, "Bad Gateway"),
            OutboxStatus.PENDING,
            "NetworkError: Bad Gateway",
            id="bad-gateway",
        ),
        pytest.param(
            lambda api: api.fail_next("sendMessage", 500, "Internal Server Error"),
            OutboxStatus.PENDING,
            "NetworkError: Internal Server Error",
            id="server-error",
        ),
    ],
)
async def test_failures_are_told_apart(
    api: FakeTelegramAPI,
    sessions: Sessions,
    bot: Bot,
    arrange: Any,
    status: OutboxStatus,
    error: str,
) -> None:
    api.add_chat(tu.private_chat(OKAFOR))
    arrange(api)
    await queue(sessions, OKAFOR["id"])
    await dispatcher(sessions, bot).deliver_due(NOW)
    row = await stored(sessions)
    assert (row.status, row.attempts, row.error) == (status, 1, error)


async def test_the_running_bot_delivers_the_outbox_as_soon_as_it_is_woken(
    api: FakeTelegramAPI, sessions: Sessions, start_bot: StartBot
) -> None:
    runtime = await start_bot()
    api.add_chat(tu.private_chat(OKAFOR))
    await queue(sessions, OKAFOR["id"], text="High: Year 3 Parents, Pat Jones")
    runtime.wake_outbox()
    [sent] = await sent_in(api, tu.private_chat(OKAFOR), 1)
    assert sent.text == "High: Year 3 Parents, Pat Jones"

    async def marked() -> OutboxMessage | None:
        row = await stored(sessions)
        return row if row.status == OutboxStatus.SENT else None

    await wait_for(marked, "the row to be marked sent")


async def test_the_worker_command_delivers_until_interrupted(
    api: FakeTelegramAPI, tmp_path: Path
) -> None:
    """``schoolgate worker`` as a process of its own: migrates, delivers, stops on Ctrl-C."""
    url = sqlite_url(tmp_path)
    engine = await migrated_engine(url)
    try:
        # Queued now: the worker's retention purge clears sent rows from over a week ago, which
        # a fixed date in the past becomes as the calendar moves on.
        await queue(
            session_factory(engine), OKAFOR["id"], now=utcnow(), text="High: Year 3 Parents"
        )
        api.add_chat(tu.private_chat(OKAFOR))
        environment = {
            key: value for key, value in os.environ.items() if not key.startswith("TELEGRAM_")
        } | {
            "DATABASE_URL": url,
            "TELEGRAM_BOT_TOKEN": TOKEN,
            "TELEGRAM_API_BASE_URL": api.base_url,
        }
        worker = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "worker",
            cwd=tmp_path, env=environment | {"PYTHONPATH": str(ROOT)},
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            # A process of its own: it imports, loads the models and migrates first, which on a
            # busy machine takes several seconds.
            [sent] = await sent_in(api, tu.private_chat(OKAFOR), 1, timeout=60)
            assert sent.text == "High: Year 3 Parents"
            await wait_for(lambda: sent_row(engine), "the row to be marked sent", timeout=30)
        finally:
            worker.send_signal(signal.SIGINT)
            async with asyncio.timeout(10):
                out, err = await worker.communicate()
    finally:
        await engine.dispose()
    assert worker.returncode == 0, err.decode()
    assert out.decode().splitlines() == [
        f"==> database: {url}; migrating",
        "==> Telegram: delivering as @schoolgate_bot",
        "==> e-mail, WhatsApp and SMS: off (no SMTP_URL, no TWILIO_* senders)",
        "==> outbox: 1 pending, 0 sending, 0 sent, 0 failed",
        "==> delivering; Ctrl-C to stop (the batch in hand is finished first)",
        "==> worker stopped",
    ]


async def sent_row(engine: AsyncEngine) -> OutboxMessage | None:
    async with session_factory(engine)() as session:
        [row] = await OutboxRepository(session).listing()
    return row if row.status == OutboxStatus.SENT else None
