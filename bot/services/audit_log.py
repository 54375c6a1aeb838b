"""The audit log as the admin pages show it: one school's events, filtered, a page at a time,
newest first, each actor named.

The log is append-only (the database refuses to change a recorded event), so there is nothing
here that edits or deletes. The details of events about a flag escalated to the Designated
Safeguarding Lead (a reason given, say) are withheld from those who may not see such flags;
that the event happened, who did it and when are still shown.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.errors import BadInputError
from bot.services.schools import day_bounds, school_zone
from bot.store.models import School
from bot.store.repositories.accounts import UserRepository
from bot.store.repositories.audit import AuditFilter, AuditRepository
from bot.store.repositories.reports import ReportRepository
from bot.store.repositories.schools import SchoolRepository

PAGE_SIZE = 100
EARLIEST, LATEST = date(2000, 1, 1), date(2100, 12, 31)


@dataclass(frozen=True)
class LogEntry:
    id: int
    at: datetime
    actor: str
    """As recorded: "user:12", "staff:3", "system", "cli", "telegram:user:...", ..."""
    actor_name: str
    """The account's or staff member's name where the actor is one, else the actor itself."""
    action: str
    subject: str
    details: dict[str, Any]
    withheld: bool
    """The details are of a safeguarding matter, kept for the DSL."""


@dataclass(frozen=True)
class LogPage:
    entries: tuple[LogEntry, ...]
    older_than: int | None
    """Ask for events before this id for the next (older) page; None on the last page."""


@dataclass(frozen=True)
class LogQuery:
    actor: str | None = None
    action: str | None = None
    """A prefix: "flag." matches every flag.* action."""
    subject: str | None = None
    since: date | None = None
    """The first day, in the school's time zone."""
    until: date | None = None
    """The last day, included."""
    before: int | None = None


BUILT_IN = {"system": "Schoolgate", "cli": "Command line"}


async def actor_names(
    session: AsyncSession, school_id: int, actors: Iterable[str | None]
) -> dict[str, str]:
    """Readable names: "user:12" is the account's name, "staff:3" the staff member's (who acted
    from Telegram), "system" is Schoolgate itself and "cli" the command line; anything else
    ("telegram:user:...") stays as it is."""
    wanted = {actor for actor in actors if actor}
    names = {actor: BUILT_IN.get(actor, actor) for actor in wanted}
    if any(actor.startswith("user:") for actor in wanted):
        for user in await UserRepository(session).for_school(school_id):
            names[f"user:{user.id}"] = user.name
    if any(actor.startswith("staff:") for actor in wanted):
        for member in await SchoolRepository(session).staff(school_id):
            names[f"staff:{member.id}"] = f"{member.name} (Telegram)"
    return {actor: names[actor] for actor in wanted}


def _bounds(school: School, wanted: LogQuery) -> tuple[datetime | None, datetime | None]:
    for day in (wanted.since, wanted.until):
        if day is not None and not EARLIEST <= day <= LATEST:
            raise BadInputError(f"Choose dates from {EARLIEST.year} to {LATEST.year}.")
    return day_bounds(school_zone(school), wanted.since, wanted.until)


def _flag_id(subject: str) -> int | None:
    kind, _, number = subject.partition(":")
    return int(number) if kind == "flag" and number.isdigit() and len(number) < 10 else None


async def page(
    session: AsyncSession,
    school: School,
    wanted: LogQuery,
    *,
    safeguarding: bool,
    size: int = PAGE_SIZE,
) -> LogPage:
    """One page of the school's log, newest first; with ``safeguarding`` (the DSL) nothing is
    withheld."""
    since, until = _bounds(school, wanted)
    where = AuditFilter(
        actor=wanted.actor,
        action_prefix=wanted.action,
        subject=wanted.subject,
        since=since,
        until=until,
        before_id=wanted.before,
    )
    events = await AuditRepository(session).listing(school.id, where, size + 1)
    shown = events[:size]
    guarded: set[int] = set()
    if not safeguarding:
        flag_ids = {id for e in shown if (id := _flag_id(e.subject)) is not None}
        guarded = await ReportRepository(session).safeguarding_among(school.id, sorted(flag_ids))
    names = await actor_names(session, school.id, (e.actor for e in shown))
    entries = []
    for event in shown:
        withheld = _flag_id(event.subject) in guarded
        entries.append(
            LogEntry(
                event.id,
                event.created_at,
                event.actor,
                names[event.actor],
                event.action,
                event.subject,
                {} if withheld else dict(event.details),
                withheld,
            )
        )
    return LogPage(tuple(entries), shown[-1].id if len(events) > size else None)


async def actor_choices(session: AsyncSession, school_id: int) -> list[tuple[str, str]]:
    """(actor, name) for the filter's choices, by name: the school's staff and its own processes.
    Parents ("telegram:user:...") are left out: there may be hundreds, and they are filtered
    for by their id when needed."""
    actors = [a for a in await AuditRepository(session).actors(school_id) if ":user:" not in a]
    names = await actor_names(session, school_id, actors)
    return sorted(((a, names[a]) for a in actors), key=lambda pair: (pair[1].lower(), pair[0]))


async def action_choices(session: AsyncSession, school_id: int) -> list[str]:
    """Each action in the school's log and each family of them ("flag."), for suggestions."""
    actions = await AuditRepository(session).actions(school_id)
    families = {action.split(".", 1)[0] + "." for action in actions if "." in action}
    return sorted(families | set(actions))
