"""Signing in and out: password, then a code from an authenticator app (TOTP), or setting one up.

Each step that raises what a session may do starts a new session with a new token (so a token
seen before signing in is worthless after). The sign-in form has its own CSRF token, in a cookie
and a hidden field, because there is no session yet to hold one.
"""

from __future__ import annotations

import secrets
from typing import Annotated

import segno
from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field

from api.admin.deps import (
    SESSION_COOKIE,
    CurrentUser,
    DbSession,
    SignedIn,
    client_ip,
    same_token,
    session_cookie,
    session_policy,
    settings_of,
    throttle_of,
)
from api.admin.templating import home_path, redirect, render, safe_next
from bot.errors import BadInputError, NotAllowedError, SignInRequiredError, TooManyAttemptsError
from bot.services import accounts, user_sessions
from bot.services.access import TWO_FACTOR_REQUIRED
from bot.store.models import SessionStage, User, utcnow
from bot.store.repositories.schools import SchoolRepository

LOGIN_COOKIE = "sg_login"

pages = APIRouter(include_in_schema=False)
api = APIRouter(prefix="/api/auth", tags=["auth"])


def _set_session(request: Request, response: Response, token: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )


def _login_page(
    request: Request, next_path: str, error: str | None = None, email: str = "", status: int = 200
) -> HTMLResponse:
    token = secrets.token_urlsafe(24)
    response = render(
        request,
        "auth/login.html",
        {"login_token": token, "next": next_path, "error": error, "email": email},
        status_code=status,
    )
    response.set_cookie(
        LOGIN_COOKIE, token, max_age=3600, httponly=True, samesite="strict",
        secure=request.url.scheme == "https", path="/login",
    )  # fmt: skip
    return response


def _next_stage(user: User) -> SessionStage:
    if user.totp_confirmed_at is not None:
        return SessionStage.PASSWORD  # a code comes next
    if user.role in TWO_FACTOR_REQUIRED:
        return SessionStage.ENROL
    return SessionStage.FULL


@pages.get("/login")
async def login_form(request: Request, next: str = "/") -> HTMLResponse:
    return _login_page(request, safe_next(next))


@pages.post("/login")
async def login(
    request: Request,
    db: DbSession,
    email: Annotated[str, Form(max_length=254)],
    password: Annotated[str, Form(max_length=1024)],
    csrf_token: Annotated[str, Form(max_length=100)] = "",
    next: Annotated[str, Form(max_length=500)] = "/",
) -> Response:
    next_path = safe_next(next)
    if not same_token(csrf_token, request.cookies.get(LOGIN_COOKIE, "")):
        return _login_page(request, next_path, "The form expired. Please try again.", email, 400)
    try:
        user = await accounts.check_password(
            db, email, password, ip=client_ip(request), throttle=throttle_of(request),
            now=utcnow(),
        )  # fmt: skip
    except (SignInRequiredError, TooManyAttemptsError) as error:
        # The failed attempt must be kept: it is what throttling counts.
        await db.commit()
        return _login_page(request, next_path, str(error), email, error.http_status)
    stage = _next_stage(user)
    token, _ = await user_sessions.start(
        db, user, stage, session_policy(settings_of(request)), utcnow(),
        ip=client_ip(request), user_agent=request.headers.get("user-agent", ""),
    )  # fmt: skip
    target = {
        SessionStage.PASSWORD: f"/login/code?next={next_path}",
        SessionStage.ENROL: f"/login/setup?next={next_path}",
    }.get(stage, next_path)
    response = redirect(request, target)
    _set_session(request, response, token)
    response.delete_cookie(LOGIN_COOKIE, path="/login")
    return response


@pages.get("/login/code")
async def code_form(request: Request, db: DbSession, next: str = "/") -> Response:
    active = await session_cookie(request, db, stage=SessionStage.PASSWORD)
    if active is None:
        return redirect(request, "/login")
    return render(
        request, "auth/code.html", {"next": safe_next(next), "csrf": active.session.csrf_token}
    )


async def _partial(
    request: Request, db: DbSession, stage: SessionStage, csrf: str
) -> user_sessions.ActiveSession:
    active = await session_cookie(request, db, stage=stage)
    if active is None:
        raise SignInRequiredError("Your sign-in expired. Please start again.")
    if not same_token(csrf, active.session.csrf_token):
        raise NotAllowedError("This form has expired. Reload the page and try again.")
    return active


@pages.post("/login/code")
async def code(
    request: Request,
    db: DbSession,
    code: Annotated[str, Form(max_length=20)],
    csrf_token: Annotated[str, Form(max_length=100)] = "",
    next: Annotated[str, Form(max_length=500)] = "/",
) -> Response:
    active = await _partial(request, db, SessionStage.PASSWORD, csrf_token)
    try:
        await accounts.check_code(
            db, active.user, code, ip=client_ip(request), throttle=throttle_of(request),
            now=utcnow(),
        )  # fmt: skip
    except (SignInRequiredError, TooManyAttemptsError) as error:
        await db.commit()
        return render(
            request, "auth/code.html",
            {"next": safe_next(next), "error": str(error), "csrf": active.session.csrf_token},
            status_code=error.http_status,
        )  # fmt: skip
    return await _signed_in(request, db, active, next)


async def _signed_in(
    request: Request, db: DbSession, active: user_sessions.ActiveSession, next: str
) -> Response:
    token, new = await user_sessions.start(
        db, active.user, SessionStage.FULL, session_policy(settings_of(request)), utcnow(),
        ip=client_ip(request), user_agent=request.headers.get("user-agent", ""),
        replacing=active.session,
    )  # fmt: skip
    signed_in = SignedIn.of(active.user, new)
    response = redirect(
        request, safe_next(next, home_path(signed_in)) if next != "/" else home_path(signed_in)
    )
    _set_session(request, response, token)
    return response


async def _new_secret_if_needed(db: DbSession, user: User) -> str:
    """The secret being set up, and the school's name to label it with in the app.

    A new secret until one is confirmed; a reload keeps it, so a code already scanned works."""
    if user.totp_secret is None or user.totp_confirmed_at is not None:
        user.totp_secret, user.totp_confirmed_at = accounts.new_totp_secret(), None
    school = await SchoolRepository(db).get(user.school_id)
    return school.name if school else ""


def _setup_page(
    request: Request, user: User, school_name: str, csrf: str, action: str, next: str,
    error: str | None = None, status: int = 200,
) -> HTMLResponse:  # fmt: skip
    assert user.totp_secret is not None
    uri = accounts.provisioning_uri(user, user.totp_secret, school_name)
    qr = segno.make(uri, error="m").svg_data_uri(scale=5, border=2)
    return render(
        request,
        "auth/setup.html",
        {
            "qr": qr, "secret": user.totp_secret, "csrf": csrf, "action": action,
            "next": next, "error": error,
        },
        status_code=status,
    )  # fmt: skip


@pages.get("/login/setup")
async def setup_form(request: Request, db: DbSession, next: str = "/") -> Response:
    active = await session_cookie(request, db, stage=SessionStage.ENROL)
    if active is None:
        return redirect(request, "/login")
    school_name = await _new_secret_if_needed(db, active.user)
    return _setup_page(
        request, active.user, school_name, active.session.csrf_token, "/login/setup",
        safe_next(next),
    )  # fmt: skip


@pages.post("/login/setup")
async def setup(
    request: Request,
    db: DbSession,
    code: Annotated[str, Form(max_length=20)],
    csrf_token: Annotated[str, Form(max_length=100)] = "",
    next: Annotated[str, Form(max_length=500)] = "/",
) -> Response:
    active = await _partial(request, db, SessionStage.ENROL, csrf_token)
    user = active.user
    school_name = await _new_secret_if_needed(db, user)
    assert user.totp_secret is not None
    try:
        await accounts.enrol_two_factor(
            db, user, user.totp_secret, code, ip=client_ip(request),
            throttle=throttle_of(request), now=utcnow(),
        )  # fmt: skip
    except (BadInputError, TooManyAttemptsError) as error:
        await db.commit()
        return _setup_page(
            request, user, school_name, active.session.csrf_token, "/login/setup",
            safe_next(next), str(error), error.http_status,
        )  # fmt: skip
    return await _signed_in(request, db, active, next)


@pages.post("/logout")
async def logout(request: Request, db: DbSession, user: CurrentUser) -> Response:
    await user_sessions.end(db, user.session, utcnow())
    response = redirect(request, "/login", "You have signed out.")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


# -- your own account -------------------------------------------------------------------------


@pages.get("/account")
async def account(request: Request, db: DbSession, user: CurrentUser) -> HTMLResponse:
    from bot.store.repositories.accounts import UserSessionRepository

    sessions = await UserSessionRepository(db).active_for(user.user.id, utcnow())
    return render(request, "auth/account.html", {"sessions": sessions}, user=user)


@pages.post("/account/password")
async def change_password(
    request: Request,
    db: DbSession,
    user: CurrentUser,
    current: Annotated[str, Form(max_length=1024)],
    new: Annotated[str, Form(max_length=1024)],
    confirm: Annotated[str, Form(max_length=1024)],
) -> Response:
    if new != confirm:
        raise BadInputError("The new password and its confirmation differ.")
    await accounts.change_password(db, user.user, current, new, actor=user.actor, now=utcnow())
    # Anyone else signed in as this person is signed out.
    await user_sessions.end_all(db, user.user, utcnow(), keep=user.session)
    return redirect(request, "/account", "Your password is changed; other sessions are signed out.")


@pages.post("/account/sessions/end-others")
async def end_other_sessions(request: Request, db: DbSession, user: CurrentUser) -> Response:
    await user_sessions.end_all(db, user.user, utcnow(), keep=user.session)
    return redirect(request, "/account", "Every other session is signed out.")


# -- the JSON API -----------------------------------------------------------------------------


class LoginIn(BaseModel):
    email: str = Field(max_length=254)
    password: str = Field(max_length=1024)
    code: str | None = Field(default=None, max_length=20)
    """The authenticator app's code: required for admin, SLT and DSL accounts."""


class Me(BaseModel):
    id: int
    name: str
    email: str
    role: str
    school_id: int
    permissions: list[str]
    csrf_token: str
    """Send it back in the X-CSRF-Token header with every request that changes something."""


def _me(user: SignedIn) -> Me:
    return Me(
        id=user.user_id, name=user.name, email=user.user.email, role=str(user.role),
        school_id=user.school_id, permissions=sorted(user.permissions),
        csrf_token=user.csrf_token,
    )  # fmt: skip


@api.post(
    "/login",
    responses={
        401: {"description": "Wrong e-mail, password or code"},
        429: {"description": "Throttled"},
    },
)
async def api_login(body: LoginIn, request: Request, db: DbSession, response: Response) -> Me:
    """Sign in with e-mail, password and (where the account has two-factor) a code; the session
    cookie is set, and the answer holds the CSRF token to send with every change."""
    ip, throttle, now = client_ip(request), throttle_of(request), utcnow()
    try:
        user = await accounts.check_password(
            db, body.email, body.password, ip=ip, throttle=throttle, now=now
        )
        if _next_stage(user) == SessionStage.ENROL:
            raise NotAllowedError("Set up two-factor sign-in in the browser first (/login).")
        if _next_stage(user) == SessionStage.PASSWORD:
            await accounts.check_code(db, user, body.code or "", ip=ip, throttle=throttle, now=now)
    except (SignInRequiredError, TooManyAttemptsError):
        await db.commit()
        raise
    token, created = await user_sessions.start(
        db, user, SessionStage.FULL, session_policy(settings_of(request)), now, ip=ip,
        user_agent=request.headers.get("user-agent", ""),
    )  # fmt: skip
    _set_session(request, response, token)
    return _me(SignedIn.of(user, created))


@api.post("/logout", status_code=204)
async def api_logout(db: DbSession, user: CurrentUser, response: Response) -> None:
    """End this session."""
    await user_sessions.end(db, user.session, utcnow())
    response.delete_cookie(SESSION_COOKIE, path="/")


@api.get("/me")
async def api_me(user: CurrentUser) -> Me:
    """Who is signed in, what their role allows, and the CSRF token for changes."""
    return _me(user)
