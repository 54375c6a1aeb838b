from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from api.app import create_app
from bot.policy import PolicyEngine
from bot.runtime import Runtime
from bot.settings import Settings

pytestmark = pytest.mark.anyio


@pytest.fixture
async def client(engine: PolicyEngine, db_engine: AsyncEngine) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(telegram_bot_token=None)
    runtime = Runtime.build(settings, database=db_engine)
    transport = httpx.ASGITransport(app=create_app(settings, runtime=runtime, engine=engine))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


async def test_health_and_readiness(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    assert (await client.get("/readyz")).json() == {
        "status": "ready",
        "school": "Peartree Spring Primary School",
    }


async def test_home_page_says_what_is_running(client: httpx.AsyncClient) -> None:
    page = await client.get("/")
    assert page.status_code == 200
    assert "Peartree Spring Primary School" in page.text


async def test_try_a_message(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/classify",
        json={"id": "t1", "text": "@mr_okafor hi", "sent_at": "2026-11-24T10:00:00+00:00"},
    )
    assert response.status_code == 200
    assert response.json()["rules"] == ["staff-contact"]


async def test_bad_message_is_a_clear_422(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/classify", json={"id": "t1", "sent_at": "not a date"})
    assert response.status_code == 422
    fields = {tuple(error["loc"]) for error in response.json()["detail"]}
    assert fields == {("body", "text"), ("body", "sent_at")}


async def test_huge_message_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/classify", json={"text": "a " * 40_000, "sent_at": "2026-11-24T10:00:00+00:00"}
    )
    assert response.status_code == 413
    assert "characters" in response.json()["detail"]


async def test_openapi_schema_lists_the_api(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert {"/healthz", "/readyz", "/api/classify"} <= set(paths)
