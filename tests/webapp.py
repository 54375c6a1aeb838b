"""The admin app and signed-in browsers, for the API and browser tests (a pytest plugin that the
root conftest loads)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest
from argon2 import PasswordHasher
from argon2.profiles import CHEAPEST
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from api.app import create_app
from bot.policy.config import PolicyConfig
from bot.policy.lexicon import LexiconData
from bot.runtime import Runtime
from bot.services import accounts
from bot.services.accounts import Throttle
from bot.services.schools import EngineCache
from bot.settings import Settings
from bot.store.db import transaction
from bot.store.models import School, UserRole
from tests.api.support import Browser, Sessions, an_account, signed_in
from tests.factories import a_school
from tests.fakes.loopback import LoopbackServer

SignIn = Callable[..., Awaitable[Browser]]
NewClient = Callable[[], httpx.AsyncClient]


@pytest.fixture(autouse=True)
def cheap_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Argon2id with its cheapest parameters: the tests check the flow, not the cost."""
    monkeypatch.setattr(accounts, "hasher", PasswordHasher.from_parameters(CHEAPEST))


@pytest.fixture(scope="session")
def engines(lexicons: LexiconData) -> EngineCache:
    return EngineCache(lexicons, PolicyConfig(), None)


@pytest.fixture
def settings() -> Settings:
    return Settings(telegram_bot_token=None)


@pytest.fixture
def app(
    settings: Settings, db_engine: AsyncEngine, sessions: Sessions, engines: EngineCache
) -> FastAPI:
    runtime = Runtime(settings, db_engine, sessions, engines)
    return create_app(settings, runtime=runtime, throttle=Throttle())


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


@pytest.fixture
async def new_client(app: FastAPI) -> AsyncIterator[NewClient]:
    """Another browser on the same app (closed after the test)."""
    clients: list[httpx.AsyncClient] = []

    def make() -> httpx.AsyncClient:
        clients.append(
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")
        )
        return clients[-1]

    yield make
    for made in clients:
        await made.aclose()


@pytest.fixture
async def seeded_school(sessions: Sessions) -> School:
    """The test school (tests/data/school.yaml) with its staff, in the database."""
    async with transaction(sessions) as session:
        return await a_school(session)


@pytest.fixture
async def sign_in(app: FastAPI, sessions: Sessions, seeded_school: School) -> AsyncIterator[SignIn]:
    """``await sign_in(UserRole.SLT)``: a new client, signed in with a new account of that role
    (at the seeded school unless ``at`` names another)."""
    clients: list[httpx.AsyncClient] = []

    async def sign_in_as(role: UserRole = UserRole.SLT, *, at: School | None = None) -> Browser:
        async with transaction(sessions) as session:
            user = await an_account(session, at or seeded_school, role=role)
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")
        clients.append(client)
        return await signed_in(client, sessions, user)

    yield sign_in_as
    for client in clients:
        await client.aclose()


@pytest.fixture
async def live_server(app: FastAPI) -> AsyncIterator[str]:
    """The app served by uvicorn on a free loopback port; its base URL."""
    server = LoopbackServer(app)
    await server.start()
    yield server.url
    await server.stop()
