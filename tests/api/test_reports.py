"""The annual review (GET /reports, /reports/annual, /reports/annual.csv and
/api/reports/annual), on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from bot.store.db import transaction
from bot.store.models import AuditEvent, ChatClosure, ClosureStatus, FlagStatus, School, UserRole
from tests.api.conftest import SignIn
from tests.api.support import Sessions
from tests.factories import a_chat, a_member, another_school
from tests.report_rows import a_flag

pytestmark = pytest.mark.anyio
MINUTE = timedelta(minutes=1)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


async def year_2025(sessions: Sessions, school: School, title: str = "Year 4 Parents") -> None:
    """Four flags in 2025/26 (one not a breach of three decided), and a chat closed."""
    async with transaction(sessions) as session:
        chat = await a_chat(session, school, platform_chat_id=f"-4{school.id}", title=title)
        parent = await a_member(session, chat, name="Becky Sutton")
        await a_flag(session, chat, parent, at=utc("2025-09-10T09:00"),
                     status=FlagStatus.CONFIRMED, acknowledged_after=20 * MINUTE)  # fmt: skip
        await a_flag(session, chat, parent, at=utc("2025-09-11T09:00"),
                     status=FlagStatus.FALSE_POSITIVE, acknowledged_after=40 * MINUTE)  # fmt: skip
        await a_flag(session, chat, parent, at=utc("2026-01-20T09:00"), severity="high",
                     rules=("abusive-to-parent", "harassment-campaign"),
                     status=FlagStatus.CONFIRMED, acknowledged_after=90 * MINUTE)  # fmt: skip
        await a_flag(session, chat, parent, at=utc("2026-04-02T09:00"), severity="high",
                     rules=("abusive-to-parent",))  # fmt: skip
        session.add(
            ChatClosure(
                chat_id=chat.id,
                reason="r",
                requested_by="user:1",
                status=ClosureStatus.CLOSED,
                grace_until=utc("2026-05-01T09:00"),
                closed_at=utc("2026-05-02T09:00"),
            )
        )


def sections(text: str) -> dict[str, list[list[str]]]:
    """The CSV's sections by name: each starts with its name and ends at an empty row."""
    found: dict[str, list[list[str]]] = {}
    current: list[list[str]] | None = None
    for row in csv.reader(io.StringIO(text)):
        if not row:
            current = None
        elif current is None:
            current = found.setdefault(row[0], [])
        else:
            current.append(row)
    return found


async def test_the_csv_matches_the_json(
    sign_in: SignIn, sessions: Sessions, seeded_school: School
) -> None:
    await year_2025(sessions, seeded_school)
    viewer = await sign_in(UserRole.VIEWER)
    report: dict[str, Any] = (await viewer.get("/api/reports/annual?year=2025")).json()
    response = await viewer.get("/reports/annual.csv?year=2025")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == (
        'attachment; filename="schoolgate-annual-review-2025-26.csv"'
    )
    parts = sections(response.content.decode("utf-8-sig"))

    assert parts["Summary"] == [[report["summary"]]]
    by_month = parts["Flags by rule and month"]
    assert by_month[0][:3] == ["Rule id", "Rule", "Sep 2025"]
    assert by_month[0][-1] == "Total"
    months = report["flags_by_month"]
    expected = [
        [s["rule"], s["label"], *map(str, s["counts"]), str(sum(s["counts"]))]
        for s in months["rules"]
    ]
    assert by_month[1:] == [*expected, ["all", "All flags", *map(str, months["flags"]), "4"]]
    assert months["flags"] == [2, 0, 0, 0, 1, 0, 0, 1, 0, 0, 0, 0]

    decided = {row[0]: row[2:] for row in parts["Decisions by rule"][1:]}
    every = report["all_decisions"]
    assert every["false_positive_rate"] == pytest.approx(1 / 3)
    assert decided["all"] == [
        str(every["confirmed"]), str(every["not_a_breach"]), str(every["escalated"]),
        str(every["still_open"]), "33.3",
    ]  # fmt: skip
    assert decided["abusive-to-parent"] == ["1", "0", "0", "1", "0.0"]
    assert decided["disrepute"] == ["0", "0", "0", "0", ""]

    ack = report["acknowledgement"]
    assert (ack["acknowledged"], ack["median_minutes"], ack["p90_minutes"]) == (3, 40, 90)
    assert parts["Time to acknowledge"] == [
        ["Flags acknowledged", "3"], ["Median (minutes)", "40.0"],
        ["90th percentile (minutes)", "90.0"], ["High-severity alerts not acknowledged", "1"],
    ]  # fmt: skip
    assert report["unacknowledged_alerts"] == 1
    assert parts["Chats closed"] == [["Chat", "Closed on"], ["Year 4 Parents", "2026-05-02"]]
    assert parts["Consent coverage now"] == [
        ["Chat", "Class", "Agreed", "Members"], ["Year 4 Parents", "Year 3", "0", "1"]
    ]  # fmt: skip
    assert [c["title"] for c in report["chats_closed"]] == ["Year 4 Parents"]
    assert "Becky Sutton" not in response.text
    assert "never show" not in response.text


async def test_exporting_the_csv_is_audited(
    sign_in: SignIn, sessions: Sessions, seeded_school: School
) -> None:
    viewer = await sign_in(UserRole.VIEWER)
    await viewer.get("/reports/annual?year=2025")
    await viewer.get("/api/reports/annual?year=2025")
    assert (await viewer.get("/reports/annual.csv?year=2025")).status_code == 200
    async with transaction(sessions) as session:
        found = list(
            await session.scalars(select(AuditEvent).where(AuditEvent.action.like("report.%")))
        )
    assert [(e.actor, e.action, e.subject, e.school_id, e.details["format"]) for e in found] == [
        (f"user:{viewer.user.id}", "report.exported", "report:annual:2025", seeded_school.id,
         "csv")
    ]  # fmt: skip


async def test_a_viewer_reads_the_printable_report(
    sign_in: SignIn, sessions: Sessions, seeded_school: School
) -> None:
    await year_2025(sessions, seeded_school, title="Year 4 <Parents>")
    viewer = await sign_in(UserRole.VIEWER)
    index = await viewer.get("/reports")
    assert index.status_code == 200
    for year in ("2026/27", "2025/26"):
        assert year in index.text
    assert 'href="/reports/annual.csv?year=2025"' in index.text

    page = await viewer.get("/reports/annual?year=2025")
    assert page.status_code == 200
    text = page.text
    assert "<h1>Annual review 2025/26</h1>" in text
    assert "In 2025/26 (1 September 2025 to 31 August 2026), Schoolgate flagged 4 messages." in text
    assert '<abbr title="September 2025">Sep</abbr>' in text
    assert 'role="img"' in text  # the chart
    assert "33%" in text  # the false-positive rate
    assert "Year 4 &lt;Parents&gt;" in text
    assert "Becky Sutton" not in text
    assert 'class="actions no-print"' in text


async def test_another_schools_flags_are_not_in_the_report(
    sign_in: SignIn, sessions: Sessions, seeded_school: School
) -> None:
    async with transaction(sessions) as session:
        elsewhere = await another_school(session)
    await year_2025(sessions, elsewhere, title="Their chat")
    report = (await (await sign_in(UserRole.SLT)).get("/api/reports/annual?year=2025")).json()
    assert report["flags_by_month"]["total"] == 0
    assert report["chats_closed"] == []
    assert report["consent"] == []
    theirs = await sign_in(UserRole.SLT, at=elsewhere)
    assert (await theirs.get("/api/reports/annual?year=2025")).json()["flags_by_month"][
        "total"
    ] == 4


async def test_the_year_is_checked(sign_in: SignIn) -> None:
    viewer = await sign_in(UserRole.VIEWER)
    years = (await viewer.get("/api/reports")).json()
    current = years[0]["year"]
    assert years[0]["label"] == f"{current}/{(current + 1) % 100:02d}"
    assert (await viewer.get("/api/reports/annual")).json()["year"] == current
    later = await viewer.get(f"/api/reports/annual?year={current + 1}")
    assert later.status_code == 400
    assert "has not started yet" in later.json()["detail"]
    assert (await viewer.get(f"/reports/annual?year={current + 1}")).status_code == 400
    assert (await viewer.get(f"/reports/annual.csv?year={current + 1}")).status_code == 400
    assert (await viewer.get("/api/reports/annual?year=1999")).status_code == 422
    assert (await viewer.get("/api/reports/annual?year=next")).status_code == 422


async def test_reports_need_signing_in(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/reports/annual?year=2025")).status_code == 401
    response = await client.get("/reports/annual.csv?year=2025")
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login")
