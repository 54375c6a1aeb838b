"""Server-side sessions for the admin pages.

The browser holds an opaque random token; the database holds only its SHA-256, so a leaked
database does not let anyone sign in. A session ends when it is revoked (signing out, a
password change, an administrator), after ``idle`` without use, or ``absolute`` after it began
however busy it is. Every step up (password, then code) starts a new session with a new token.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from bot.store.models import SessionStage, User, UserSession
from bot.store.repositories.accounts import UserRepository, UserSessionRepository
from bot.store.repositories.audit import AuditRepository

# Writing last_seen_at on every request is wasted work; this often is enough for the idle limit.
TOUCH_EVERY = timedelta(seconds=60)
# A session half-way through signing in (code still to come) lasts only this long.
PARTIAL_LIFETIME = timedelta(minutes=10)


@dataclass(frozen=True)
class SessionPolicy:
    idle: timedelta = timedelta(minutes=30)
    absolute: timedelta = timedelta(hours=10)


@dataclass(frozen=True)
class ActiveSession:
    session: UserSession
    user: User


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def start(
    db: AsyncSession,
    user: User,
    stage: SessionStage,
    policy: SessionPolicy,
    now: datetime,
    *,
    ip: str = "",
    user_agent: str = "",
    replacing: UserSession | None = None,
) -> tuple[str, UserSession]:
    """A new session (and its token, to put in the cookie); ``replacing`` is revoked."""
    if replacing is not None:
        replacing.revoked_at = now
    token = secrets.token_urlsafe(32)
    lifetime = policy.absolute if stage == SessionStage.FULL else PARTIAL_LIFETIME
    created = await UserSessionRepository(db).add(
        UserSession(
            user_id=user.id,
            token_hash=token_hash(token),
            csrf_token=secrets.token_urlsafe(32),
            stage=stage,
            created_at=now,
            last_seen_at=now,
            expires_at=now + lifetime,
            ip=ip[:64],
            user_agent=user_agent[:255],
        )
    )
    if stage == SessionStage.FULL:
        user.last_login_at = now
        await AuditRepository(db).record(
            f"user:{user.id}", "account.signed_in", f"user:{user.id}", user.school_id, ip=ip[:64]
        )
    return token, created


async def resume(
    db: AsyncSession, token: str | None, policy: SessionPolicy, now: datetime
) -> ActiveSession | None:
    """The live session this token belongs to, if any; its idle clock restarts."""
    if not token or len(token) > 100:
        return None
    found = await UserSessionRepository(db).by_token_hash(token_hash(token))
    if found is None or found.revoked_at is not None or found.expires_at <= now:
        return None
    if now - found.last_seen_at > policy.idle:
        found.revoked_at = now
        return None
    user = await UserRepository(db).get(found.user_id)
    if user is None or not user.active:
        return None
    if now - found.last_seen_at >= TOUCH_EVERY:
        found.last_seen_at = now
    return ActiveSession(found, user)


async def end(db: AsyncSession, user_session: UserSession, now: datetime) -> None:
    user_session.revoked_at = now
    await AuditRepository(db).record(
        f"user:{user_session.user_id}", "account.signed_out", f"user:{user_session.user_id}"
    )


async def end_all(
    db: AsyncSession, user: User, now: datetime, *, keep: UserSession | None = None
) -> None:
    """Sign the user out everywhere (but ``keep``): after a password change, or by an admin."""
    await UserSessionRepository(db).revoke_all(user.id, now, except_id=keep.id if keep else None)
