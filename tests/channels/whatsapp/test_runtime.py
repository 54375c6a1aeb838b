"""The WhatsApp channel's start and stop: configured from the settings, webhooks pointed at us."""

from __future__ import annotations

import logging

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from api.app import create_app
from bot.channels.whatsapp.paths import INCOMING_PATH
from bot.channels.whatsapp.runtime import WhatsAppRuntime
from bot.runtime import Runtime
from bot.services.schools import EngineCache
from bot.settings import Settings
from bot.texts import load_telegram_texts, load_whatsapp_texts
from tests.channels.whatsapp.conftest import StartWhatsApp
from tests.channels.whatsapp.support import RETENTION, Sessions, WhatsApp
from tests.conftest import CONFIG_DIR
from tests.fakes import twilio_webhooks as tw
from tests.fakes.twilio_api import FakeTwilioAPI
from tests.fakes.twilio_webhooks import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    PUBLIC_BASE_URL,
    SCHOOL_WHATSAPP,
    parent,
)

pytestmark = pytest.mark.anyio


def build(settings: Settings, sessions: Sessions, engines: EngineCache) -> WhatsAppRuntime | None:
    return WhatsAppRuntime.build(
        settings, sessions, engines, load_whatsapp_texts(CONFIG_DIR),
        load_telegram_texts(CONFIG_DIR), retention=RETENTION,
        alert_channels=frozenset({"telegram", "whatsapp"}),
    )  # fmt: skip


async def test_whatsapp_is_off_until_twilio_is_configured(
    sessions: Sessions, engines: EngineCache
) -> None:
    assert build(Settings(telegram_bot_token=None), sessions, engines) is None
    assert build(Settings(twilio_account_sid=ACCOUNT_SID), sessions, engines) is None
    on = build(
        Settings(
            twilio_account_sid=ACCOUNT_SID, twilio_auth_token=AUTH_TOKEN,
            twilio_whatsapp_from=SCHOOL_WHATSAPP, public_base_url="https://school.example/",
            remind_every_hours=6, observe_only=True,
        ),
        sessions, engines,
    )  # fmt: skip
    assert on is not None
    assert on.settings.public_base_url == "https://school.example"
    assert on.handling.proxy_address == SCHOOL_WHATSAPP
    assert on.handling.alert_channels == frozenset({"telegram", "whatsapp"})
    assert (on.handling.remind_every.total_seconds(), on.handling.observe_only) == (6 * 3600, True)


async def test_webhooks_are_answered_503_until_started_and_after_stopping(
    twilio: FakeTwilioAPI, db_engine: AsyncEngine, sessions: Sessions, engines: EngineCache
) -> None:
    settings = Settings(
        telegram_bot_token=None, smtp_url=None, public_base_url=PUBLIC_BASE_URL,
        twilio_account_sid=ACCOUNT_SID, twilio_auth_token=AUTH_TOKEN,
        twilio_whatsapp_from=SCHOOL_WHATSAPP, twilio_api_base_url=twilio.base_url,
    )  # fmt: skip
    channel = build(settings, sessions, engines)
    assert channel is not None
    # As the app is built for the process; ASGITransport runs no lifespan, so nothing starts it.
    app = create_app(
        settings, runtime=Runtime(settings, db_engine, sessions, engines, whatsapp=channel)
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=PUBLIC_BASE_URL) as client:
        whatsapp = WhatsApp(twilio, channel, sessions, app, client)
        params = tw.incoming_message(parent(1), SCHOOL_WHATSAPP, "hello")

        assert (await whatsapp.post(INCOMING_PATH, params)).status_code == 503  # not started

        await channel.start()
        try:
            assert (await whatsapp.post(INCOMING_PATH, params)).status_code == 200
        finally:
            await channel.stop()

        assert (await whatsapp.post(INCOMING_PATH, params)).status_code == 503  # stopped


async def test_a_failure_to_configure_twilios_webhooks_does_not_stop_the_channel(
    start_whatsapp: StartWhatsApp, twilio: FakeTwilioAPI, caplog: pytest.LogCaptureFixture
) -> None:
    twilio.fail_next("service_webhooks.update", 503)

    with caplog.at_level(logging.ERROR):
        whatsapp = await start_whatsapp()

    assert "could not configure the Conversation Service's webhooks" in caplog.text
    assert twilio.service_webhooks().pre_url is None
    answer = await whatsapp.post(INCOMING_PATH, tw.incoming_message(parent(1), SCHOOL_WHATSAPP, ""))
    assert answer.status_code == 200
