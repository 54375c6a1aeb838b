"""Signing in, two-factor, sessions, throttling, CSRF and the security headers, as a browser and
an API client meet them."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx
import pyotp
import pytest
from sqlalchemy import func, select

from api.admin.deps import CSRF_HEADER, SESSION_COOKIE
from bot.services.user_sessions import token_hash
from bot.store.db import transaction
from bot.store.models import (
    AuditEvent,
    School,
    SessionStage,
    User,
    UserRole,
    UserSession,
    utcnow,
)
from tests.api.conftest import NewClient, SignIn
from tests.api.support import PASSWORD, Sessions, an_account, code_for, signed_in

pytestmark = pytest.mark.anyio


async def an_account_now(
    sessions: Sessions, school: School, role: UserRole = UserRole.SLT, *, two_factor: bool = True
) -> User:
    async with transaction(sessions) as session:
        return await an_account(session, school, role=role, two_factor=two_factor)


def hidden(page: httpx.Response, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', page.text)
    assert match, f"no hidden field {name} on the page"
    return match.group(1)


async def submit_login(
    client: httpx.AsyncClient, email: str, password: str = PASSWORD, next: str = "/"
) -> httpx.Response:
    form = await client.get(f"/login?next={next}")
    return await client.post(
        "/login",
        data={
            "email": email,
            "password": password,
            "csrf_token": hidden(form, "csrf_token"),
            "next": hidden(form, "next"),
        },
    )


async def submit_code(
    client: httpx.AsyncClient, code: str, path: str = "/login/code"
) -> httpx.Response:
    form = await client.get(path)
    return await client.post(
        path, data={"code": code, "csrf_token": hidden(form, "csrf_token"), "next": "/"}
    )


async def stored_session(sessions: Sessions, token: str) -> UserSession | None:
    async with sessions() as session:
        query = select(UserSession).where(UserSession.token_hash == token_hash(token))
        return await session.scalar(query)


# -- password and code -------------------------------------------------------------------------


async def test_password_then_code_signs_in_with_a_new_token(
    client: httpx.AsyncClient, sessions: Sessions, seeded_school: School
) -> None:
    user = await an_account_now(sessions, seeded_school, UserRole.ADMIN)

    after_password = await submit_login(client, user.email)
    assert after_password.status_code == 303
    assert after_password.headers["location"].startswith("/login/code")
    partial = client.cookies[SESSION_COOKIE]
    assert (await stored_session(sessions, partial)).stage == SessionStage.PASSWORD  # type: ignore[union-attr]
    # Half signed in is not signed in.
    assert (await client.get("/accounts")).status_code == 303

    after_code = await submit_code(client, code_for(user))
    assert after_code.status_code == 303
    full = client.cookies[SESSION_COOKIE]
    assert full != partial, "a new token once signed in"
    assert (await stored_session(sessions, partial)).revoked_at is not None  # type: ignore[union-attr]
    assert (await stored_session(sessions, full)).stage == SessionStage.FULL  # type: ignore[union-attr]
    assert (await client.get("/accounts")).status_code == 200
    async with sessions() as session:
        signed = await session.scalar(
            select(func.count()).where(AuditEvent.action == "account.signed_in")
        )
    assert signed == 1


async def test_wrong_password_and_unknown_address_get_the_same_answer(
    client: httpx.AsyncClient, sessions: Sessions, seeded_school: School
) -> None:
    user = await an_account_now(sessions, seeded_school)
    wrong = await submit_login(client, user.email, "not the password at all")
    unknown = await submit_login(client, "nobody@example.sch.uk")
    assert wrong.status_code == unknown.status_code == 401
    assert "do not match an account" in wrong.text
    assert "do not match an account" in unknown.text
    assert SESSION_COOKIE not in client.cookies


async def test_a_wrong_or_reused_code_is_refused(
    client: httpx.AsyncClient, new_client: NewClient, sessions: Sessions, seeded_school: School
) -> None:
    user = await an_account_now(sessions, seeded_school)
    await submit_login(client, user.email)
    wrong = await submit_code(client, "000000" if code_for(user) != "000000" else "111111")
    assert wrong.status_code == 401
    code = code_for(user)
    assert (await submit_code(client, code)).status_code == 303

    second = new_client()
    await submit_login(second, user.email)
    replayed = await submit_code(second, code)
    assert replayed.status_code == 401, "a code works once"


async def test_first_sign_in_sets_up_two_factor(
    client: httpx.AsyncClient, sessions: Sessions, seeded_school: School
) -> None:
    user = await an_account_now(sessions, seeded_school, UserRole.DSL, two_factor=False)
    after_password = await submit_login(client, user.email)
    assert after_password.headers["location"].startswith("/login/setup")
    page = await client.get("/login/setup")
    assert 'src="data:image/svg+xml' in page.text
    secret = re.search(r"data-secret>([A-Z2-7]+)<", page.text)
    assert secret
    again = await client.get("/login/setup")
    assert secret.group(1) in again.text, "a reload keeps the secret already scanned"

    assert (await submit_code(client, "123456", "/login/setup")).status_code in (400, 303)
    totp = pyotp.TOTP(secret.group(1))
    done = await submit_code(client, totp.now(), "/login/setup")
    assert done.status_code == 303
    assert (await client.get("/flags")).status_code != 303
    async with sessions() as session:
        stored = await session.get(User, user.id)
        assert stored is not None
        assert stored.totp_confirmed_at is not None
        assert stored.totp_secret == secret.group(1)


async def test_a_viewer_without_two_factor_signs_in_with_a_password(
    client: httpx.AsyncClient, sessions: Sessions, seeded_school: School
) -> None:
    viewer = await an_account_now(sessions, seeded_school, UserRole.VIEWER, two_factor=False)
    signed = await submit_login(client, viewer.email)
    assert signed.status_code == 303
    assert not signed.headers["location"].startswith("/login")
    assert (await client.get("/account")).status_code == 200


async def test_next_only_leads_somewhere_on_this_site(
    client: httpx.AsyncClient, sessions: Sessions, seeded_school: School
) -> None:
    viewer = await an_account_now(sessions, seeded_school, UserRole.VIEWER, two_factor=False)
    signed = await submit_login(client, viewer.email, next="//evil.example/steal")
    assert signed.headers["location"] == "/"


async def test_the_sign_in_form_needs_its_own_csrf_token(
    client: httpx.AsyncClient, sessions: Sessions, seeded_school: School
) -> None:
    user = await an_account_now(sessions, seeded_school)
    forged = await client.post("/login", data={"email": user.email, "password": PASSWORD})
    assert forged.status_code == 400
    assert SESSION_COOKIE not in client.cookies


async def test_a_disabled_account_cannot_sign_in_and_its_sessions_stop(
    client: httpx.AsyncClient, new_client: NewClient, sessions: Sessions, seeded_school: School
) -> None:
    user = await an_account_now(sessions, seeded_school, UserRole.VIEWER, two_factor=False)
    browser = await signed_in(client, sessions, user)
    async with transaction(sessions) as session:
        stored = await session.get(User, user.id)
        assert stored is not None
        stored.active = False
    assert (await browser.get("/account")).status_code == 303
    assert (await submit_login(new_client(), user.email)).status_code == 401


# -- throttling --------------------------------------------------------------------------------


async def test_repeated_failures_lock_the_account_for_a_while(
    client: httpx.AsyncClient, sessions: Sessions, seeded_school: School
) -> None:
    user = await an_account_now(sessions, seeded_school, UserRole.VIEWER, two_factor=False)
    for _ in range(5):
        assert (await submit_login(client, user.email, "wrong password!!")).status_code == 401
    locked = await submit_login(client, user.email)  # even the right password now waits
    assert locked.status_code == 429
    assert "Too many attempts" in locked.text
    assert "15 minutes" in locked.text


async def test_one_address_guessing_many_accounts_is_throttled(
    client: httpx.AsyncClient, sessions: Sessions, seeded_school: School
) -> None:
    for number in range(20):
        await submit_login(client, f"guess{number}@example.sch.uk", "wrong password!!")
    user = await an_account_now(sessions, seeded_school, UserRole.VIEWER, two_factor=False)
    assert (await submit_login(client, user.email)).status_code == 429


async def test_wrong_codes_count_towards_the_limit(
    client: httpx.AsyncClient, sessions: Sessions, seeded_school: School
) -> None:
    user = await an_account_now(sessions, seeded_school)
    await submit_login(client, user.email)
    statuses = [(await submit_code(client, "99999" + str(n))).status_code for n in range(5)]
    assert statuses[-1] in (401, 429)
    assert (await submit_code(client, code_for(user))).status_code == 429


# -- sessions ----------------------------------------------------------------------------------


async def test_an_idle_session_ends(
    client: httpx.AsyncClient, sessions: Sessions, seeded_school: School
) -> None:
    user = await an_account_now(sessions, seeded_school, UserRole.VIEWER)
    browser = await signed_in(client, sessions, user, now=utcnow() - timedelta(minutes=31))
    page = await browser.get("/account")
    assert page.status_code == 303
    assert page.headers["location"] == "/login?next=/account"


async def test_a_session_ends_at_its_absolute_limit_however_busy(
    client: httpx.AsyncClient, sessions: Sessions, seeded_school: School
) -> None:
    user = await an_account_now(sessions, seeded_school, UserRole.VIEWER)
    browser = await signed_in(client, sessions, user)
    assert (await browser.get("/account")).status_code == 200
    async with transaction(sessions) as session:
        query = select(UserSession).where(
            UserSession.token_hash == token_hash(client.cookies[SESSION_COOKIE])
        )
        stored = await session.scalar(query)
        assert stored is not None
        stored.expires_at = utcnow() - timedelta(seconds=1)
    assert (await browser.get("/account")).status_code == 303


async def test_signing_out_revokes_the_session(
    client: httpx.AsyncClient, sessions: Sessions, seeded_school: School
) -> None:
    user = await an_account_now(sessions, seeded_school, UserRole.VIEWER)
    browser = await signed_in(client, sessions, user)
    token = client.cookies[SESSION_COOKIE]
    out = await browser.form("/logout")
    assert out.status_code == 303
    client.cookies.set(SESSION_COOKIE, token)  # a copied cookie is worthless now
    assert (await client.get("/account")).status_code == 303


async def test_changing_the_password_signs_out_other_sessions(
    client: httpx.AsyncClient, new_client: NewClient, sessions: Sessions, seeded_school: School
) -> None:
    user = await an_account_now(sessions, seeded_school, UserRole.VIEWER, two_factor=False)
    other = await signed_in(new_client(), sessions, user)
    here = await signed_in(client, sessions, user)
    new = "a new long passphrase"
    changed = await here.form(
        "/account/password", {"current": PASSWORD, "new": new, "confirm": new}
    )
    assert changed.status_code == 303
    assert (await here.get("/account")).status_code == 200
    assert (await other.get("/account")).status_code == 303
    assert (await submit_login(new_client(), user.email, new)).status_code == 303


# -- CSRF ---------------------------------------------------------------------------------------


async def test_changes_need_the_sessions_csrf_token(sign_in: SignIn) -> None:
    viewer = await sign_in(UserRole.VIEWER)
    data = {
        "current": PASSWORD,
        "new": "another long passphrase",
        "confirm": "another long passphrase",
    }
    missing = await viewer.client.post("/account/password", data=data)
    forged = await viewer.client.post("/account/password", data={**data, "csrf_token": "x" * 43})
    assert missing.status_code == forged.status_code == 403
    api = await viewer.client.post("/api/auth/logout")
    assert api.status_code == 403
    assert (
        await viewer.client.post("/api/auth/logout", headers={CSRF_HEADER: viewer.csrf})
    ).status_code == 204


# -- headers ------------------------------------------------------------------------------------


async def test_pages_are_not_cached_framed_or_scripted_from_elsewhere(sign_in: SignIn) -> None:
    viewer = await sign_in(UserRole.VIEWER)
    page = await viewer.get("/account")
    assert page.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["x-content-type-options"] == "nosniff"
    assert "strict-transport-security" not in page.headers
    static = await viewer.get("/static/app.css")
    assert static.status_code == 200
    assert "no-store" not in static.headers.get("cache-control", "")


async def test_hsts_and_secure_cookies_behind_tls(
    app: object, sessions: Sessions, seeded_school: School
) -> None:
    from fastapi import FastAPI

    assert isinstance(app, FastAPI)
    viewer = await an_account_now(sessions, seeded_school, UserRole.VIEWER, two_factor=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://school.example") as client:
        page = await client.get("/login")
        assert page.headers["strict-transport-security"].startswith("max-age=")
        signed = await submit_login(client, viewer.email)
    cookie = next(
        v
        for k, v in signed.headers.multi_items()
        if k == "set-cookie" and v.startswith(SESSION_COOKIE)
    )
    assert {"Secure", "HttpOnly", "SameSite=lax"} <= {part.strip() for part in cookie.split(";")}


# -- the JSON API -------------------------------------------------------------------------------


async def test_api_sign_in_with_a_code(
    client: httpx.AsyncClient, sessions: Sessions, seeded_school: School
) -> None:
    user = await an_account_now(sessions, seeded_school, UserRole.SLT)
    without = await client.post("/api/auth/login", json={"email": user.email, "password": PASSWORD})
    assert without.status_code == 401
    signed = await client.post(
        "/api/auth/login",
        json={"email": user.email, "password": PASSWORD, "code": code_for(user)},
    )
    assert signed.status_code == 200
    me = signed.json()
    assert me["role"] == "slt"
    assert "review_flags" in me["permissions"]
    assert (await client.get("/api/auth/me")).json()["csrf_token"] == me["csrf_token"]


async def test_api_sign_in_needs_two_factor_set_up_in_the_browser(
    client: httpx.AsyncClient, sessions: Sessions, seeded_school: School
) -> None:
    user = await an_account_now(sessions, seeded_school, UserRole.ADMIN, two_factor=False)
    refused = await client.post("/api/auth/login", json={"email": user.email, "password": PASSWORD})
    assert refused.status_code == 403
    assert "two-factor" in refused.json()["detail"]


async def test_api_without_a_session_is_401_not_a_redirect(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/auth/me")
    assert response.status_code == 401
    assert response.json() == {"detail": "Please sign in."}
