"""The dashboard's figures (bot.services.dashboard), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.services import dashboard
from bot.store.db import transaction
from bot.store.models import FlagStatus
from tests.factories import NOW, a_chat, a_member, a_school
from tests.report_rows import a_flag

pytestmark = pytest.mark.anyio
Sessions = async_sessionmaker[AsyncSession]


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


async def test_the_dashboard_buckets_weeks_in_the_schools_time(sessions: Sessions) -> None:
    async with transaction(sessions) as session:
        school = await a_school(session)
        chat = await a_chat(session, school)
        parent = await a_member(session, chat)
        # NOW is Tuesday 24 November 2026; the 12 weeks start on Monday 7 September.
        for at in (
            "2026-09-06T22:00",  # Sunday 23:00 BST: before the first week
            "2026-09-06T23:30",  # Monday 00:30 BST: the first week
            "2026-10-18T23:30",  # Monday 19 October 00:30 BST (Sunday in UTC)
            "2026-11-22T23:30",  # Sunday 22 November 23:30 GMT: last week
            "2026-11-23T00:30",  # Monday 23 November: this week
        ):
            await a_flag(session, chat, parent, at=utc(at))
        await a_flag(
            session, chat, parent, at=utc("2026-11-24T09:00"), rules=("disrepute",),
            severity="medium",
        )  # fmt: skip
        board = await dashboard.dashboard(
            session, school, NOW, safeguarding=False, itemise_alerts=True
        )

    weekly = board.weekly
    assert (weekly.weeks[0], weekly.weeks[-1]) == (date(2026, 9, 7), date(2026, 11, 23))
    assert len(weekly.weeks) == 12
    assert weekly.flags == (1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 2)
    assert [(s.rule, sum(s.counts)) for s in weekly.rules] == [
        ("staff-contact", 4), ("disrepute", 1)
    ]  # fmt: skip
    assert board.open_flags == dashboard.OpenFlags(high=0, medium=1, low=5, safeguarding=None)
    assert board.time_zone == "Europe/London"


async def test_safeguarding_flags_count_only_for_the_dsl(sessions: Sessions) -> None:
    async with transaction(sessions) as session:
        school = await a_school(session)
        chat = await a_chat(session, school)
        parent = await a_member(session, chat)
        await a_flag(session, chat, parent, at=NOW - timedelta(hours=3), severity="high",
                     rules=("abusive-to-parent",))  # fmt: skip
        await a_flag(session, chat, parent, at=NOW - timedelta(hours=2), severity="high",
                     rules=("confidential-info",), status=FlagStatus.ESCALATED,
                     safeguarding=True)  # fmt: skip
        await a_flag(session, chat, parent, at=NOW - timedelta(hours=1), severity="high",
                     rules=("confidential-info",), safeguarding=True)  # fmt: skip
        await a_flag(session, chat, parent, at=NOW - timedelta(hours=1), severity="low",
                     status=FlagStatus.CONFIRMED)  # fmt: skip
        slt = await dashboard.dashboard(session, school, NOW, safeguarding=False,
                                      itemise_alerts=True)  # fmt: skip
        dsl = await dashboard.dashboard(session, school, NOW, safeguarding=True,
                                      itemise_alerts=True)  # fmt: skip
        admin = await dashboard.dashboard(session, school, NOW, safeguarding=False,
                                        itemise_alerts=False)  # fmt: skip

    assert slt.open_flags == dashboard.OpenFlags(high=1, medium=0, low=0, safeguarding=None)
    assert dsl.open_flags == dashboard.OpenFlags(high=1, medium=0, low=0, safeguarding=2)
    assert (sum(slt.weekly.flags), sum(dsl.weekly.flags)) == (2, 4)
    assert "confidential-info" not in {s.rule for s in slt.weekly.rules}
    assert slt.alerts_waiting.count == 1
    assert [a.waited_minutes for a in slt.alerts_waiting.alerts] == [180]
    assert dsl.alerts_waiting.count == 2  # the escalated one is no longer "open"
    assert [a.rules for a in dsl.alerts_waiting.alerts] == [("abusive-to-parent",),
                                                            ("confidential-info",)]  # fmt: skip
    assert (admin.alerts_waiting.count, admin.alerts_waiting.alerts) == (1, ())
    assert admin.alerts_waiting.oldest_waited_minutes == 180


async def test_the_alerts_waiting_are_the_flags_the_school_hears_of_at_once(
    sessions: Sessions, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with transaction(sessions) as session:
        school = await a_school(session)
        # The school's own timing, not the severity, says what was alerted at once.
        school.settings = {
            "rules": {"disrepute": {"alert": "now"}, "abusive-to-parent": {"alert": "none"}}
        }
        chat = await a_chat(session, school)
        parent = await a_member(session, chat)
        medium_now = await a_flag(session, chat, parent, at=NOW - timedelta(hours=2),
                                  severity="medium", rules=("disrepute",))  # fmt: skip
        await a_flag(session, chat, parent, at=NOW - timedelta(hours=3), severity="high",
                     rules=("abusive-to-parent",))  # fmt: skip
        high_by_default = await a_flag(
            session, chat, parent, at=NOW - timedelta(hours=1), severity="high",
            rules=("abusive-about-others",),
        )  # fmt: skip
        await a_flag(session, chat, parent, at=NOW - timedelta(hours=4))  # low: the digest
        board = await dashboard.dashboard(session, school, NOW, safeguarding=False,
                                          itemise_alerts=True)  # fmt: skip
        monkeypatch.setattr(dashboard, "WAITING_SHOWN", 1)
        capped = await dashboard.dashboard(session, school, NOW, safeguarding=False,
                                           itemise_alerts=True)  # fmt: skip

    waiting = board.alerts_waiting
    assert waiting.count == 2
    assert [a.flag_id for a in waiting.alerts] == [medium_now.id, high_by_default.id]
    assert waiting.oldest_waited_minutes == 120
    assert board.open_flags == dashboard.OpenFlags(high=2, medium=1, low=1, safeguarding=None)
    # Only the oldest are listed, but all are counted.
    assert capped.alerts_waiting.count == 2
    assert [a.flag_id for a in capped.alerts_waiting.alerts] == [medium_now.id]
