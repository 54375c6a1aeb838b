from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable
from typing import Protocol

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.channels.telegram import runtime as runtime_module
from bot.channels.telegram.runtime import TelegramRuntime
from bot.policy.config import PolicyConfig
from bot.policy.lexicon import LexiconData
from bot.services.schools import EngineCache
from bot.texts import TelegramTexts, load_telegram_texts
from tests.channels.telegram.support import LEAVE_AFTER, PUBLIC_URL, RETENTION, TOKEN
from tests.conftest import CONFIG_DIR
from tests.fakes.telegram_api import FakeTelegramAPI


class StartBot(Protocol):
    def __call__(
        self,
        *,
        webhook: bool = False,
        observe_only: bool = False,
        with_texts: TelegramTexts | None = None,
        sweep_every: float | None = None,
    ) -> Awaitable[TelegramRuntime]: ...


@pytest.fixture(scope="package")
async def server() -> AsyncIterator[FakeTelegramAPI]:
    # Privacy mode off unless a test turns it on: the bot then reads a group as a plain member.
    async with FakeTelegramAPI(token=TOKEN, privacy_mode=False) as fake:
        yield fake


@pytest.fixture
def api(server: FakeTelegramAPI) -> FakeTelegramAPI:
    server.reset()
    return server


@pytest.fixture(scope="session")
def texts() -> TelegramTexts:
    return load_telegram_texts(CONFIG_DIR)


@pytest.fixture(scope="session")
def engines(lexicons: LexiconData) -> EngineCache:
    return EngineCache(lexicons, PolicyConfig(), None)


@pytest.fixture
async def start_bot(
    api: FakeTelegramAPI,
    sessions: async_sessionmaker[AsyncSession],
    engines: EngineCache,
    texts: TelegramTexts,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[StartBot]:
    """Starts real runtimes against the fake; every one is stopped after the test."""
    # A retry after a database outage comes at once, not after a second.
    monkeypatch.setattr(runtime_module, "RETRY_FIRST", 0.01)
    started: list[TelegramRuntime] = []

    async def start(
        *,
        webhook: bool = False,
        observe_only: bool = False,
        with_texts: TelegramTexts | None = None,
        sweep_every: float | None = None,
    ) -> TelegramRuntime:
        runtime = TelegramRuntime(
            TOKEN,
            api.base_url,
            sessions,
            engines,
            with_texts or texts,
            public_base_url=PUBLIC_URL if webhook else None,
            observe_only=observe_only,
            retention=RETENTION,
            leave_unregistered_after=LEAVE_AFTER,
            # Tests take housekeeping steps themselves, when they choose, unless they ask.
            sweep_every=sweep_every,
        )
        await runtime.start()
        started.append(runtime)
        return runtime

    yield start
    for runtime in started:
        await runtime.stop()


@pytest.fixture
async def bot(start_bot: StartBot) -> TelegramRuntime:
    """The bot, long polling."""
    return await start_bot()
