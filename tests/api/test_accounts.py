"""Administrators manage the school's accounts: add, change, help back in, never lock out."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from bot.store.db import transaction
from bot.store.models import AuditEvent, User, UserRole
from tests.api.conftest import NewClient, SignIn
from tests.api.support import Sessions
from tests.factories import another_school

pytestmark = pytest.mark.anyio


async def test_an_admin_adds_an_account_and_sees_its_password_once(
    sign_in: SignIn, new_client: NewClient, sessions: Sessions
) -> None:
    admin = await sign_in(UserRole.ADMIN)
    made = await admin.form(
        "/accounts",
        {"name": "Mrs Sarah Bennett", "email": "S.Bennett@example.sch.uk", "role": "dsl"},
    )
    assert made.status_code == 200
    password = re.search(r"data-password>([^<]+)<", made.text)
    assert password
    listing = await admin.get("/accounts")
    assert "Mrs Sarah Bennett" in listing.text
    assert password.group(1) not in listing.text, "shown once, never again"

    signed = await new_client().post(
        "/api/auth/login", json={"email": "s.bennett@example.sch.uk", "password": password.group(1)}
    )
    assert signed.status_code == 403, "a DSL must set up two-factor before anything else"
    async with sessions() as session:
        created = await session.scalar(select(User).where(User.email == "s.bennett@example.sch.uk"))
        assert created is not None
        assert created.role == UserRole.DSL
        audit = await session.scalar(
            select(AuditEvent).where(
                AuditEvent.action == "account.created", AuditEvent.subject == f"user:{created.id}"
            )
        )
        assert audit is not None
        assert audit.actor == f"user:{admin.user.id}"


async def test_the_same_address_twice_is_a_conflict(sign_in: SignIn) -> None:
    admin = await sign_in(UserRole.ADMIN)
    body = {"email": "office@example.sch.uk", "name": "Office", "role": "viewer"}
    assert (await admin.post("/api/accounts", json=body)).status_code == 201
    again = await admin.post("/api/accounts", json=body)
    assert again.status_code == 409
    assert "already an account" in again.json()["detail"]


async def test_changing_a_role_and_disabling_signs_them_out(
    sign_in: SignIn, sessions: Sessions
) -> None:
    admin = await sign_in(UserRole.ADMIN)
    slt = await sign_in(UserRole.SLT)
    assert (await slt.get("/api/auth/me")).status_code == 200
    changed = await admin.put(
        f"/api/accounts/{slt.user.id}",
        json={"name": "Mr Reilly", "role": "viewer", "active": False},
    )
    assert changed.status_code == 200
    assert changed.json()["role"] == "viewer"
    assert (await slt.get("/api/auth/me")).status_code == 401


async def test_the_last_administrator_cannot_be_removed(sign_in: SignIn) -> None:
    admin = await sign_in(UserRole.ADMIN)
    demoted = await admin.put(
        f"/api/accounts/{admin.user.id}", json={"name": "Head", "role": "slt", "active": True}
    )
    assert demoted.status_code == 409
    assert "at least one active administrator" in demoted.json()["detail"]
    second = await sign_in(UserRole.ADMIN)
    allowed = await admin.put(
        f"/api/accounts/{second.user.id}", json={"name": "Deputy", "role": "slt", "active": True}
    )
    assert allowed.status_code == 200


async def test_a_lost_phone_is_reset_and_a_new_password_ends_sessions(
    sign_in: SignIn, sessions: Sessions
) -> None:
    admin = await sign_in(UserRole.ADMIN)
    dsl = await sign_in(UserRole.DSL)
    reset = await admin.post(f"/api/accounts/{dsl.user.id}/two-factor/reset")
    assert reset.status_code == 204
    assert (await dsl.get("/api/auth/me")).status_code == 401
    async with sessions() as session:
        stored = await session.get(User, dsl.user.id)
        assert stored is not None
        assert stored.totp_secret is None
        assert stored.totp_confirmed_at is None
    fresh = await admin.post(f"/api/accounts/{dsl.user.id}/password")
    assert fresh.status_code == 200
    assert len(fresh.json()["temporary_password"]) >= 20


async def test_another_schools_accounts_are_out_of_reach(
    sign_in: SignIn, sessions: Sessions
) -> None:
    async with transaction(sessions) as session:
        other = await another_school(session)
    elsewhere = await sign_in(UserRole.SLT, at=other)
    admin = await sign_in(UserRole.ADMIN)
    assert (await admin.get(f"/api/accounts/{elsewhere.user.id}")).status_code == 404
    assert (await admin.get(f"/accounts/{elsewhere.user.id}")).status_code == 404
    names = {account["email"] for account in (await admin.get("/api/accounts")).json()}
    assert elsewhere.user.email not in names
    refused = await admin.put(
        f"/api/accounts/{elsewhere.user.id}", json={"name": "X", "role": "admin", "active": True}
    )
    assert refused.status_code == 404


async def test_only_administrators_manage_accounts(sign_in: SignIn) -> None:
    for role in (UserRole.SLT, UserRole.DSL, UserRole.VIEWER):
        browser = await sign_in(role)
        assert (await browser.get("/accounts")).status_code == 403
        assert (await browser.get("/api/accounts")).status_code == 403
