"""The dashboard (GET / and GET /api/dashboard), on SQLite and PostgreSQL."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import timedelta

import httpx
import pytest

from bot.services import consent
from bot.store.db import transaction
from bot.store.models import FlagStatus, InboxItem, InboxStatus, School, UserRole, utcnow
from tests.api.conftest import SignIn
from tests.api.support import Sessions
from tests.factories import NOW, a_chat, a_member, another_school
from tests.report_rows import a_flag

pytestmark = pytest.mark.anyio


async def some_flags(sessions: Sessions, school: School) -> dict[str, int]:
    """Open flags of each severity, a decided one, an escalated one, and three of four
    members of the chat agreed. Returns the ids of the flags that matter, and the chat's."""
    now = utcnow()
    async with transaction(sessions) as session:
        chat = await a_chat(session, school, title="Year 3 <Parents>")
        chat.member_count = 4
        parent = await a_member(session, chat)
        for number in ("601", "602", "603"):
            await consent.give(
                session, chat, await a_member(session, chat, user_id=number), "button", NOW
            )
        waiting = await a_flag(
            session, chat, parent, at=now - timedelta(hours=2), severity="high",
            rules=("abusive-to-parent",),
        )  # fmt: skip
        await a_flag(
            session, chat, parent, at=now - timedelta(hours=5), severity="high",
            rules=("abusive-to-parent",), status=FlagStatus.ACKNOWLEDGED,
            acknowledged_after=timedelta(minutes=3),
        )  # fmt: skip
        await a_flag(session, chat, parent, at=now - timedelta(days=3), severity="medium",
                     rules=("disrepute",))  # fmt: skip
        await a_flag(session, chat, parent, at=now - timedelta(days=20))
        await a_flag(session, chat, parent, at=now - timedelta(days=30),
                     status=FlagStatus.CONFIRMED)  # fmt: skip
        guarded = await a_flag(
            session, chat, parent, at=now - timedelta(hours=1), severity="high",
            rules=("confidential-info",), status=FlagStatus.ESCALATED, safeguarding=True,
        )  # fmt: skip
        return {"waiting": waiting.id, "guarded": guarded.id, "chat": chat.id}


async def test_the_dashboard_counts_what_is_open(
    sign_in: SignIn, sessions: Sessions, seeded_school: School
) -> None:
    ids = await some_flags(sessions, seeded_school)
    slt = await sign_in(UserRole.SLT)
    board = (await slt.get("/api/dashboard")).json()

    assert board["open_flags"] == {"high": 2, "medium": 1, "low": 1, "safeguarding": None}
    assert sum(board["weekly"]["flags"]) == 5  # the escalated one is the DSL's
    assert len(board["weekly"]["weeks"]) == 12
    assert {rule["rule"] for rule in board["weekly"]["rules"]} == {
        "abusive-to-parent", "disrepute", "staff-contact"
    }  # fmt: skip
    assert board["chats"] == [
        {"chat_id": ids["chat"], "title": "Year 3 <Parents>",
         "class_name": "Year 3", "agreed": 3, "members": 4}
    ]  # fmt: skip
    waiting = board["alerts_waiting"]
    assert waiting["count"] == 1
    assert [alert["flag_id"] for alert in waiting["alerts"]] == [ids["waiting"]]
    assert 119 <= waiting["oldest_waited_minutes"] <= 121
    assert board["time_zone"] == "Europe/London"


async def test_safeguarding_flags_are_counted_only_for_the_dsl(
    sign_in: SignIn, sessions: Sessions, seeded_school: School
) -> None:
    await some_flags(sessions, seeded_school)
    dsl = await sign_in(UserRole.DSL)
    board = (await dsl.get("/api/dashboard")).json()
    assert board["open_flags"] == {"high": 2, "medium": 1, "low": 1, "safeguarding": 1}
    assert sum(board["weekly"]["flags"]) == 6
    page = (await dsl.get("/")).text
    assert "Safeguarding</span>" in page

    slt_page = (await (await sign_in(UserRole.SLT)).get("/")).text
    assert "Safeguarding</span>" not in slt_page
    assert "Confidential info" not in slt_page


async def test_the_page_draws_the_chart_and_the_chats(
    sign_in: SignIn, sessions: Sessions, seeded_school: School
) -> None:
    ids = await some_flags(sessions, seeded_school)
    response = await (await sign_in(UserRole.SLT)).get("/")
    assert response.status_code == 200
    page = response.text
    svg = re.search(r'<svg xmlns="http://www.w3.org/2000/svg" viewBox.*?</svg>', page, re.S)
    assert svg is not None
    assert ET.fromstring(svg.group(0)).get("role") == "img"
    assert 'class="chart-legend"' in page
    assert "<details>" in page
    assert "<table>" in page.split("<details>")[1]
    assert "Year 3 &lt;Parents&gt;" in page  # escaped
    assert "3 of 4 agreed" in page
    assert f'href="/flags/{ids["waiting"]}"' in page


async def test_an_admin_sees_how_many_alerts_wait_but_no_links(
    sign_in: SignIn, sessions: Sessions, seeded_school: School
) -> None:
    ids = await some_flags(sessions, seeded_school)
    admin = await sign_in(UserRole.ADMIN)
    waiting = (await admin.get("/api/dashboard")).json()["alerts_waiting"]
    assert (waiting["count"], waiting["alerts"]) == (1, [])
    page = (await admin.get("/")).text
    assert "/flags/" not in page
    assert f"Flag #{ids['waiting']}" not in page
    assert "The oldest has waited" in page


async def test_another_schools_flags_are_not_counted(
    sign_in: SignIn, sessions: Sessions, seeded_school: School
) -> None:
    async with transaction(sessions) as session:
        elsewhere = await another_school(session)
    await some_flags(sessions, elsewhere)
    board = (await (await sign_in(UserRole.DSL)).get("/api/dashboard")).json()
    assert board["open_flags"] == {"high": 0, "medium": 0, "low": 0, "safeguarding": 0}
    assert sum(board["weekly"]["flags"]) == 0
    assert board["chats"] == []
    assert board["alerts_waiting"]["count"] == 0
    page = (await (await sign_in(UserRole.SLT)).get("/")).text
    assert "No flags in these weeks" in page


async def test_a_viewer_goes_to_the_reports(sign_in: SignIn) -> None:
    viewer = await sign_in(UserRole.VIEWER)
    response = await viewer.get("/")
    assert response.status_code == 303
    assert response.headers["location"] == "/reports"
    assert (await viewer.get("/api/dashboard")).status_code == 403


async def test_someone_not_signed_in_is_asked_to(client: httpx.AsyncClient) -> None:
    response = await client.get("/")
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login")
    assert (await client.get("/api/dashboard")).status_code == 401


async def test_administrators_see_the_updates_set_aside_and_reviewers_do_not(
    sign_in: SignIn, sessions: Sessions, seeded_school: School
) -> None:
    now = utcnow()
    async with transaction(sessions) as session:
        session.add_all(
            [
                InboxItem(platform="telegram", update_id=901, status=InboxStatus.FAILED,
                          received_at=now - timedelta(hours=1), attempts=3,
                          error="RuntimeError: a bug in a handler"),
                InboxItem(platform="telegram", update_id=902, status=InboxStatus.FAILED,
                          received_at=now - timedelta(days=9), attempts=3, error="old"),
                InboxItem(platform="telegram", update_id=903, status=InboxStatus.PROCESSED,
                          received_at=now, attempts=1),
            ]
        )  # fmt: skip
    admin = await sign_in(UserRole.ADMIN)
    aside = (await admin.get("/api/dashboard")).json()["set_aside"]
    assert (aside["count"], [u["update_id"] for u in aside["recent"]]) == (1, [901])
    assert aside["recent"][0]["error"] == "RuntimeError: a bug in a handler"
    page = (await admin.get("/")).text
    assert "Updates set aside" in page
    assert "Telegram update 901" in page

    slt = await sign_in(UserRole.SLT)
    assert (await slt.get("/api/dashboard")).json()["set_aside"] is None
    assert "Updates set aside" not in (await slt.get("/")).text
