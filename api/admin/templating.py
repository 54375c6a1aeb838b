"""Rendering the admin pages: Jinja2 templates, the navigation, one-time notices.

A page that changes something redirects afterwards (POST, redirect, GET) and says what it did
through a one-time notice cookie, so a reload never repeats the change.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from api.admin.deps import CSRF_FIELD, SignedIn
from bot.services.access import ROLE_LABELS, Permission
from bot.store.models import UserRole

HERE = Path(__file__).resolve().parent
NOTICE_COOKIE = "sg_notice"
DEFAULT_ZONE = ZoneInfo("Europe/London")

templates = Jinja2Templates(directory=HERE / "templates")


@dataclass(frozen=True)
class NavItem:
    label: str
    path: str
    permission: Permission


NAVIGATION = (
    NavItem("Dashboard", "/", Permission.VIEW_DASHBOARD),
    NavItem("Flags", "/flags", Permission.REVIEW_FLAGS),
    NavItem("Chats", "/chats", Permission.VIEW_CHATS),
    NavItem("People", "/people", Permission.VIEW_PEOPLE),
    NavItem("Rules", "/rules", Permission.VIEW_RULES),
    NavItem("Settings", "/settings", Permission.MANAGE_SETTINGS),
    NavItem("Audit log", "/audit", Permission.VIEW_AUDIT),
    NavItem("Reports", "/reports", Permission.VIEW_REPORTS),
    NavItem("Accounts", "/accounts", Permission.MANAGE_ACCOUNTS),
)


def home_path(user: SignedIn) -> str:
    """Where a person lands after signing in: the first page their role may see."""
    return next((item.path for item in NAVIGATION if user.can(item.permission)), "/account")


def local_time(
    moment: datetime | None, zone: ZoneInfo = DEFAULT_ZONE, fmt: str = "%-d %b %Y %H:%M"
) -> str:
    """A stored UTC time as the school reads it."""
    return moment.astimezone(zone).strftime(fmt) if moment else ""


def role_label(role: str) -> str:
    return ROLE_LABELS.get(UserRole(role), role) if role in set(UserRole) else role


templates.env.filters["local_time"] = local_time
templates.env.filters["role_label"] = role_label
templates.env.globals["CSRF_FIELD"] = CSRF_FIELD


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    user: SignedIn | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    user = user or getattr(request.state, "signed_in", None)
    notice = request.cookies.get(NOTICE_COOKIE)
    page = {
        "user": user,
        "nav": [item for item in NAVIGATION if user and user.can(item.permission)],
        "csrf_token": user.csrf_token if user else "",
        "notice": unquote(notice)[:300] if notice else None,
        "path": request.url.path,
        "Permission": Permission,
        **(context or {}),
    }
    response = templates.TemplateResponse(request, template, page, status_code=status_code)
    if notice:
        response.delete_cookie(NOTICE_COOKIE, path="/")
    return response


def redirect(request: Request, path: str, notice: str | None = None) -> RedirectResponse:
    """See Other (a GET of ``path``), carrying a one-time notice to show there."""
    response = RedirectResponse(path, status_code=303)
    if notice:
        response.set_cookie(
            NOTICE_COOKIE,
            quote(notice[:300]),
            max_age=60,
            path="/",
            httponly=True,
            samesite="lax",
            secure=request.url.scheme == "https",
        )
    return response


def safe_next(path: str | None, default: str = "/") -> str:
    """Only a path on this site: never an open redirect to somewhere else."""
    if not path or not path.startswith("/") or path.startswith("//") or "\\" in path:
        return default
    return path
