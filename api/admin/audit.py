"""The audit log: who did what, when, to which record; newest first, 100 a page, filtered.

Read-only: the log is append-only, so there is no route that changes or removes an event.
Only the signed-in person's school's events are ever listed.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel

from api.admin.deps import DbSession, SignedIn, requires, school_of
from api.admin.templating import render
from bot.errors import BadInputError
from bot.services import audit_log
from bot.services.access import Permission
from bot.services.audit_log import LogEntry, LogPage, LogQuery
from bot.services.schools import school_zone
from bot.store.models import MAX_ID, School

pages = APIRouter(include_in_schema=False)
api = APIRouter(prefix="/api", tags=["audit"])

Viewer = Annotated[SignedIn, requires(Permission.VIEW_AUDIT)]
# Ids are 32-bit integers in PostgreSQL: a larger one is refused, not sent to the database.
Before = Annotated[int | None, Query(ge=1, le=MAX_ID, description="Events older than this id")]
Actor = Annotated[str, Query(max_length=100, description='e.g. "user:12" or "system"')]
Action = Annotated[str, Query(max_length=64, description='An action or its start, e.g. "flag."')]
Subject = Annotated[str, Query(max_length=100, description='e.g. "flag:12"')]
Day = Annotated[str, Query(max_length=10, description="YYYY-MM-DD, the school's day")]


def _day(value: str, name: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise BadInputError(f"The '{name}' date should look like 2026-11-24.") from None


async def _page(db: DbSession, user: SignedIn, school: School, wanted: LogQuery) -> LogPage:
    return await audit_log.page(
        db, school, wanted, safeguarding=user.can(Permission.VIEW_SAFEGUARDING)
    )


def detail_text(value: Any) -> str:
    """A detail's value as one short line."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 200 else text[:199] + "…"


@pages.get("/audit")
async def audit_page(
    request: Request,
    db: DbSession,
    user: Viewer,
    actor: Actor = "",
    action: Action = "",
    subject: Subject = "",
    date_from: Day = "",
    date_to: Day = "",
    before: Before = None,
) -> HTMLResponse:
    filters = {
        "actor": actor.strip(), "action": action.strip(), "subject": subject.strip(),
        "date_from": date_from, "date_to": date_to,
    }  # fmt: skip
    wanted = LogQuery(
        actor=filters["actor"] or None,
        action=filters["action"] or None,
        subject=filters["subject"] or None,
        since=_day(date_from, "from"),
        until=_day(date_to, "to"),
        before=before,
    )
    school = await school_of(db, user)
    log = await _page(db, user, school, wanted)
    chosen = {name: value for name, value in filters.items() if value}
    actors = await audit_log.actor_choices(db, user.school_id)
    if filters["actor"] and filters["actor"] not in {actor for actor, _ in actors}:
        actors.insert(0, (filters["actor"], filters["actor"]))
    return render(
        request,
        "audit/list.html",
        {
            "log": log,
            "filters": filters,
            "filtered": bool(chosen),
            "first_page": before is None,
            "older_link": (
                f"/audit?{urlencode({**chosen, 'before': log.older_than})}"
                if log.older_than
                else None
            ),
            "newest_link": f"/audit?{urlencode(chosen)}" if chosen else "/audit",
            "actors": actors,
            "actions": await audit_log.action_choices(db, user.school_id),
            "zone": school_zone(school),
            "detail_text": detail_text,
        },
        user=user,
    )


class AuditEventOut(BaseModel):
    id: int
    at: datetime
    actor: str
    actor_name: str
    action: str
    subject: str
    details: dict[str, Any]
    withheld: bool
    """The details concern a safeguarding matter and are kept for the DSL."""

    @classmethod
    def of(cls, entry: LogEntry) -> AuditEventOut:
        return cls(
            id=entry.id, at=entry.at, actor=entry.actor, actor_name=entry.actor_name,
            action=entry.action, subject=entry.subject, details=entry.details,
            withheld=entry.withheld,
        )  # fmt: skip


class AuditPageOut(BaseModel):
    events: list[AuditEventOut]
    """Newest first, at most 100."""
    older_than: int | None
    """Pass as ``before`` for the next (older) page; null on the last page."""


@api.get(
    "/audit",
    responses={
        400: {"description": "A date is not a date, or 'from' is after 'to'"},
        403: {"description": "Your role may not read the audit log"},
    },
)
async def api_audit(
    db: DbSession,
    user: Viewer,
    actor: Actor = "",
    action: Action = "",
    subject: Subject = "",
    date_from: Annotated[date | None, Query(description="The first day, school time")] = None,
    date_to: Annotated[date | None, Query(description="The last day, included")] = None,
    before: Before = None,
) -> AuditPageOut:
    """The school's audit log, newest first, 100 events a page, filtered by actor, action
    (a prefix such as "flag."), subject (such as "flag:12") and dates."""
    wanted = LogQuery(
        actor=actor.strip() or None, action=action.strip() or None,
        subject=subject.strip() or None, since=date_from, until=date_to, before=before,
    )  # fmt: skip
    log = await _page(db, user, await school_of(db, user), wanted)
    return AuditPageOut(
        events=[AuditEventOut.of(entry) for entry in log.entries], older_than=log.older_than
    )
