"""What every admin route depends on: a database session per request, the signed-in person,
their permissions, and CSRF protection for anything that changes state.

Routes declare what they need::

    @router.get("/flags")
    async def flags(db: DbSession, user: Annotated[SignedIn, requires(Permission.REVIEW_FLAGS)]):

The session commits when the route returns and rolls back when it raises (the request owns the
transaction, services never commit). Every query a route makes is scoped to ``user.school_id``.
"""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any

from fastapi import BackgroundTasks, Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from bot.errors import NotAllowedError, NotFoundError, SignInRequiredError
from bot.runtime import Runtime
from bot.services import user_sessions
from bot.services.access import Permission, permissions_of
from bot.services.accounts import Throttle
from bot.services.user_sessions import SessionPolicy
from bot.settings import Settings
from bot.store.db import transaction
from bot.store.models import School, SessionStage, User, UserRole, UserSession, utcnow
from bot.store.repositories.schools import SchoolRepository

SESSION_COOKIE = "sg_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def wake_outbox_after_commit(request: Request, background: BackgroundTasks) -> None:
    """Have the outbox send what the route queued, once the request's transaction commits: a
    wake before then finds nothing to send (the dispatcher also looks every second)."""
    runtime = runtime_of(request)

    async def wake() -> None:  # on the event loop: a plain function would run in a thread
        runtime.wake_outbox()

    background.add_task(wake)


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def session_policy(settings: Settings) -> SessionPolicy:
    return SessionPolicy(
        idle=timedelta(minutes=settings.admin_idle_minutes),
        absolute=timedelta(hours=settings.admin_session_hours),
    )


def throttle_of(request: Request) -> Throttle:
    throttle: Throttle = request.app.state.throttle
    return throttle


def client_ip(request: Request) -> str:
    return request.client.host if request.client else ""


async def database(request: Request) -> AsyncIterator[AsyncSession]:
    async with transaction(runtime_of(request).sessions) as session:
        yield session


# scope="function": committed before the response goes, so a client never sees a change
# acknowledged that was then lost.
DbSession = Annotated[AsyncSession, Depends(database, scope="function")]


@dataclass(frozen=True)
class SignedIn:
    user: User
    session: UserSession
    permissions: frozenset[Permission]
    # Copies that stay readable after the request's transaction rolls back (an error page
    # renders the navigation from them; the ORM objects are expired by then).
    user_id: int
    school_id: int
    name: str
    role: UserRole
    csrf_token: str

    @classmethod
    def of(cls, user: User, session: UserSession) -> SignedIn:
        return cls(
            user, session, permissions_of(user.role), user.id, user.school_id, user.name,
            user.role, session.csrf_token,
        )  # fmt: skip

    @property
    def actor(self) -> str:
        """How the audit log names this person."""
        return f"user:{self.user_id}"

    def can(self, permission: Permission) -> bool:
        return permission in self.permissions


async def csrf_token_given(request: Request) -> str | None:
    given = request.headers.get(CSRF_HEADER)
    if given is None and request.headers.get("content-type", "").startswith(FORM_TYPES):
        value = (await request.form()).get(CSRF_FIELD)
        given = value if isinstance(value, str) else None
    return given


def same_token(given: str | None, expected: str) -> bool:
    if not given or not expected:  # two missing tokens are not a match
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


async def session_cookie(
    request: Request, db: AsyncSession, *, stage: SessionStage
) -> user_sessions.ActiveSession | None:
    """The session in the cookie if it is live and at ``stage``."""
    policy = session_policy(settings_of(request))
    token = request.cookies.get(SESSION_COOKIE)
    active = await user_sessions.resume(db, token, policy, utcnow())
    if active is None or active.session.stage != stage:
        return None
    return active


async def signed_in(request: Request, db: DbSession) -> SignedIn:
    active = await session_cookie(request, db, stage=SessionStage.FULL)
    if active is None:
        raise SignInRequiredError("Please sign in.")
    if request.method not in SAFE_METHODS and not same_token(
        await csrf_token_given(request), active.session.csrf_token
    ):
        raise NotAllowedError(
            "This form has expired or did not come from Schoolgate. Reload the page and try again."
        )
    found = SignedIn.of(active.user, active.session)
    request.state.signed_in = found  # for error pages and the navigation
    return found


CurrentUser = Annotated[SignedIn, Depends(signed_in)]


async def school_of(db: AsyncSession, user: SignedIn) -> School:
    """The signed-in person's school."""
    school = await SchoolRepository(db).get(user.school_id)
    if school is None:
        raise NotFoundError("Your school is not in the database.")
    return school


def requires(*needed: Permission) -> Any:
    """A dependency: the signed-in person, if their role has every permission in ``needed``."""

    async def check(user: CurrentUser) -> SignedIn:
        if not all(user.can(permission) for permission in needed):
            raise NotAllowedError("Your role does not allow this.")
        return user

    check.permissions = needed  # type: ignore[attr-defined]
    return Depends(check)
