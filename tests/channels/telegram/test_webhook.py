"""The Telegram bot end to end through its webhook: real update JSON posted to the FastAPI app,
stored, processed by the real runtime, answered through the fake Bot API."""

from __future__ import annotations

import itertools
import json
import statistics
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from telegram import Update

from api.app import create_app
from api.telegram_webhook import SECRET_HEADER
from bench.adversarial import spaced_letters
from bot.channels.telegram.actions import Action
from bot.channels.telegram.runtime import (
    ALLOWED_UPDATES,
    MAX_ATTEMPTS,
    WEBHOOK_PATH,
    TelegramRuntime,
)
from bot.policy import ChatMessage, PolicyEngine, Verdict
from bot.runtime import Runtime
from bot.settings import Settings
from bot.store.db import create_engine, session_factory, transaction
from bot.store.models import Flag, InboxItem, InboxStatus
from tests.channels.telegram.conftest import StartBot
from tests.channels.telegram.support import (
    ABUSIVE,
    DOWN_URL,
    IN_HOURS,
    JSON,
    PUBLIC_URL,
    SAM,
    TOKEN,
    YEAR3,
    consent_button,
    consents_of,
    inbox_item,
    register,
    rows,
    wait_for,
)
from tests.fakes import telegram_updates as tu
from tests.fakes.telegram_api import FakeTelegramAPI

pytestmark = pytest.mark.anyio
Sessions = async_sessionmaker[AsyncSession]
MAX_BYTES = 4096

_update_ids = itertools.count(1)


def numbered(update: JSON) -> JSON:
    """Webhook updates come numbered, in increasing order."""
    return update if "update_id" in update else {"update_id": next(_update_ids)} | update


@dataclass
class Webhook:
    client: httpx.AsyncClient
    api: FakeTelegramAPI
    sessions: Sessions
    telegram: TelegramRuntime

    async def post(self, update: JSON) -> httpx.Response:
        """Telegram posts ``update`` (which it knows of, so the bot can answer it)."""
        self.api.observe_update(update)
        headers = {SECRET_HEADER: self.telegram.webhook_secret}
        return await self.client.post(WEBHOOK_PATH, json=update, headers=headers)

    async def deliver(self, update: JSON) -> InboxItem:
        update = numbered(update)
        response = await self.post(update)
        assert response.status_code == 200
        return await inbox_item(self.sessions, update["update_id"])

    async def post_raw(self, body: bytes) -> httpx.Response:
        headers = {SECRET_HEADER: self.telegram.webhook_secret, "content-type": "application/json"}
        return await self.client.post(WEBHOOK_PATH, content=body, headers=headers)


@pytest.fixture
async def telegram(start_bot: StartBot) -> TelegramRuntime:
    return await start_bot(webhook=True)


@asynccontextmanager
async def serving(
    api: FakeTelegramAPI,
    sessions: Sessions,
    db_engine: AsyncEngine,
    telegram: TelegramRuntime,
    **settings: Any,
) -> AsyncIterator[Webhook]:
    configured = Settings(
        public_base_url=PUBLIC_URL,
        telegram_bot_token=TOKEN,
        telegram_api_base_url=api.base_url,
        **settings,
    )
    # The runtime's own start and stop are the fixtures' (ASGITransport runs no lifespan).
    runtime = Runtime(configured, db_engine, sessions, telegram.engines, telegram)
    transport = httpx.ASGITransport(app=create_app(configured, runtime=runtime))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield Webhook(client, api, sessions, telegram)


@pytest.fixture
async def hook(
    api: FakeTelegramAPI,
    sessions: Sessions,
    db_engine: AsyncEngine,
    telegram: TelegramRuntime,
) -> AsyncIterator[Webhook]:
    async with serving(api, sessions, db_engine, telegram, max_update_bytes=MAX_BYTES) as served:
        yield served


@pytest.fixture
async def roomy_hook(
    api: FakeTelegramAPI,
    sessions: Sessions,
    db_engine: AsyncEngine,
    telegram: TelegramRuntime,
) -> AsyncIterator[Webhook]:
    """The webhook as installed: room for the longest message Telegram allows."""
    async with serving(api, sessions, db_engine, telegram) as served:
        yield served


async def test_the_webhook_is_set_with_a_secret_and_nothing_polls(
    api: FakeTelegramAPI, telegram: TelegramRuntime
) -> None:
    webhook = api.webhook()
    assert webhook["url"] == f"{PUBLIC_URL}{WEBHOOK_PATH}"
    assert webhook["secret_token"] == telegram.webhook_secret
    assert len(telegram.webhook_secret) >= 32
    assert webhook["allowed_updates"] == ALLOWED_UPDATES
    assert api.calls_to("getUpdates") == []


async def test_updates_posted_to_the_webhook_are_stored_and_processed(
    hook: Webhook, api: FakeTelegramAPI, sessions: Sessions
) -> None:
    notice = await register(api, sessions, via=hook.deliver)
    pressed = await hook.deliver(tu.callback_query(None, SAM, notice, consent_button(notice)))
    assert pressed.status == InboxStatus.PROCESSED
    await api.wait_for_call("answerCallbackQuery")
    assert len(await consents_of(sessions, SAM)) == 1

    abusive = await hook.deliver(tu.message(None, YEAR3, SAM, ABUSIVE, date=IN_HOURS))
    assert (abusive.status, abusive.payload) == (InboxStatus.PROCESSED, None)
    [flag] = await rows(sessions, Flag)
    assert [r.rule for r in flag.reasons] == ["abusive-to-parent"]


@pytest.mark.parametrize(
    "headers",
    [{SECRET_HEADER: "wrong"}, {SECRET_HEADER: ""}, {}],
    ids=["wrong-secret", "empty-secret", "no-secret"],
)
async def test_a_wrong_or_missing_secret_is_refused(
    hook: Webhook, sessions: Sessions, headers: dict[str, str]
) -> None:
    update = numbered(tu.message(None, YEAR3, SAM, ABUSIVE))
    response = await hook.client.post(WEBHOOK_PATH, json=update, headers=headers)
    assert response.status_code == 403
    assert await rows(sessions, InboxItem) == []


async def test_a_body_over_the_limit_is_refused(hook: Webhook, sessions: Sessions) -> None:
    huge = numbered(tu.message(None, YEAR3, SAM, "x" * MAX_BYTES))
    assert (await hook.post(huge)).status_code == 413

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it arrives
        body = json.dumps(huge).encode()
        for start in range(0, len(body), 1000):
            yield body[start : start + 1000]

    headers = {SECRET_HEADER: hook.telegram.webhook_secret}
    streamed = await hook.client.post(WEBHOOK_PATH, content=chunks(), headers=headers)
    assert streamed.status_code == 413
    assert await rows(sessions, InboxItem) == []

    photo = await hook.deliver(tu.photo_message(None, YEAR3, SAM, "sports day pics!"))
    assert photo.status == InboxStatus.PROCESSED  # a real update fits easily


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"\xff\xfe\x00",
        b"[1, 2, 3]",
        b'{"message": {"text": "no update_id"}}',
        b'{"update_id": "7", "message": {"text": "an update_id that is not a number"}}',
    ],
    ids=["not-json", "not-utf8", "array", "no-update-id", "string-update-id"],
)
async def test_a_body_that_is_not_an_update_is_acknowledged_and_dropped(
    hook: Webhook, sessions: Sessions, body: bytes
) -> None:
    response = await hook.post_raw(body)
    assert response.status_code == 200  # any other answer and Telegram sends it again
    assert await rows(sessions, InboxItem) == []


async def test_an_update_that_does_not_parse_fails_alone(
    hook: Webhook, api: FakeTelegramAPI, sessions: Sessions
) -> None:
    await register(api, sessions, via=hook.deliver)
    update_id = next(_update_ids)
    response = await hook.post_raw(json.dumps({"update_id": update_id, "message": {}}).encode())
    assert response.status_code == 200
    broken = await inbox_item(sessions, update_id)
    assert (broken.status, broken.payload) == (InboxStatus.FAILED, None)

    after = await hook.deliver(tu.command(None, YEAR3, SAM, "/consent"))
    assert after.status == InboxStatus.PROCESSED
    assert len(await consents_of(sessions, SAM)) == 1


async def test_the_same_update_posted_twice_is_processed_once(
    hook: Webhook, api: FakeTelegramAPI, sessions: Sessions
) -> None:
    notice = await register(api, sessions, via=hook.deliver)
    await hook.deliver(tu.callback_query(None, SAM, notice, consent_button(notice)))
    abusive = numbered(tu.message(None, YEAR3, SAM, ABUSIVE, date=IN_HOURS))
    first = await hook.deliver(abusive)
    again = await hook.deliver(abusive)  # e.g. our answer was lost on the way to Telegram

    assert again.id == first.id
    assert len([i for i in await rows(sessions, InboxItem) if i.update_id == first.update_id]) == 1
    assert len(await rows(sessions, Flag)) == 1


async def test_with_the_database_down_the_webhook_says_503_and_nothing_is_lost(
    hook: Webhook, api: FakeTelegramAPI, sessions: Sessions, telegram: TelegramRuntime
) -> None:
    notice = await register(api, sessions, via=hook.deliver)
    await hook.deliver(tu.callback_query(None, SAM, notice, consent_button(notice)))
    abusive = numbered(tu.message(None, YEAR3, SAM, ABUSIVE, date=IN_HOURS))

    down = create_engine(DOWN_URL)
    telegram.sessions = session_factory(down)
    try:
        assert (await hook.post(abusive)).status_code == 503  # Telegram will send it again
    finally:
        telegram.sessions = sessions
        await down.dispose()
    assert await rows(sessions, Flag) == []

    item = await hook.deliver(abusive)  # ...and now the database is back
    assert item.status == InboxStatus.PROCESSED
    [flag] = await rows(sessions, Flag)
    assert [r.rule for r in flag.reasons] == ["abusive-to-parent"]


async def test_an_update_that_keeps_failing_is_retried_then_set_aside_and_blocks_nothing(
    hook: Webhook,
    api: FakeTelegramAPI,
    sessions: Sessions,
    telegram: TelegramRuntime,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    notice = await register(api, sessions, via=hook.deliver)
    await hook.deliver(tu.callback_query(None, SAM, notice, consent_button(notice)))
    bad = numbered(tu.message(None, YEAR3, SAM, "an update our code trips over", date=IN_HOURS))
    handler = telegram.handler
    assert handler is not None
    original = handler.handle
    tried: list[int] = []

    async def failing(session: AsyncSession, update: Update, now: datetime) -> list[Action]:
        if update.update_id == bad["update_id"]:
            tried.append(update.update_id)
            raise RuntimeError("a bug in a handler")
        return await original(session, update, now)

    monkeypatch.setattr(handler, "handle", failing)
    item = await hook.deliver(bad)
    assert (item.status, item.payload, item.attempts) == (InboxStatus.FAILED, None, MAX_ATTEMPTS)
    assert item.error == "RuntimeError: a bug in a handler"
    # Each attempt was counted in its own transaction: the failed work's rollback kept it.
    assert len(tried) == MAX_ATTEMPTS

    after = await hook.deliver(tu.message(None, YEAR3, SAM, ABUSIVE, date=IN_HOURS))
    assert after.status == InboxStatus.PROCESSED
    assert len(await rows(sessions, Flag)) == 1


async def test_an_update_whose_attempts_ran_out_in_crashes_is_set_aside_unread(
    hook: Webhook, sessions: Sessions, telegram: TelegramRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three processes that died while processing an update (a freeze, an out-of-memory kill)
    left its attempt count at the limit: the next start sets it aside instead of dying again."""
    update_id = next(_update_ids)
    payload = numbered(tu.message(None, YEAR3, SAM, "never read again")) | {"update_id": update_id}
    async with transaction(sessions) as session:
        session.add(InboxItem(platform="telegram", update_id=update_id, payload=payload,
                              status=InboxStatus.PENDING, attempts=MAX_ATTEMPTS))  # fmt: skip
    handled: list[int] = []
    handler = telegram.handler
    assert handler is not None
    original = handler.handle

    async def recording(session: AsyncSession, update: Update, now: datetime) -> list[Action]:
        handled.append(update.update_id)
        return await original(session, update, now)

    monkeypatch.setattr(handler, "handle", recording)
    telegram._wake.set()  # as a restart's first sweep would
    item = await inbox_item(sessions, update_id)
    assert (item.status, item.payload) == (InboxStatus.FAILED, None)
    assert item.error == "the process stopped while it was being processed"
    assert update_id not in handled


async def test_health_checks_answer_while_a_long_message_is_checked(
    roomy_hook: Webhook, api: FakeTelegramAPI, sessions: Sessions, monkeypatch: pytest.MonkeyPatch
) -> None:
    """4,096 spaced letters from a consenting parent: the engine works on them in a worker
    thread, so the event loop, and with it /healthz, keeps answering while it does."""
    notice = await register(api, sessions, via=roomy_hook.deliver)
    await roomy_hook.deliver(tu.callback_query(None, SAM, notice, consent_button(notice)))
    spaced = spaced_letters(4096)
    checking, release, finished = threading.Event(), threading.Event(), threading.Event()
    classify = PolicyEngine.classify

    def slow_classify(engine: PolicyEngine, message: ChatMessage) -> Verdict:
        if message.text != spaced:
            return classify(engine, message)
        checking.set()
        verdict = classify(engine, message)
        # Keep the CPU busy until the test has looked (or, were the check blocking the event
        # loop, until a deadline: the test then sees it finished and fails).
        deadline = time.monotonic() + 10
        while not release.is_set() and time.monotonic() < deadline:
            verdict = classify(engine, message)
        finished.set()
        return verdict

    monkeypatch.setattr(PolicyEngine, "classify", slow_classify)
    update = numbered(tu.message(None, YEAR3, SAM, spaced, date=IN_HOURS))
    assert (await roomy_hook.post(update)).status_code == 200
    try:
        await wait_for(lambda: _true_or_none(checking.is_set()), "the check to start")
        latencies = []
        for _ in range(5):
            started = time.perf_counter()
            response = await roomy_hook.client.get("/healthz")
            latencies.append(time.perf_counter() - started)
            assert response.status_code == 200
        assert not finished.is_set()  # every answer came while the message was being checked
        assert statistics.median(latencies) < 0.1, latencies
    finally:
        release.set()
    item = await inbox_item(sessions, update["update_id"])
    assert item.status == InboxStatus.PROCESSED


async def _true_or_none(value: bool) -> bool | None:
    return True if value else None
