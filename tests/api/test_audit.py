"""The audit log (GET /audit and GET /api/audit), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import DBAPIError

from bot.store.db import transaction
from bot.store.models import AuditEvent, School, StaffMember, UserRole
from tests.api.conftest import SignIn
from tests.api.support import Browser, Sessions
from tests.factories import NOW, a_chat, a_member, another_school
from tests.report_rows import a_flag

pytestmark = pytest.mark.anyio


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


async def events(
    sessions: Sessions, school: School, *rows: tuple[str, str, str], at: datetime | None = None,
    **details: Any,
) -> None:  # fmt: skip
    """Audit events (actor, action, subject) recorded in this order, a second apart."""
    start = at or datetime.now(UTC) - timedelta(hours=1)
    async with transaction(sessions) as session:
        for number, (actor, action, subject) in enumerate(rows):
            session.add(
                AuditEvent(
                    school_id=school.id,
                    actor=actor,
                    action=action,
                    subject=subject,
                    details=details,
                    created_at=start + timedelta(seconds=number),
                )
            )


async def listed(browser: Browser, query: str = "") -> list[dict[str, Any]]:
    response = await browser.get(f"/api/audit{query}")
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["events"]
    return found


async def head_of(sessions: Sessions, school: School) -> StaffMember:
    async with transaction(sessions) as session:
        found = await session.scalar(
            select(StaffMember).where(
                StaffMember.school_id == school.id, StaffMember.name == "Mrs Anita Patel"
            )
        )
        assert found is not None
        return found


async def test_newest_first_with_each_actor_named(
    sign_in: SignIn, sessions: Sessions, seeded_school: School
) -> None:
    slt = await sign_in(UserRole.SLT)
    head = await head_of(sessions, seeded_school)
    await events(
        sessions, seeded_school,
        (f"user:{slt.user.id}", "flag.viewed", "flag:12"),
        ("system", "flag.raised", "flag:13"),
        ("cli", "school.loaded", f"school:{seeded_school.id}"),
        ("telegram:user:77", "consent.given", "member:4"),
        (f"staff:{head.id}", "flag.acknowledged", "flag:12"),
    )  # fmt: skip
    found = await listed(slt)
    # Signing in and seeding the school are in the log too.
    mine = [e for e in found if not e["action"].startswith("account.") and e["actor"] != "test"]
    assert [(e["actor"], e["actor_name"], e["action"]) for e in mine] == [
        (f"staff:{head.id}", "Mrs Anita Patel (Telegram)", "flag.acknowledged"),
        ("telegram:user:77", "telegram:user:77", "consent.given"),
        ("cli", "Command line", "school.loaded"),
        ("system", "Schoolgate", "flag.raised"),
        (f"user:{slt.user.id}", "Test SLT", "flag.viewed"),
    ]
    assert [e["id"] for e in found] == sorted((e["id"] for e in found), reverse=True)

    page = (await slt.get("/audit")).text
    assert "Mrs Anita Patel (Telegram)" in page
    assert "<code>flag.viewed</code>" in page
    assert 'href="/audit?subject=flag%3A12"' in page
    assert "Test SLT" in page
    assert '<option value="telegram:user:77"' not in page  # parents are not offered as choices
    by_parent = (await slt.get("/audit?actor=telegram:user:77")).text
    assert '<option value="telegram:user:77" selected>' in by_parent
    assert "<code>consent.given</code>" in by_parent
    assert "<code>flag.viewed</code>" not in by_parent


async def test_filters_by_actor_action_subject_and_day(
    sign_in: SignIn, sessions: Sessions, seeded_school: School
) -> None:
    slt = await sign_in(UserRole.SLT)
    await events(
        sessions, seeded_school,
        ("system", "flag.raised", "flag:1"),
        ("user:999", "flag.confirmed", "flag:1"),
        ("system", "flags_report.sent", "school:1"),
        ("system", "closure.requested", "chat:3"),
    )  # fmt: skip
    # 23:30 UTC on 1 June is 00:30 on 2 June in London.
    await events(sessions, seeded_school, ("cli", "day.one", ""), at=utc("2026-06-01T12:00"))
    await events(sessions, seeded_school, ("cli", "day.two", ""), at=utc("2026-06-01T23:30"))

    def actions(found: list[dict[str, Any]]) -> list[str]:
        return [e["action"] for e in found]

    assert actions(await listed(slt, "?action=flag.")) == ["flag.confirmed", "flag.raised"]
    assert actions(await listed(slt, "?actor=system&action=flag")) == [
        "flags_report.sent", "flag.raised"
    ]  # fmt: skip
    assert actions(await listed(slt, "?subject=flag:1")) == ["flag.confirmed", "flag.raised"]
    assert actions(await listed(slt, "?action=flag_")) == []  # "_" is a character, not a wildcard
    day = await listed(slt, "?date_from=2026-06-01&date_to=2026-06-01")
    assert actions(day) == ["day.one"]
    assert actions(await listed(slt, "?date_from=2026-06-02&action=day.")) == ["day.two"]

    page = await slt.get("/audit?actor=cli&action=day.&date_from=2026-06-02&date_to=")
    assert page.status_code == 200
    assert "<code>day.two</code>" in page.text
    assert "<code>day.one</code>" not in page.text
    assert '<option value="cli" selected>' in page.text


async def test_a_hundred_a_page(sign_in: SignIn, sessions: Sessions, seeded_school: School) -> None:
    slt = await sign_in(UserRole.SLT)
    await events(sessions, seeded_school, *[("system", "bulk.test", f"n:{n}") for n in range(105)])
    first = (await slt.get("/api/audit?action=bulk.")).json()
    assert len(first["events"]) == 100
    assert first["events"][0]["subject"] == "n:104"
    older = (await slt.get(f"/api/audit?action=bulk.&before={first['older_than']}")).json()
    assert [e["subject"] for e in older["events"]] == [f"n:{n}" for n in range(4, -1, -1)]
    assert older["older_than"] is None

    page = (await slt.get("/audit?action=bulk.")).text
    assert f'href="/audit?action=bulk.&amp;before={first["older_than"]}">Older' in page


async def test_another_schools_events_never_appear(
    sign_in: SignIn, sessions: Sessions, seeded_school: School
) -> None:
    async with transaction(sessions) as session:
        elsewhere = await another_school(session)
    await events(sessions, elsewhere, ("system", "secret.elsewhere", "flag:1"))
    await events(sessions, seeded_school, ("system", "ours.here", "flag:1"))
    slt = await sign_in(UserRole.SLT)
    assert [e["action"] for e in await listed(slt, "?subject=flag:1")] == ["ours.here"]
    assert await listed(slt, "?action=secret.") == []
    assert "secret.elsewhere" not in (await slt.get("/audit")).text

    theirs = await sign_in(UserRole.SLT, at=elsewhere)
    assert [e["action"] for e in await listed(theirs, "?subject=flag:1")] == ["secret.elsewhere"]


async def test_a_safeguarding_matters_details_are_for_the_dsl(
    sign_in: SignIn, sessions: Sessions, seeded_school: School
) -> None:
    async with transaction(sessions) as session:
        chat = await a_chat(session, seeded_school)
        parent = await a_member(session, chat)
        guarded = await a_flag(session, chat, parent, at=NOW, safeguarding=True)
        plain = await a_flag(session, chat, parent, at=NOW)
    await events(
        sessions, seeded_school, ("user:5", "flag.escalated", f"flag:{guarded.id}"),
        reason="a private family matter",
    )  # fmt: skip
    await events(
        sessions, seeded_school, ("user:5", "flag.confirmed", f"flag:{plain.id}"), reason="rude"
    )
    slt = await sign_in(UserRole.SLT)
    found = {e["action"]: e for e in await listed(slt, "?action=flag.")}
    assert (found["flag.escalated"]["withheld"], found["flag.escalated"]["details"]) == (True, {})
    assert found["flag.confirmed"]["details"] == {"reason": "rude"}
    page = (await slt.get("/audit")).text
    assert "a private family matter" not in page
    assert "the details are for the Designated Safeguarding Lead" in page

    dsl = await sign_in(UserRole.DSL)
    found = {e["action"]: e for e in await listed(dsl, "?action=flag.")}
    assert found["flag.escalated"]["details"] == {"reason": "a private family matter"}
    assert "a private family matter" in (await dsl.get("/audit")).text


async def test_the_log_cannot_be_changed(
    sign_in: SignIn, sessions: Sessions, seeded_school: School
) -> None:
    slt = await sign_in(UserRole.SLT)
    for method in (slt.put, slt.delete, slt.post):
        assert (await method("/api/audit")).status_code == 405
    assert (await slt.form("/audit", {"action": "x"})).status_code == 405
    await events(sessions, seeded_school, ("system", "kept.as.is", ""))
    with pytest.raises(DBAPIError, match="append-only"):
        async with transaction(sessions) as session:
            await session.execute(
                update(AuditEvent).where(AuditEvent.action == "kept.as.is").values(actor="me")
            )


async def test_bad_filters_are_clear_errors(sign_in: SignIn) -> None:
    slt = await sign_in(UserRole.SLT)
    page = await slt.get("/audit?date_from=24/11/2026")
    assert page.status_code == 400
    assert "should look like 2026-11-24" in page.text
    backwards = await slt.get("/api/audit?date_from=2026-06-02&date_to=2026-06-01")
    assert backwards.status_code == 400
    assert "after" in backwards.json()["detail"]
    assert (await slt.get("/api/audit?date_from=1066-10-14")).status_code == 400
    assert (await slt.get("/api/audit?date_from=soon")).status_code == 422
    assert (await slt.get("/api/audit?before=0")).status_code == 422
    assert (await slt.get(f"/api/audit?before={2**40}")).status_code == 422
    assert (await slt.get(f"/api/audit?actor={'x' * 101}")).status_code == 422
    assert (await (await sign_in(UserRole.VIEWER)).get("/api/audit")).status_code == 403
