from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable
from dataclasses import replace
from typing import Any, Protocol

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from api.app import create_app
from bot.channels.whatsapp.context import HandlerSettings
from bot.channels.whatsapp.runtime import WhatsAppRuntime, WhatsAppSettings
from bot.channels.whatsapp.twilio_client import WhatsAppApi
from bot.runtime import Runtime
from bot.services.schools import EngineCache
from bot.settings import Settings
from bot.store.db import create_engine, session_factory
from bot.store.models import School
from bot.texts import TelegramTexts, load_telegram_texts, load_whatsapp_texts
from tests.channels.whatsapp.support import (
    INCOMING_URL,
    MAX_BYTES,
    RETENTION,
    Sessions,
    WhatsApp,
)
from tests.conftest import CONFIG_DIR
from tests.fakes.twilio_api import FakeTwilioAPI
from tests.fakes.twilio_webhooks import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    PUBLIC_BASE_URL,
    SCHOOL_WHATSAPP,
)

ALERT_CHANNELS = frozenset({"telegram", "email"})


class StartWhatsApp(Protocol):
    def __call__(
        self, *, database: AsyncEngine | None = None, **handling: Any
    ) -> Awaitable[WhatsApp]: ...


@pytest.fixture(scope="package")
async def fake_twilio() -> AsyncIterator[FakeTwilioAPI]:
    async with FakeTwilioAPI(incoming_url=INCOMING_URL) as fake:
        yield fake


@pytest.fixture
def twilio(fake_twilio: FakeTwilioAPI) -> FakeTwilioAPI:
    fake_twilio.reset()
    return fake_twilio


@pytest.fixture
async def twilio_client(twilio: FakeTwilioAPI) -> AsyncIterator[WhatsAppApi]:
    """The real twilio client, through our facade, pointed at the fake."""
    async with WhatsAppApi.connect(ACCOUNT_SID, AUTH_TOKEN, twilio.base_url) as connected:
        yield connected


@pytest.fixture(scope="package")
def texts() -> TelegramTexts:
    return load_telegram_texts(CONFIG_DIR)


def _settings(twilio: FakeTwilioAPI) -> Settings:
    return Settings(
        telegram_bot_token=None,
        smtp_url=None,
        public_base_url=PUBLIC_BASE_URL,
        twilio_account_sid=ACCOUNT_SID,
        twilio_auth_token=AUTH_TOKEN,
        twilio_whatsapp_from=SCHOOL_WHATSAPP,
        twilio_api_base_url=twilio.base_url,
        max_update_bytes=MAX_BYTES,
    )


@pytest.fixture
async def start_whatsapp(
    twilio: FakeTwilioAPI,
    db_engine: AsyncEngine,
    sessions: Sessions,
    engines: EngineCache,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[StartWhatsApp]:
    """Builds the app with the WhatsApp channel on (``database``: another database, e.g. one
    that is down) and points the fake's webhooks at it; everything is stopped afterwards."""
    started: list[WhatsApp] = []
    engine_calls: list[int] = []
    for_school = engines.for_school

    async def spy(session: AsyncSession, school: School) -> Any:
        engine_calls.append(school.id)
        return await for_school(session, school)

    monkeypatch.setattr(engines, "for_school", spy)

    async def start(*, database: AsyncEngine | None = None, **handling: Any) -> WhatsApp:
        settings = _settings(twilio)
        configured = WhatsAppSettings.of(settings)
        assert configured is not None
        chosen = session_factory(database) if database is not None else sessions
        channel = WhatsAppRuntime(
            configured,
            replace(
                HandlerSettings(SCHOOL_WHATSAPP, RETENTION, alert_channels=ALERT_CHANNELS),
                **handling,
            ),
            chosen,
            engines,
            load_whatsapp_texts(CONFIG_DIR),
            load_telegram_texts(CONFIG_DIR),
        )
        # The runtime's own start and stop are the fixture's (ASGITransport runs no lifespan).
        runtime = Runtime(settings, database or db_engine, chosen, engines, whatsapp=channel)
        app = create_app(settings, runtime=runtime)
        await channel.start()
        twilio.webhook_transport = httpx.ASGITransport(app=app)
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=PUBLIC_BASE_URL)
        world = WhatsApp(twilio, channel, chosen, app, client, engine_calls)
        started.append(world)
        return world

    yield start
    for world in started:
        await world.client.aclose()
        await world.runtime.stop()


@pytest.fixture
async def whatsapp(start_whatsapp: StartWhatsApp) -> WhatsApp:
    return await start_whatsapp()


DOWN_URL = "postgresql+asyncpg://schoolgate@127.0.0.1:1/schoolgate"


@pytest.fixture
async def down_database() -> AsyncIterator[AsyncEngine]:
    """A database that cannot be reached (nothing listens on port 1)."""
    engine = create_engine(DOWN_URL)
    yield engine
    await engine.dispose()
