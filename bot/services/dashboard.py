"""The dashboard's figures: open flags by severity, flags by rule for each of the last weeks,
consent in each chat, and the alerts (flags the school hears of at once) nobody has acknowledged
yet.

Built as plain dataclasses that the page and the JSON API both render. Counts, chat titles and
rule ids only: no names, no message words.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from bot.services.reports import (
    ChatCoverage,
    RuleSeries,
    chat_coverage,
    minutes_of,
    rule_key,
    rule_label,
    unacknowledged_alerts,
)
from bot.services.schools import local_midnight, school_zone
from bot.store.models import FlagStatus, School
from bot.store.repositories.inbox import InboxRepository
from bot.store.repositories.reports import FlagFacts, ReportRepository

CHART_WEEKS = 12
OPEN = (FlagStatus.OPEN, FlagStatus.ACKNOWLEDGED)
"""Flags still waiting for a decision."""
SAFEGUARDING_UNDECIDED = (*OPEN, FlagStatus.ESCALATED)
"""Safeguarding flags still waiting for the DSL's decision."""
SEVERITIES = ("high", "medium", "low")
WAITING_SHOWN = 50
"""At most this many waiting alerts are listed (all are counted)."""
SET_ASIDE_DAYS = 7
SET_ASIDE_SHOWN = 5


@dataclass(frozen=True)
class OpenFlags:
    """Flags waiting for a decision (open or acknowledged), by severity."""

    high: int
    medium: int
    low: int
    safeguarding: int | None
    """Escalated to the DSL and not yet decided; None for those who may not see them."""


@dataclass(frozen=True)
class WeeklyFlags:
    """Flags created each week, by rule: a message that breaks two rules counts under each."""

    weeks: tuple[date, ...]
    """The Monday each week starts on, in the school's time zone; the last is this week."""
    rules: tuple[RuleSeries, ...]
    """Only the rules broken in these weeks."""
    flags: tuple[int, ...]
    """Flags (messages) each week."""


@dataclass(frozen=True)
class WaitingAlert:
    flag_id: int
    chat: str
    rules: tuple[str, ...]
    created_at: datetime
    waited_minutes: int


@dataclass(frozen=True)
class AlertsWaiting:
    """Flags the school was alerted to at once (by its timing for their rules, whatever their
    severity) still open with nobody having acknowledged them."""

    count: int
    oldest_waited_minutes: int | None
    alerts: tuple[WaitingAlert, ...]
    """The oldest first; empty for those who do not review flags (they see the count)."""


@dataclass(frozen=True)
class SetAsideUpdate:
    platform: str
    update_id: int
    received_at: datetime
    attempts: int
    error: str


@dataclass(frozen=True)
class SetAside:
    """Updates from a platform that could not be processed after every attempt, in the last
    ``SET_ASIDE_DAYS`` days: a bug or a message our code trips over, for an administrator to
    report. Their content was deleted; what went wrong is kept."""

    days: int
    count: int
    recent: tuple[SetAsideUpdate, ...]


@dataclass(frozen=True)
class Dashboard:
    generated_at: datetime
    time_zone: str
    open_flags: OpenFlags
    weekly: WeeklyFlags
    chats: tuple[ChatCoverage, ...]
    alerts_waiting: AlertsWaiting
    set_aside: SetAside | None = None
    """For those who look after the installation (administrators); None for others."""


def week_starts(now: datetime, zone: ZoneInfo, weeks: int = CHART_WEEKS) -> tuple[date, ...]:
    """The Mondays of the last ``weeks`` weeks, this one last."""
    today = now.astimezone(zone).date()
    this_monday = today - timedelta(days=today.weekday())
    return tuple(this_monday - timedelta(weeks=back) for back in range(weeks - 1, -1, -1))


def by_week(facts: Iterable[FlagFacts], weeks: Sequence[date], zone: ZoneInfo) -> WeeklyFlags:
    per_rule: dict[str, list[int]] = {}
    flags = [0] * len(weeks)
    for fact in facts:
        day = fact.created_at.astimezone(zone).date()
        index = (day - weeks[0]).days // 7
        if not 0 <= index < len(weeks):
            continue
        flags[index] += 1
        for rule in fact.rules:
            per_rule.setdefault(rule, [0] * len(weeks))[index] += 1
    series = tuple(
        RuleSeries(rule, rule_label(rule), tuple(per_rule[rule]))
        for rule in sorted(per_rule, key=rule_key)
    )
    return WeeklyFlags(tuple(weeks), series, tuple(flags))


async def dashboard(
    session: AsyncSession,
    school: School,
    now: datetime,
    *,
    safeguarding: bool,
    itemise_alerts: bool,
    installation: bool = False,
) -> Dashboard:
    """The dashboard as one person may see it: with ``safeguarding`` (the DSL) flags escalated
    to the DSL are counted, separately; without it they are left out everywhere."""
    zone = school_zone(school)
    reports = ReportRepository(session)

    severities: Counter[str] = Counter()
    guarded = 0
    for row in await reports.open_counts(school.id, SAFEGUARDING_UNDECIDED):
        if row.safeguarding:
            guarded += row.count
        elif row.status in OPEN and row.severity in SEVERITIES:
            severities[row.severity] += row.count
    open_flags = OpenFlags(
        severities["high"],
        severities["medium"],
        severities["low"],
        guarded if safeguarding else None,
    )

    weeks = week_starts(now, zone)
    facts = await reports.flags_created(
        school.id,
        local_midnight(weeks[0], zone),
        local_midnight(weeks[-1] + timedelta(weeks=1), zone),
        safeguarding=safeguarding,
    )

    waiting = await unacknowledged_alerts(session, school, safeguarding=safeguarding)
    alerts = tuple(
        WaitingAlert(
            flag.id,
            flag.chat_title,
            flag.rules,
            flag.created_at,
            int(minutes_of(now - flag.created_at)),
        )
        for flag in waiting[:WAITING_SHOWN]
    )
    return Dashboard(
        generated_at=now,
        time_zone=zone.key,
        open_flags=open_flags,
        weekly=by_week(facts, weeks, zone),
        chats=await chat_coverage(session, school.id),
        alerts_waiting=AlertsWaiting(
            len(waiting),
            alerts[0].waited_minutes if alerts else None,
            alerts if itemise_alerts else (),
        ),
        set_aside=await set_aside_updates(session, now) if installation else None,
    )


async def set_aside_updates(session: AsyncSession, now: datetime) -> SetAside:
    count, items = await InboxRepository(session).set_aside(
        now - timedelta(days=SET_ASIDE_DAYS), SET_ASIDE_SHOWN
    )
    recent = tuple(
        SetAsideUpdate(i.platform, i.update_id, i.received_at, i.attempts, i.error or "")
        for i in items
    )
    return SetAside(SET_ASIDE_DAYS, count, recent)
