"""The real Telegram bot beside the served admin app, against the fake Bot API: browser tests
that start in a Telegram chat import these fixtures (``from tests.browser.telegram import ...``).

The bot shares the app's runtime, as in ``serve``: a decision or action on the admin pages
wakes its outbox dispatcher, so what it queues reaches the fake chat at once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI

from bot.channels.telegram.runtime import TelegramRuntime
from bot.runtime import Runtime
from bot.services.schools import EngineCache
from tests.api.support import Sessions
from tests.channels.telegram.support import LEAVE_AFTER, RETENTION, TOKEN
from tests.fakes.telegram_api import FakeTelegramAPI


@pytest.fixture(scope="module")
async def telegram_server() -> AsyncIterator[FakeTelegramAPI]:
    # Privacy mode off: the bot reads the group as a plain member does.
    async with FakeTelegramAPI(token=TOKEN, privacy_mode=False) as fake:
        yield fake


@pytest.fixture
def telegram(telegram_server: FakeTelegramAPI) -> FakeTelegramAPI:
    """The fake Bot API, emptied for this test."""
    telegram_server.reset()
    return telegram_server


@pytest.fixture
async def bot(
    telegram: FakeTelegramAPI, app: FastAPI, sessions: Sessions, engines: EngineCache
) -> AsyncIterator[TelegramRuntime]:
    """The bot, long polling the fake, and the admin app's Telegram connection."""
    runtime: Runtime = app.state.runtime
    started = TelegramRuntime(
        TOKEN,
        telegram.base_url,
        sessions,
        engines,
        runtime.texts,
        public_base_url=None,  # long polling
        observe_only=False,
        retention=RETENTION,
        leave_unregistered_after=LEAVE_AFTER,
        sweep_every=None,  # no housekeeping in the background: these tests do not need it
    )
    await started.start()
    runtime.telegram = started
    yield started
    runtime.telegram = None
    await started.stop()
