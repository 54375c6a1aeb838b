"""Every route, every role: nobody uses a route without the right role, and nobody reaches
another school's records.

The table below is written out by hand, from the roles' intent (see README), not derived from
the code: a route added without an entry here fails the first test, and a route whose code
asks for a different permission than intended fails the second.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute

from api.admin.deps import CSRF_HEADER, SESSION_COOKIE
from api.admin.routes import ROUTERS
from bot.services import consent, user_sessions
from bot.services.access import Permission
from bot.services.moderation import Retention, check_message
from bot.services.schools import EngineCache
from bot.services.user_sessions import SessionPolicy
from bot.store.db import transaction
from bot.store.models import School, SessionStage, User, UserRole, utcnow
from bot.store.repositories.schools import SchoolRepository
from tests.api.support import Sessions, an_account
from tests.conftest import message
from tests.factories import a_chat, a_member, another_school
from tests.webapp import NewClient

pytestmark = pytest.mark.anyio

P = Permission  # short, for the table
RETENTION = Retention(metadata=timedelta(days=30), flags=timedelta(days=365))
PUBLIC = "public"
SIGNED_IN = "signed in"

# (method, path) -> who may use it.
ACCESS: dict[tuple[str, str], str] = {
    # signing in and out, and one's own account
    ("GET", "/login"): PUBLIC,
    ("POST", "/login"): PUBLIC,
    ("GET", "/login/code"): PUBLIC,
    ("POST", "/login/code"): PUBLIC,
    ("GET", "/login/setup"): PUBLIC,
    ("POST", "/login/setup"): PUBLIC,
    ("POST", "/api/auth/login"): PUBLIC,
    ("POST", "/logout"): SIGNED_IN,
    ("GET", "/account"): SIGNED_IN,
    ("POST", "/account/password"): SIGNED_IN,
    ("POST", "/account/sessions/end-others"): SIGNED_IN,
    ("POST", "/api/auth/logout"): SIGNED_IN,
    ("GET", "/api/auth/me"): SIGNED_IN,
    # the dashboard (the page sends people without it to their own first page)
    ("GET", "/"): SIGNED_IN,
    ("GET", "/api/dashboard"): P.VIEW_DASHBOARD,
    # flags: SLT and the DSL only
    ("GET", "/flags"): P.REVIEW_FLAGS,
    ("GET", "/flags/{flag_id}"): P.REVIEW_FLAGS,
    ("POST", "/flags/{flag_id}/decision"): P.REVIEW_FLAGS,
    ("POST", "/flags/{flag_id}/actions"): P.REVIEW_FLAGS,
    ("GET", "/api/flags"): P.REVIEW_FLAGS,
    ("GET", "/api/flags/{flag_id}"): P.REVIEW_FLAGS,
    ("POST", "/api/flags/{flag_id}/decision"): P.REVIEW_FLAGS,
    ("POST", "/api/flags/{flag_id}/actions"): P.REVIEW_FLAGS,
    # chats
    ("GET", "/chats"): P.VIEW_CHATS,
    ("GET", "/chats/{chat_id}"): P.VIEW_CHATS,
    ("GET", "/api/chats"): P.VIEW_CHATS,
    ("GET", "/api/chats/codes"): P.VIEW_CHATS,
    ("GET", "/api/chats/{chat_id}"): P.VIEW_CHATS,
    ("POST", "/chats/codes"): P.MANAGE_CHATS,
    ("POST", "/api/chats/codes"): P.MANAGE_CHATS,
    ("POST", "/chats/{chat_id}/observe-only"): P.MANAGE_CHATS,
    ("PUT", "/api/chats/{chat_id}/observe-only"): P.MANAGE_CHATS,
    ("POST", "/chats/whatsapp-groups"): P.MANAGE_CHATS,
    ("POST", "/api/chats/whatsapp-groups"): P.MANAGE_CHATS,
    ("POST", "/chats/{chat_id}/join-code"): P.MANAGE_CHATS,
    ("POST", "/api/chats/{chat_id}/join-code"): P.MANAGE_CHATS,
    ("POST", "/chats/{chat_id}/invitations"): P.MANAGE_CHATS,
    ("POST", "/api/chats/{chat_id}/invitations"): P.MANAGE_CHATS,
    ("POST", "/chats/{chat_id}/closure"): P.CLOSE_CHATS,
    ("POST", "/chats/{chat_id}/closure/cancel"): P.CLOSE_CHATS,
    ("POST", "/api/chats/{chat_id}/closure"): P.CLOSE_CHATS,
    ("DELETE", "/api/chats/{chat_id}/closure"): P.CLOSE_CHATS,
    # people
    ("GET", "/people"): P.VIEW_PEOPLE,
    ("GET", "/people/staff/{staff_id}"): P.VIEW_PEOPLE,
    ("GET", "/people/parents/{platform}/{user_id}"): P.VIEW_PEOPLE,
    ("GET", "/api/people/staff"): P.VIEW_PEOPLE,
    ("GET", "/api/people/staff/{staff_id}"): P.VIEW_PEOPLE,
    ("GET", "/api/people/parents"): P.VIEW_PEOPLE,
    ("GET", "/api/people/parents/{platform}/{user_id}"): P.VIEW_PEOPLE,
    ("GET", "/people/staff/new"): P.MANAGE_STAFF,
    ("POST", "/people/staff/new"): P.MANAGE_STAFF,
    ("POST", "/people/staff/{staff_id}"): P.MANAGE_STAFF,
    ("POST", "/people/staff/{staff_id}/delete"): P.MANAGE_STAFF,
    ("POST", "/people/staff/{staff_id}/link-code"): P.MANAGE_STAFF,
    ("POST", "/api/people/staff"): P.MANAGE_STAFF,
    ("PUT", "/api/people/staff/{staff_id}"): P.MANAGE_STAFF,
    ("DELETE", "/api/people/staff/{staff_id}"): P.MANAGE_STAFF,
    ("POST", "/api/people/staff/{staff_id}/link-code"): P.MANAGE_STAFF,
    ("GET", "/people/parents/{platform}/{user_id}/export"): P.PARENT_DATA,
    ("POST", "/people/parents/{platform}/{user_id}/erase"): P.PARENT_DATA,
    ("GET", "/api/people/parents/{platform}/{user_id}/export"): P.PARENT_DATA,
    ("DELETE", "/api/people/parents/{platform}/{user_id}"): P.PARENT_DATA,
    # school settings: administrators
    ("GET", "/settings"): P.MANAGE_SETTINGS,
    ("GET", "/api/settings"): P.MANAGE_SETTINGS,
    **{
        ("POST", f"/settings/{s}"): P.MANAGE_SETTINGS
        for s in (
            "hours",
            "closures",
            "closures/remove",
            "platforms",
            "notice",
            "reminders",
            "retention",
            "alerts",
        )
    },
    **{
        ("PUT", f"/api/settings/{s}"): P.MANAGE_SETTINGS
        for s in (
            "hours",
            "closures",
            "platforms",
            "notice",
            "reminders",
            "retention",
            "alerts",
        )
    },
    # rules: everyone who reviews or configures may look and try; administrators change them
    ("GET", "/rules"): P.VIEW_RULES,
    ("POST", "/rules/try"): P.VIEW_RULES,
    ("GET", "/api/rules"): P.VIEW_RULES,
    ("POST", "/api/classify"): P.VIEW_RULES,
    ("POST", "/rules"): P.MANAGE_RULES,
    ("POST", "/rules/lexicons"): P.MANAGE_RULES,
    ("POST", "/rules/learning"): P.MANAGE_RULES,
    ("POST", "/rules/learning/retrain"): P.MANAGE_RULES,
    ("PUT", "/api/rules"): P.MANAGE_RULES,
    ("PUT", "/api/rules/lexicons"): P.MANAGE_RULES,
    # the audit log and reports
    ("GET", "/audit"): P.VIEW_AUDIT,
    ("GET", "/api/audit"): P.VIEW_AUDIT,
    ("GET", "/reports"): P.VIEW_REPORTS,
    ("GET", "/reports/annual"): P.VIEW_REPORTS,
    ("GET", "/reports/annual.csv"): P.VIEW_REPORTS,
    ("GET", "/api/reports"): P.VIEW_REPORTS,
    ("GET", "/api/reports/annual"): P.VIEW_REPORTS,
    # accounts: administrators
    ("GET", "/accounts"): P.MANAGE_ACCOUNTS,
    ("POST", "/accounts"): P.MANAGE_ACCOUNTS,
    ("GET", "/accounts/{account_id}"): P.MANAGE_ACCOUNTS,
    ("POST", "/accounts/{account_id}"): P.MANAGE_ACCOUNTS,
    ("POST", "/accounts/{account_id}/password"): P.MANAGE_ACCOUNTS,
    ("POST", "/accounts/{account_id}/two-factor"): P.MANAGE_ACCOUNTS,
    ("POST", "/accounts/{account_id}/sign-out"): P.MANAGE_ACCOUNTS,
    ("GET", "/api/accounts"): P.MANAGE_ACCOUNTS,
    ("POST", "/api/accounts"): P.MANAGE_ACCOUNTS,
    ("GET", "/api/accounts/{account_id}"): P.MANAGE_ACCOUNTS,
    ("PUT", "/api/accounts/{account_id}"): P.MANAGE_ACCOUNTS,
    ("POST", "/api/accounts/{account_id}/password"): P.MANAGE_ACCOUNTS,
    ("POST", "/api/accounts/{account_id}/two-factor/reset"): P.MANAGE_ACCOUNTS,
    ("POST", "/api/accounts/{account_id}/sign-out"): P.MANAGE_ACCOUNTS,
}

# What each role is meant to do, written out (README, "Who can do what").
ROLES: dict[UserRole, set[P]] = {
    UserRole.VIEWER: {P.VIEW_REPORTS},
    UserRole.SLT: {
        P.VIEW_DASHBOARD, P.VIEW_REPORTS, P.REVIEW_FLAGS, P.VIEW_CHATS, P.MANAGE_CHATS,
        P.CLOSE_CHATS, P.VIEW_PEOPLE, P.VIEW_RULES, P.VIEW_AUDIT,
    },
    UserRole.DSL: {
        P.VIEW_DASHBOARD, P.VIEW_REPORTS, P.REVIEW_FLAGS, P.VIEW_SAFEGUARDING, P.VIEW_CHATS,
        P.MANAGE_CHATS, P.CLOSE_CHATS, P.VIEW_PEOPLE, P.PARENT_DATA, P.VIEW_RULES, P.VIEW_AUDIT,
    },
    UserRole.ADMIN: {
        P.VIEW_DASHBOARD, P.VIEW_REPORTS, P.VIEW_CHATS, P.MANAGE_CHATS, P.VIEW_PEOPLE,
        P.PARENT_DATA, P.MANAGE_STAFF, P.MANAGE_SETTINGS, P.VIEW_RULES, P.MANAGE_RULES,
        P.MANAGE_ACCOUNTS, P.VIEW_AUDIT,
    },
}  # fmt: skip


def routes() -> list[tuple[str, str]]:
    found = [
        (method, route.path)
        for router in ROUTERS
        for route in router.routes
        if isinstance(route, APIRoute)
        for method in route.methods or ()
    ]
    return sorted(found)


@dataclass(frozen=True)
class Records:
    """Ids of one school's records, to fill in the routes' paths."""

    flag_id: int
    chat_id: int
    staff_id: int
    platform: str
    user_id: str
    account_id: int

    def url(self, path: str) -> str:
        values = {
            "flag_id": self.flag_id, "chat_id": self.chat_id, "staff_id": self.staff_id,
            "platform": self.platform, "user_id": self.user_id, "account_id": self.account_id,
        }  # fmt: skip
        return re.sub(r"\{(\w+)\}", lambda m: str(values[m.group(1)]), path)


async def records_of(
    sessions: Sessions, engines: EngineCache, school: School, chat_id: str, user_id: str
) -> Records:
    """A registered chat with a consenting parent whose message is flagged, and an account."""
    async with transaction(sessions) as session:
        school = await session.merge(school)
        chat = await a_chat(session, school, platform_chat_id=chat_id)
        member = await a_member(session, chat, user_id=user_id)
        await consent.give(session, chat, member, "button", utcnow())
        checked = await check_message(
            session, await engines.for_school(session, school), chat, member,
            message("you absolute idiot", id=f"m{user_id}", reply_to="Kerry Marsh"),
            RETENTION, utcnow(),
        )  # fmt: skip
        assert checked.flag is not None
        staff = await SchoolRepository(session).staff(school.id)
        target = await an_account(session, school, role=UserRole.VIEWER)
        return Records(checked.flag.id, chat.id, staff[-1].id, "telegram", user_id, target.id)


async def as_role(
    new_client: NewClient, sessions: Sessions, user: User | None
) -> httpx.AsyncClient:
    """A client with a fresh session for ``user`` (none: anonymous). Each request gets its own
    session, so a route that signs people out cannot spoil the requests after it."""
    client = new_client()
    if user is None:
        return client
    async with transaction(sessions) as session:
        attached = await session.get(User, user.id)
        assert attached is not None
        token, created = await user_sessions.start(
            session, attached, SessionStage.FULL, SessionPolicy(), utcnow()
        )
    client.cookies.set(SESSION_COOKIE, token)
    client.headers[CSRF_HEADER] = created.csrf_token
    return client


async def call(client: httpx.AsyncClient, method: str, url: str) -> httpx.Response:
    if method in ("POST", "PUT") and url.startswith("/api/"):
        return await client.request(method, url, json={})
    if method == "POST":
        return await client.request(method, url, data={"unused": "x"})
    return await client.request(method, url)


def test_every_route_has_an_intended_audience() -> None:
    assert set(routes()) == set(ACCESS), (
        "routes missing from ACCESS (add them, with who may use them): "
        f"{sorted(set(routes()) - set(ACCESS))}; "
        f"stale entries: {sorted(set(ACCESS) - set(routes()))}"
    )


def test_the_roles_are_as_intended() -> None:
    from bot.services.access import ROLE_PERMISSIONS

    assert {role: set(perms) for role, perms in ROLE_PERMISSIONS.items()} == ROLES


async def test_no_route_can_be_used_without_the_right_role(
    new_client: NewClient, sessions: Sessions, engines: EngineCache, seeded_school: School
) -> None:
    records = await records_of(sessions, engines, seeded_school, "-1001", "501")
    async with transaction(sessions) as session:
        school = await session.merge(seeded_school)
        people: dict[UserRole | None, User | None] = {None: None}
        for each in ROLES:
            people[each] = await an_account(session, school, role=each)
    wrong: list[str] = []
    for method, path in routes():
        intended = ACCESS[(method, path)]
        for role, user in people.items():
            client = await as_role(new_client, sessions, user)
            response = await call(client, method, records.url(path))
            status = response.status_code
            if intended == PUBLIC:
                allowed = True
            elif role is None:
                allowed = False
            else:
                allowed = intended == SIGNED_IN or intended in ROLES[role]
            if allowed and status in (401, 403):
                wrong.append(f"{role} refused {method} {path}: {status}")
            elif not allowed and role is None and not _sign_in_asked(response):
                wrong.append(f"anonymous reached {method} {path}: {status}")
            elif not allowed and role is not None and status != 403:
                wrong.append(f"{role} not refused {method} {path}: {status}")
            elif status >= 500:
                wrong.append(f"{role} {method} {path}: server error {status}")
    assert not wrong, "\n".join(wrong)


def _sign_in_asked(response: httpx.Response) -> bool:
    """401, or (a page) a redirect to the sign-in page."""
    return response.status_code == 401 or (
        response.status_code == 303 and response.headers["location"].startswith("/login")
    )


async def test_no_one_reaches_another_schools_records(
    new_client: NewClient, sessions: Sessions, engines: EngineCache, seeded_school: School
) -> None:
    ours = await records_of(sessions, engines, seeded_school, "-1001", "501")
    async with transaction(sessions) as session:
        elsewhere = await another_school(session)
    theirs = await records_of(sessions, engines, elsewhere, "-2002", "602")
    async with transaction(sessions) as session:
        school = await session.merge(seeded_school)
        dsl = await an_account(session, school, role=UserRole.DSL)
        admin = await an_account(session, school, role=UserRole.ADMIN)
    leaks: list[str] = []
    for method, path in routes():
        if "{" not in path:
            continue
        intended = ACCESS[(method, path)]
        user = dsl if intended in ROLES[UserRole.DSL] else admin
        client = await as_role(new_client, sessions, user)
        body = VALID_BODIES.get((method, path))
        url = theirs.url(path)
        if body is None:
            response = await call(client, method, url)
        elif path.startswith("/api/"):
            response = await client.request(method, url, json=body)
        else:
            response = await client.request(method, url, data=body)
        if response.status_code != 404:
            leaks.append(f"{method} {path}: {response.status_code}")
    assert not leaks, "another school's record was reached:\n" + "\n".join(leaks)
    # ... while the same requests work on one's own records.
    client = await as_role(new_client, sessions, dsl)
    assert (await client.get(ours.url("/api/flags/{flag_id}"))).status_code == 200


# Bodies good enough to get past validation, so that only scoping can refuse the request.
VALID_BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/flags/{flag_id}/decision"): {"decision": "confirm"},
    ("POST", "/flags/{flag_id}/actions"): {"action": "remind"},
    ("POST", "/api/flags/{flag_id}/decision"): {"decision": "confirm"},
    ("POST", "/api/flags/{flag_id}/actions"): {"action": "remind"},
    ("POST", "/chats/{chat_id}/observe-only"): {"observe_only": "true"},
    ("PUT", "/api/chats/{chat_id}/observe-only"): {"observe_only": True},
    ("POST", "/chats/{chat_id}/invitations"): {"number": "07700 900123"},
    ("POST", "/api/chats/{chat_id}/invitations"): {"number": "07700 900123"},
    ("POST", "/chats/{chat_id}/closure"): {"reason": "Repeated abuse", "grace_hours": "24"},
    ("POST", "/api/chats/{chat_id}/closure"): {"reason": "Repeated abuse", "grace_hours": 24},
    ("POST", "/accounts/{account_id}"): {"name": "X", "role": "viewer", "active": "true"},
    ("PUT", "/api/accounts/{account_id}"): {"name": "X", "role": "viewer", "active": True},
    ("POST", "/people/parents/{platform}/{user_id}/erase"): {"confirm": "yes"},
    ("POST", "/people/staff/{staff_id}"): {"name": "Ms Priya Shah", "role": "Year 2 teacher"},
    ("PUT", "/api/people/staff/{staff_id}"): {"name": "Ms Priya Shah", "role": "Year 2 teacher"},
}


def body_routes_with_ids() -> set[tuple[str, str]]:
    """Routes that take a body (JSON or a form) and name a record in their path."""
    return {
        (method, route.path)
        for router in ROUTERS
        for route in router.routes
        if isinstance(route, APIRoute) and "{" in route.path and route.dependant.body_params
        for method in route.methods or ()
    }


def test_every_route_taking_a_body_and_an_id_has_a_valid_body() -> None:
    # Without one, validation (422) would answer before scoping could be tried.
    wanted = body_routes_with_ids()
    assert set(VALID_BODIES) == wanted, (
        f"add a valid body to VALID_BODIES for: {sorted(wanted - set(VALID_BODIES))}; "
        f"stale entries: {sorted(set(VALID_BODIES) - wanted)}"
    )
