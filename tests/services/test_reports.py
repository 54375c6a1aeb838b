"""The annual review (bot.services.reports), on SQLite and PostgreSQL, from flags with known
times, rules and decisions."""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.errors import BadInputError
from bot.services import consent, reports
from bot.store.db import transaction
from bot.store.models import ChatClosure, ClosureStatus, FlagStatus, School
from bot.store.repositories.audit import AuditFilter, AuditRepository
from tests.factories import NOW, a_chat, a_member, a_school, another_school
from tests.report_rows import a_flag

pytestmark = pytest.mark.anyio
Sessions = async_sessionmaker[AsyncSession]
LONDON = ZoneInfo("Europe/London")
MINUTE = timedelta(minutes=1)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


async def a_year_of_flags(session: AsyncSession) -> School:
    """The academic year 2025/26 at the test school, with one flag of another school's."""
    school = await a_school(session)
    chat = await a_chat(session, school, title="Year 3 Parents")
    parent = await a_member(session, chat)
    other = await a_member(session, chat, user_id="502", name="Kerry Marsh")
    await consent.give(session, chat, parent, "button", NOW)

    async def flag(at: str, **kwargs: object) -> None:
        await a_flag(session, chat, parent, at=utc(at), **kwargs)  # type: ignore[arg-type]

    # 00:30 on 1 September in London (BST): the first hour of the year, though not in UTC.
    await flag("2025-08-31T23:30", status=FlagStatus.CONFIRMED, acknowledged_after=10 * MINUTE)
    # 00:30 on 1 October in London: October, though 30 September in UTC.
    await flag(
        "2025-09-30T23:30", rules=("staff-contact", "out-of-hours"),
        status=FlagStatus.FALSE_POSITIVE, acknowledged_after=30 * MINUTE,
    )  # fmt: skip
    await flag(
        "2025-12-15T12:00", rules=("abusive-to-parent",), severity="high",
        status=FlagStatus.CONFIRMED, acknowledged_after=60 * MINUTE,
    )  # fmt: skip
    await flag("2026-03-10T09:00", rules=("abusive-to-parent",), severity="high")
    await flag(
        "2026-05-20T09:00", rules=("confidential-info",), severity="high",
        status=FlagStatus.ESCALATED, safeguarding=True, acknowledged_after=5 * MINUTE,
    )  # fmt: skip
    await flag(
        "2026-06-01T09:00", rules=("disrepute",), severity="medium",
        status=FlagStatus.ACKNOWLEDGED, acknowledged_after=120 * MINUTE,
    )  # fmt: skip
    # 00:30 on 1 September 2026 in London: the next year.
    await flag("2026-08-31T23:30")
    await a_flag(session, chat, other, at=utc("2025-08-01T09:00"))  # the year before

    elsewhere = await another_school(session)
    their_chat = await a_chat(session, elsewhere, platform_chat_id="-2002", title="Theirs")
    theirs = await a_member(session, their_chat, user_id="900")
    await a_flag(session, their_chat, theirs, at=utc("2025-10-10T09:00"))

    session.add_all(
        [
            ChatClosure(
                chat_id=chat.id, reason="r", requested_by="user:1", status=ClosureStatus.CLOSED,
                grace_until=utc("2026-02-01T09:00"), closed_at=utc("2026-02-01T10:00"),
            ),
            ChatClosure(
                chat_id=their_chat.id, reason="r", requested_by="user:1",
                status=ClosureStatus.CLOSED, grace_until=utc("2026-02-01T09:00"),
                closed_at=utc("2026-02-02T10:00"),
            ),
            ChatClosure(
                chat_id=chat.id, reason="r", requested_by="user:1",
                status=ClosureStatus.CANCELLED, grace_until=utc("2026-03-01T09:00"),
            ),
        ]
    )  # fmt: skip
    await session.flush()
    return school


async def test_the_annual_review_counts_a_year_of_flags(sessions: Sessions) -> None:
    async with transaction(sessions) as session:
        school = await a_year_of_flags(session)
        report = await reports.annual_report(session, school, 2025, NOW)

    assert (report.label, report.starts, report.ends) == ("2025/26", date(2025, 9, 1),
                                                          date(2026, 8, 31))  # fmt: skip
    assert report.complete
    months = report.flags_by_month
    assert (months.months[0], months.months[-1]) == ("2025-09", "2026-08")
    assert months.flags == (1, 1, 0, 1, 0, 0, 1, 0, 1, 1, 0, 0)
    assert months.total == 6
    counts = {series.rule: series.counts for series in months.rules}
    assert counts["staff-contact"] == (1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    assert counts["out-of-hours"] == (0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    assert counts["abusive-to-parent"] == (0, 0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0)
    assert sum(counts["images-consent"]) == 0  # every rule is listed, broken or not
    assert [series.rule for series in months.rules][:2] == ["abusive-to-parent",
                                                            "abusive-about-others"]  # fmt: skip

    every = report.all_decisions
    assert (every.confirmed, every.not_a_breach, every.escalated, every.still_open) == (2, 1, 1, 2)
    assert every.false_positive_rate == pytest.approx(0.25)
    by_rule = {d.rule: d for d in report.decisions}
    assert by_rule["staff-contact"].false_positive_rate == pytest.approx(0.5)
    assert by_rule["disrepute"].false_positive_rate is None  # nothing decided yet
    assert by_rule["disrepute"].still_open == 1

    # Acknowledged after 5, 10, 30, 60 and 120 minutes.
    assert report.acknowledgement.acknowledged == 5
    assert report.acknowledgement.median_minutes == pytest.approx(30)
    assert report.acknowledgement.p90_minutes == pytest.approx(120)
    assert report.unacknowledged_alerts == 1

    assert [(c.title, c.closed_on) for c in report.chats_closed] == [
        ("Year 3 Parents", date(2026, 2, 1))
    ]
    assert [(c.title, c.agreed, c.members) for c in report.consent] == [("Year 3 Parents", 1, 2)]


async def test_the_summary_says_it_in_plain_english(sessions: Sessions) -> None:
    async with transaction(sessions) as session:
        school = await a_year_of_flags(session)
        report = await reports.annual_report(session, school, 2025, NOW)
        summary = report.summary
        running = await reports.annual_report(session, school, 2026, NOW)

    assert summary.startswith("In 2025/26 (1 September 2025 to 31 August 2026), Schoolgate")
    assert "flagged 6 messages" in summary
    assert "“Abusive to parent” and “Staff contact” (2 times each)" in summary
    assert "Of the 4 flags decided, 1 (25%) was found not to be a breach" in summary
    assert "1 was escalated to the Designated Safeguarding Lead" in summary
    assert "median of 30 min, and 9 in 10 within 2 h" in summary
    assert "1 high-severity alert from this year has not been acknowledged" in summary
    assert "1 chat was closed." in summary
    assert "Today, 1 of 2 members (50%) across 1 chat have agreed" in summary
    no_mistakes = replace(report, all_decisions=replace(report.all_decisions, not_a_breach=0))
    assert "Of the 3 flags decided, none was found not to be a breach" in reports.summarise(
        no_mistakes
    )
    assert running.summary.startswith("So far in 2026/27 (from 1 September 2026)")
    assert not running.complete
    assert "flagged 1 message." in running.summary


async def test_a_year_not_yet_started_is_refused(sessions: Sessions) -> None:
    async with transaction(sessions) as session:
        school = await a_school(session)
        with pytest.raises(BadInputError, match="2027/28 has not started"):
            await reports.annual_report(session, school, 2027, NOW)


async def test_the_years_to_report_on_run_from_the_first_flag_to_now(sessions: Sessions) -> None:
    async with transaction(sessions) as session:
        school = await a_year_of_flags(session)
        assert await reports.report_years(session, school, NOW) == [2026, 2025, 2024]


async def test_the_csv_has_every_section_and_defuses_formulas(sessions: Sessions) -> None:
    async with transaction(sessions) as session:
        school = await a_year_of_flags(session)
        chat = await a_chat(session, school, platform_chat_id="-1003", title="=HYPERLINK(1)")
        assert chat.title.startswith("=")
        text = await reports.export_annual_csv(session, school, 2025, "user:7", NOW)
        events = await AuditRepository(session).listing(
            school.id, AuditFilter(action_prefix="report."), 10
        )
    rows = list(csv.reader(io.StringIO(text)))
    firsts = [row[0] for row in rows if row]
    for section in ("Summary", "Flags by rule and month", "Decisions by rule",
                    "Time to acknowledge", "Chats closed", "Consent coverage now"):  # fmt: skip
        assert section in firsts
    by_month = ["1", "1", "0", "1", "0", "0", "1", "0", "1", "1", "0", "0"]
    assert ["all", "All flags", *by_month, "6"] in rows
    assert ["Median (minutes)", "30.0"] in rows
    assert ["'=HYPERLINK(1)", "Year 3", "0", "0"] in rows
    assert [(e.actor, e.action, e.subject) for e in events] == [
        ("user:7", "report.exported", "report:annual:2025")
    ]


async def test_alerts_not_acknowledged_are_high_flags_the_school_heard_of_at_once(
    sessions: Sessions,
) -> None:
    async with transaction(sessions) as session:
        school = await a_school(session)
        school.settings = {
            "rules": {"disrepute": {"alert": "now"}, "abusive-to-parent": {"alert": "none"}}
        }
        chat = await a_chat(session, school)
        parent = await a_member(session, chat)
        for rule, severity in (
            ("abusive-to-parent", "high"),  # only in the flag queue: never an alert
            ("abusive-about-others", "high"),  # high, so at once by default
            ("disrepute", "medium"),  # at once, but not a high-severity alert
        ):
            await a_flag(session, chat, parent, at=utc("2026-03-10T09:00"), rules=(rule,),
                         severity=severity)  # fmt: skip
        # Last year's alert is not this year's.
        await a_flag(session, chat, parent, at=utc("2025-03-10T09:00"), severity="high",
                     rules=("abusive-about-others",))  # fmt: skip
        report = await reports.annual_report(session, school, 2025, NOW)

    assert report.unacknowledged_alerts == 1
    assert "1 high-severity alert from this year has not been acknowledged" in report.summary


def test_durations_read_as_a_person_says_them() -> None:
    assert reports.duration_text(None) == "—"
    assert reports.duration_text(0.2) == "under a minute"
    assert reports.duration_text(25) == "25 min"
    assert reports.duration_text(120) == "2 h"
    assert reports.duration_text(190) == "3 h 10 min"
    assert reports.duration_text(60 * 24) == "1 day"
    assert reports.duration_text(60 * 52) == "2 days 4 h"


def test_the_90th_percentile_is_the_nearest_rank() -> None:
    assert reports.nearest_rank([], 90) is None
    assert reports.nearest_rank([7.0], 90) == 7.0
    assert reports.nearest_rank([float(n) for n in range(1, 11)], 90) == 9.0
    assert reports.nearest_rank([float(n) for n in range(1, 12)], 90) == 10.0


def test_academic_years_start_on_1_september_school_time() -> None:
    assert reports.academic_year_of(utc("2025-08-31T23:30"), LONDON) == 2025  # 00:30 BST
    assert reports.academic_year_of(utc("2025-08-31T22:30"), LONDON) == 2024
    assert (reports.year_label(2025), reports.year_label(2099)) == ("2025/26", "2099/00")
