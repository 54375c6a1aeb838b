"""The annual review for the headteacher and governors, and what it shares with the dashboard
(``bot.services.dashboard``).

The review is built once as plain dataclasses; the pages, the JSON API and the CSV all render from
them, so they always agree. Counts only: no names, no message words, no evidence. Chat titles
appear (they are the school's own class chats), people never do.

Weeks and months are the school's own (its time zone, weeks from Monday); an academic year runs
from 1 September to 31 August.
"""

from __future__ import annotations

import csv
import io
import math
import statistics
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from bot.errors import BadInputError
from bot.policy.rules import RULE_ORDER, RuleId
from bot.services import consent
from bot.services.alerts import flag_timing
from bot.services.school_settings import AlertTiming, settings_of
from bot.services.schools import local_midnight, school_zone
from bot.store.models import ChatStatus, FlagStatus, School
from bot.store.repositories.audit import AuditRepository
from bot.store.repositories.chats import ChatRepository
from bot.store.repositories.reports import FlagFacts, ReportRepository, WaitingFlag

_KNOWN_RULES = frozenset(str(rule) for rule in RuleId)


def rule_label(rule: str) -> str:
    """ "staff-contact" -> "Staff contact": short enough for a table heading or a legend."""
    return rule.replace("-", " ").capitalize()


def rule_key(rule: str) -> tuple[int, str]:
    """The catalogue's order; rules it no longer has (in old flags) after, by name."""
    return (RULE_ORDER[RuleId(rule)] if rule in _KNOWN_RULES else len(RULE_ORDER), rule)


def minutes_of(delta: timedelta) -> float:
    """A time between two moments in minutes; never below 0 (clocks are not perfect)."""
    return max(delta.total_seconds(), 0.0) / 60


def duration_text(minutes: float | None) -> str:
    """A wait or a delay as a person says it: "25 min", "3 h 10 min", "2 days 4 h"."""
    if minutes is None:
        return "—"
    whole = round(minutes)
    if whole < 1:
        return "under a minute"
    days, rest = divmod(whole, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        day_text = f"{days} day" if days == 1 else f"{days} days"
        return f"{day_text} {hours} h" if hours else day_text
    if hours:
        return f"{hours} h {mins} min" if mins else f"{hours} h"
    return f"{mins} min"


def _plural(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


# -- shared by the dashboard and the review ---------------------------------------------------


@dataclass(frozen=True)
class RuleSeries:
    rule: str
    label: str
    counts: tuple[int, ...]
    """One count per bucket (week or month), in order."""


@dataclass(frozen=True)
class ChatCoverage:
    chat_id: int
    title: str
    class_name: str | None
    agreed: int
    """Members who have agreed to the chat's current notice."""
    members: int


async def unacknowledged_alerts(
    session: AsyncSession, school: School, *, safeguarding: bool = True
) -> list[WaitingFlag]:
    """Open flags the school was alerted to at once that nobody has acknowledged, oldest
    first; without ``safeguarding``, leaving out those escalated to the DSL. Alerted at once
    is by the school's own timing for each rule (as the escalation of alerts decides it),
    not by severity: a school may have medium flags of a rule alerted at once, or high ones
    only in the queue."""
    settings = settings_of(school)
    return [
        flag
        for flag in await ReportRepository(session).unacknowledged(
            school.id, safeguarding=safeguarding
        )
        if flag_timing(settings, flag.reasons) is AlertTiming.NOW
    ]


async def chat_coverage(session: AsyncSession, school_id: int) -> tuple[ChatCoverage, ...]:
    """Each chat registered to the school now, with how many of its members have agreed."""
    rows = []
    for chat in await ChatRepository(session).for_school(school_id):
        if chat.status != ChatStatus.REGISTERED:
            continue
        cover = await consent.coverage(session, chat)
        rows.append(
            ChatCoverage(chat.id, chat.title, chat.class_name, cover.consented, cover.members)
        )
    return tuple(sorted(rows, key=lambda row: (row.title.lower(), row.chat_id)))


# -- the annual review --------------------------------------------------------------------------


def academic_year_of(moment: datetime, zone: ZoneInfo) -> int:
    """The year the academic year holding ``moment`` starts in (1 September)."""
    day = moment.astimezone(zone).date()
    return day.year if day.month >= 9 else day.year - 1


def year_label(year: int) -> str:
    return f"{year}/{(year + 1) % 100:02d}"


def year_days(year: int) -> tuple[date, date]:
    """The first and last day of the academic year starting in ``year``."""
    return date(year, 9, 1), date(year + 1, 8, 31)


def year_months(year: int) -> tuple[date, ...]:
    return tuple(date(year + (month < 9), month, 1) for month in (*range(9, 13), *range(1, 9)))


async def report_years(session: AsyncSession, school: School, now: datetime) -> list[int]:
    """The academic years there is anything to report on, newest first."""
    zone = school_zone(school)
    current = academic_year_of(now, zone)
    first_flag = await ReportRepository(session).first_flag_at(school.id)
    first = min(school.created_at, first_flag) if first_flag else school.created_at
    return list(range(current, min(academic_year_of(first, zone), current) - 1, -1))


@dataclass(frozen=True)
class FlagsByMonth:
    """Flags created each month of the year, by rule (a message that breaks two rules counts
    under each), and how many flags (messages) there were."""

    months: tuple[str, ...]
    """"2025-09" ... "2026-08"."""
    rules: tuple[RuleSeries, ...]
    """Every rule in the catalogue, in its order, and any other rule flagged this year."""
    flags: tuple[int, ...]
    total: int


@dataclass(frozen=True)
class RuleDecisions:
    rule: str
    """A rule id, or "all" for every flag (each flag once)."""
    label: str
    confirmed: int
    not_a_breach: int
    escalated: int
    """Escalated to the Designated Safeguarding Lead (and not yet decided by them)."""
    still_open: int
    false_positive_rate: float | None
    """Of the flags decided (confirmed, not a breach or escalated), the share found not to be a
    breach, from 0 to 1; None when none were decided."""


@dataclass(frozen=True)
class Acknowledgement:
    """From a flag being raised to someone acknowledging it, for the flags acknowledged."""

    acknowledged: int
    median_minutes: float | None
    p90_minutes: float | None
    """90 in 100 were acknowledged within this (nearest-rank percentile)."""


@dataclass(frozen=True)
class ClosedChat:
    title: str
    closed_on: date


@dataclass(frozen=True)
class AnnualReport:
    school: str
    year: int
    """The academic year starting on 1 September of this year."""
    label: str
    starts: date
    ends: date
    generated_at: datetime
    time_zone: str
    complete: bool
    """False while the year is still running: the figures are so far."""
    summary: str
    flags_by_month: FlagsByMonth
    decisions: tuple[RuleDecisions, ...]
    all_decisions: RuleDecisions
    acknowledgement: Acknowledgement
    unacknowledged_alerts: int
    """High-severity flags raised this year that the school was alerted to at once and nobody
    has acknowledged, as of now."""
    chats_closed: tuple[ClosedChat, ...]
    consent: tuple[ChatCoverage, ...]
    """Each registered chat as it is now (not as it was during the year)."""


def by_month(facts: Sequence[FlagFacts], year: int, zone: ZoneInfo) -> FlagsByMonth:
    months = year_months(year)
    index = {(m.year, m.month): i for i, m in enumerate(months)}
    per_rule: dict[str, list[int]] = {str(rule): [0] * 12 for rule in RuleId}
    flags = [0] * 12
    for fact in facts:
        local = fact.created_at.astimezone(zone)
        slot = index[(local.year, local.month)]
        flags[slot] += 1
        for rule in fact.rules:
            per_rule.setdefault(rule, [0] * 12)[slot] += 1
    return FlagsByMonth(
        months=tuple(f"{m:%Y-%m}" for m in months),
        rules=tuple(
            RuleSeries(rule, rule_label(rule), tuple(per_rule[rule]))
            for rule in sorted(per_rule, key=rule_key)
        ),
        flags=tuple(flags),
        total=sum(flags),
    )


def _decisions(rule: str, label: str, statuses: Iterable[FlagStatus]) -> RuleDecisions:
    seen = Counter(statuses)
    confirmed, not_a_breach = seen[FlagStatus.CONFIRMED], seen[FlagStatus.FALSE_POSITIVE]
    escalated = seen[FlagStatus.ESCALATED]
    decided = confirmed + not_a_breach + escalated
    return RuleDecisions(
        rule,
        label,
        confirmed,
        not_a_breach,
        escalated,
        seen[FlagStatus.OPEN] + seen[FlagStatus.ACKNOWLEDGED],
        not_a_breach / decided if decided else None,
    )


def decisions(
    facts: Sequence[FlagFacts], rules: Iterable[str]
) -> tuple[tuple[RuleDecisions, ...], RuleDecisions]:
    """Each rule's decisions, and every flag's (each once, whatever its rules)."""
    per_rule = tuple(
        _decisions(rule, rule_label(rule), (f.status for f in facts if rule in f.rules))
        for rule in rules
    )
    return per_rule, _decisions("all", "All flags", (f.status for f in facts))


def nearest_rank(values: Sequence[float], percentile: float) -> float | None:
    """The smallest value at least ``percentile``% of ``values`` are no greater than."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(math.ceil(percentile / 100 * len(ordered)), 1) - 1]


def acknowledgement(facts: Sequence[FlagFacts]) -> Acknowledgement:
    waits = [
        minutes_of(f.acknowledged_at - f.created_at) for f in facts if f.acknowledged_at is not None
    ]
    return Acknowledgement(
        len(waits), statistics.median(waits) if waits else None, nearest_rank(waits, 90)
    )


def _percent(part: int, whole: int) -> str:
    return f"{round(100 * part / whole)}%"


def summarise(report: AnnualReport) -> str:
    """A short paragraph in plain English for the top of the report."""
    starts, ends = report.starts, report.ends
    period = (
        f"In {report.label} (1 September {starts.year} to 31 August {ends.year})"
        if report.complete
        else f"So far in {report.label} (from 1 September {starts.year})"
    )
    months = report.flags_by_month
    if months.total == 0:
        parts = [f"{period}, Schoolgate flagged no messages."]
    else:
        parts = [f"{period}, Schoolgate flagged {_plural(months.total, 'message', 'messages')}."]
        most = max(sum(series.counts) for series in months.rules)
        top = [series.label for series in months.rules if sum(series.counts) == most]
        times = _plural(most, "time", "times")
        if len(top) == 1:
            parts.append(f"The rule broken most often was “{top[0]}” ({times}).")
        else:
            names = ", ".join(f"“{name}”" for name in top[:-1]) + f" and “{top[-1]}”"
            parts.append(f"The rules broken most often were {names} ({times} each).")
        every = report.all_decisions
        decided = every.confirmed + every.not_a_breach + every.escalated
        if decided:
            wrong = every.not_a_breach
            how_many = (
                "none was"
                if wrong == 0
                else f"{wrong} ({_percent(wrong, decided)}) {'was' if wrong == 1 else 'were'}"
            )
            text = (
                f"Of the {_plural(decided, 'flag', 'flags')} decided, {how_many} found not to be"
                " a breach"
            )
            if every.escalated:
                text += (
                    f" and {every.escalated} {'was' if every.escalated == 1 else 'were'}"
                    " escalated to the Designated Safeguarding Lead"
                )
            parts.append(text + ".")
        if every.still_open:
            verb = "is" if every.still_open == 1 else "are"
            parts.append(f"{_plural(every.still_open, 'flag', 'flags')} {verb} still open.")
        ack = report.acknowledgement
        if ack.acknowledged:
            parts.append(
                f"Flags were acknowledged in a median of {duration_text(ack.median_minutes)},"
                f" and 9 in 10 within {duration_text(ack.p90_minutes)}."
            )
        if report.unacknowledged_alerts:
            waiting = report.unacknowledged_alerts
            parts.append(
                f"{_plural(waiting, 'high-severity alert', 'high-severity alerts')} from this"
                f" year {'has' if waiting == 1 else 'have'} not been acknowledged."
            )
    closed = len(report.chats_closed)
    parts.append(
        "No chat was closed."
        if closed == 0
        else f"{_plural(closed, 'chat was', 'chats were')} closed."
    )
    if report.consent:
        agreed = sum(chat.agreed for chat in report.consent)
        members = sum(chat.members for chat in report.consent)
        share = f" ({_percent(agreed, members)})" if members else ""
        parts.append(
            f"Today, {agreed} of {_plural(members, 'member', 'members')}{share} across"
            f" {_plural(len(report.consent), 'chat', 'chats')} have agreed to the notice."
        )
    return " ".join(parts)


async def annual_report(
    session: AsyncSession, school: School, year: int, now: datetime
) -> AnnualReport:
    """The review of the academic year starting 1 September ``year``, as of ``now``."""
    zone = school_zone(school)
    if year > academic_year_of(now, zone):
        raise BadInputError(f"The academic year {year_label(year)} has not started yet.")
    first, last = year_days(year)
    start, end = local_midnight(first, zone), local_midnight(last + timedelta(days=1), zone)
    reports = ReportRepository(session)
    facts = await reports.flags_created(school.id, start, end)
    waiting = await unacknowledged_alerts(session, school)
    months = by_month(facts, year, zone)
    per_rule, every = decisions(facts, [series.rule for series in months.rules])
    draft = AnnualReport(
        school=school.name,
        year=year,
        label=year_label(year),
        starts=first,
        ends=last,
        generated_at=now,
        time_zone=zone.key,
        complete=now >= end,
        summary="",
        flags_by_month=months,
        decisions=per_rule,
        all_decisions=every,
        acknowledgement=acknowledgement(facts),
        unacknowledged_alerts=sum(
            1 for flag in waiting if flag.severity == "high" and start <= flag.created_at < end
        ),
        chats_closed=tuple(
            ClosedChat(row.title, row.closed_at.astimezone(zone).date())
            for row in await reports.chats_closed(school.id, start, end)
        ),
        consent=await chat_coverage(session, school.id),
    )
    return replace(draft, summary=summarise(draft))


# -- the CSV ------------------------------------------------------------------------------------

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: object) -> str:
    """A CSV cell; text a spreadsheet would run as a formula is quoted with a leading '."""
    text = "" if value is None else str(value)
    if isinstance(value, str) and text.startswith(_FORMULA_STARTS):
        return "'" + text
    return text


def _number(value: float | None, digits: int = 1) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def month_heading(month: str) -> str:
    """ "2025-09" -> "Sep 2025"."""
    return f"{date.fromisoformat(month + '-01'):%b %Y}"


def csv_rows(report: AnnualReport) -> list[list[str]]:
    """The report as CSV rows: a heading row, then one section after another, each named in
    its first row and ended by an empty row."""
    months = report.flags_by_month
    ack = report.acknowledgement
    rows: list[Sequence[object]] = [
        ["Schoolgate annual review"],
        ["School", report.school],
        ["Academic year", report.label],
        ["From", report.starts.isoformat()],
        ["To", report.ends.isoformat()],
        ["Complete", "yes" if report.complete else "no (the year is still running)"],
        ["Generated", report.generated_at.isoformat(timespec="seconds")],
        [],
        ["Summary"],
        [report.summary],
        [],
        ["Flags by rule and month"],
        ["Rule id", "Rule", *(month_heading(m) for m in months.months), "Total"],
        *(
            [series.rule, series.label, *series.counts, sum(series.counts)]
            for series in months.rules
        ),
        ["all", "All flags", *months.flags, months.total],
        [],
        ["Decisions by rule"],
        ["Rule id", "Rule", "Confirmed", "Not a breach", "Escalated", "Still open",
         "False-positive rate (%)"],
        *(
            [d.rule, d.label, d.confirmed, d.not_a_breach, d.escalated, d.still_open,
             _number(None if d.false_positive_rate is None else 100 * d.false_positive_rate)]
            for d in (*report.decisions, report.all_decisions)
        ),
        [],
        ["Time to acknowledge"],
        ["Flags acknowledged", ack.acknowledged],
        ["Median (minutes)", _number(ack.median_minutes)],
        ["90th percentile (minutes)", _number(ack.p90_minutes)],
        ["High-severity alerts not acknowledged", report.unacknowledged_alerts],
        [],
        ["Chats closed"],
        ["Chat", "Closed on"],
        *([chat.title, chat.closed_on.isoformat()] for chat in report.chats_closed),
        [],
        ["Consent coverage now"],
        ["Chat", "Class", "Agreed", "Members"],
        *(
            [chat.title, chat.class_name or "", chat.agreed, chat.members]
            for chat in report.consent
        ),
    ]  # fmt: skip
    return [[_cell(value) for value in row] for row in rows]


def annual_csv(report: AnnualReport) -> str:
    out = io.StringIO()
    csv.writer(out).writerows(csv_rows(report))
    return out.getvalue()


def csv_filename(year: int) -> str:
    return f"schoolgate-annual-review-{year}-{(year + 1) % 100:02d}.csv"


async def export_annual_csv(
    session: AsyncSession, school: School, year: int, actor: str, now: datetime
) -> str:
    """The year's review as CSV; exporting it is recorded in the audit log."""
    report = await annual_report(session, school, year, now)
    await AuditRepository(session).record(
        actor, "report.exported", f"report:annual:{year}", school.id,
        report="annual review", year=report.label, format="csv",
    )  # fmt: skip
    return annual_csv(report)
