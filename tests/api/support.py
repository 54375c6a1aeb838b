"""Accounts, sign-in and requests for the admin backend's tests."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pyotp
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.admin.deps import CSRF_HEADER, SESSION_COOKIE
from bot.services import accounts, user_sessions
from bot.services.user_sessions import SessionPolicy
from bot.store.db import transaction
from bot.store.models import AuditEvent, School, SessionStage, User, UserRole, utcnow

PASSWORD = "correct horse battery staple"
_numbers = itertools.count(1)
Sessions = async_sessionmaker[AsyncSession]


async def an_account(
    session: AsyncSession,
    school: School,
    *,
    role: UserRole = UserRole.SLT,
    email: str | None = None,
    name: str | None = None,
    password: str = PASSWORD,
    two_factor: bool = True,
) -> User:
    """A staff account; with ``two_factor`` its authenticator app is already set up."""
    user = await accounts.create_user(
        session, school, email=email or f"{role}{next(_numbers)}.school{school.id}@example.sch.uk",
        name=name or f"Test {role.upper()}", role=role, password=password, actor="test",
        now=utcnow(),
    )  # fmt: skip
    if two_factor:
        user.totp_secret = pyotp.random_base32()
        user.totp_confirmed_at = utcnow()
    await session.flush()
    return user


def code_for(user: User, at: datetime | None = None, steps_ahead: int = 0) -> str:
    """The code the user's authenticator app shows (``steps_ahead`` 30-second steps later)."""
    assert user.totp_secret is not None
    totp = pyotp.TOTP(user.totp_secret)
    return totp.generate_otp(totp.timecode(at or datetime.now(UTC)) + steps_ahead)


@dataclass
class Browser:
    """An HTTP client signed in as one person: its cookie, and the CSRF token for changes."""

    client: httpx.AsyncClient
    user: User
    csrf: str

    async def get(self, url: str, **kwargs: object) -> httpx.Response:
        return await self.client.get(url, **kwargs)  # type: ignore[arg-type]

    async def post(self, url: str, **kwargs: object) -> httpx.Response:
        return await self._send("POST", url, **kwargs)

    async def put(self, url: str, **kwargs: object) -> httpx.Response:
        return await self._send("PUT", url, **kwargs)

    async def delete(self, url: str, **kwargs: object) -> httpx.Response:
        return await self._send("DELETE", url, **kwargs)

    async def form(self, url: str, data: dict[str, object] | None = None) -> httpx.Response:
        """Submit a page's form, CSRF token included, as a browser would."""
        fields = {"csrf_token": self.csrf, **(data or {})}
        return await self.client.post(url, data=fields)

    async def _send(self, method: str, url: str, **kwargs: object) -> httpx.Response:
        headers = {CSRF_HEADER: self.csrf, **kwargs.pop("headers", {})}  # type: ignore[dict-item]
        return await self.client.request(method, url, headers=headers, **kwargs)  # type: ignore[arg-type]


async def signed_in(
    client: httpx.AsyncClient,
    sessions: Sessions,
    user: User,
    *,
    policy: SessionPolicy | None = None,
    now: datetime | None = None,
) -> Browser:
    """``client`` signed in as ``user`` (a full session, as after password and code)."""
    async with transaction(sessions) as session:
        attached = await session.get(User, user.id)
        assert attached is not None
        token, created = await user_sessions.start(
            session, attached, SessionStage.FULL, policy or SessionPolicy(), now or utcnow()
        )
    client.cookies.set(SESSION_COOKIE, token)
    return Browser(client, user, created.csrf_token)


async def audit_events(sessions: Sessions, action: str) -> list[AuditEvent]:
    """Every audit event with this action, oldest first."""
    async with sessions() as session:
        query = select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
        return list(await session.scalars(query))


def later(minutes: float) -> datetime:
    return utcnow() + timedelta(minutes=minutes)
