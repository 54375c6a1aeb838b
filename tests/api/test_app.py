from __future__ import annotations

import httpx
import pytest

from bot.store.models import UserRole
from tests.api.conftest import SignIn

pytestmark = pytest.mark.anyio


async def test_health_and_readiness(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    assert (await client.get("/readyz")).json() == {"status": "ready"}


async def test_try_a_message(sign_in: SignIn) -> None:
    slt = await sign_in(UserRole.SLT)
    response = await slt.post(
        "/api/classify",
        json={"id": "t1", "text": "@mr_okafor hi", "sent_at": "2026-11-24T10:00:00+00:00"},
    )
    assert response.status_code == 200
    assert response.json()["rules"] == ["staff-contact"]


async def test_trying_a_message_needs_an_account(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/classify", json={"text": "hi", "sent_at": "2026-11-24T10:00:00+00:00"}
    )
    assert response.status_code == 401


async def test_bad_message_is_a_clear_422(sign_in: SignIn) -> None:
    slt = await sign_in(UserRole.SLT)
    response = await slt.post("/api/classify", json={"id": "t1", "sent_at": "not a date"})
    assert response.status_code == 422
    fields = {tuple(error["loc"]) for error in response.json()["detail"]}
    assert fields == {("body", "text"), ("body", "sent_at")}


async def test_huge_message_is_refused(sign_in: SignIn) -> None:
    slt = await sign_in(UserRole.SLT)
    response = await slt.post(
        "/api/classify", json={"text": "a " * 40_000, "sent_at": "2026-11-24T10:00:00+00:00"}
    )
    assert response.status_code == 413
    assert "characters" in response.json()["detail"]


async def test_a_body_over_the_limit_is_refused_before_it_is_read(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/api/auth/login", content=b"x" * 2_000_000)
    assert response.status_code == 413


async def test_openapi_schema_lists_the_api(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert {"/healthz", "/readyz", "/api/classify", "/api/auth/login"} <= set(paths)


async def test_an_error_page_leads_back_to_the_form_on_this_site(sign_in: SignIn) -> None:
    viewer = await sign_in(UserRole.VIEWER)
    data = {"current": "x" * 12, "new": "a long new passphrase", "confirm": "something else!!"}
    mismatch = await viewer.client.post(
        "/account/password",
        data={**data, "csrf_token": viewer.csrf},
        headers={"Referer": "http://test/account"},
    )
    assert mismatch.status_code == 400
    assert '<a href="/account">Go back</a>' in mismatch.text
    elsewhere = await viewer.client.post(
        "/account/password",
        data={**data, "csrf_token": viewer.csrf},
        headers={"Referer": "https://evil.example/account"},
    )
    assert "Go back" not in elsewhere.text
    # This host, but a path a browser reads as another site (protocol-relative).
    off_site = await viewer.client.post(
        "/account/password",
        data={**data, "csrf_token": viewer.csrf},
        headers={"Referer": "http://test//evil.example/account"},
    )
    assert off_site.status_code == 400
    assert "Go back" not in off_site.text
    assert "evil.example" not in off_site.text
