"""The School settings page and API: each section saves, is audited, refuses bad input with a
clear 400 that changes nothing, and is always the signed-in person's own school."""

from __future__ import annotations

import re
from collections.abc import Awaitable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from bot.services import consent
from bot.store.db import transaction
from bot.store.models import Chat, ChatMember, OutboxMessage, School, UserRole
from tests.api.conftest import SignIn
from tests.api.support import Sessions, audit_events
from tests.factories import a_chat, a_member, another_school

pytestmark = pytest.mark.anyio


async def school_row(sessions: Sessions, school_id: int) -> School:
    async with sessions() as session:
        school = await session.get(School, school_id)
        assert school is not None
        return school


async def test_the_page_shows_every_section_with_the_installations_defaults(
    sign_in: SignIn,
) -> None:
    admin = await sign_in(UserRole.ADMIN)
    page = await admin.get("/settings")
    assert page.status_code == 200
    for section in ("hours", "closures", "platforms", "notice", "reminders", "retention", "alerts"):
        assert f'id="{section}"' in page.text
    assert "February half term" in page.text
    assert "Installation: 30 days" in page.text
    assert "Installation: 365 days" in page.text
    api = (await admin.get("/api/settings")).json()
    assert api["hours"]["working_hours"]["monday"] == "08:00-17:00"
    assert api["hours"]["working_hours"]["saturday"] == "closed"
    assert api["closures"] == [
        {"from": "2027-02-15", "to": "2027-02-19", "name": "February half term"}
    ]
    assert api["notice"]["own"] is False
    assert api["alerts"]["dsl_rules"] == ["confidential-info", "harassment-campaign"]
    assert {r["rule"] for r in api["reminders"]} == {
        "staff-contact", "out-of-hours", "images-consent", "frequent-contact",
    }  # fmt: skip


async def test_only_those_who_manage_settings_see_them(sign_in: SignIn) -> None:
    slt = await sign_in(UserRole.SLT)
    assert (await slt.get("/settings")).status_code == 403
    assert (await slt.get("/api/settings")).status_code == 403
    assert (await slt.put("/api/settings/retention", json={"flag_days": 30})).status_code == 403


FORMS: list[tuple[str, dict[str, Any], str, str]] = [
    ("/settings/hours", {"monday": "08:30-16:00", "bank_holidays": "wales"},
     "school.updated", "working hours"),
    ("/settings/closures", {"from": "2027-04-05", "to": "2027-04-16", "name": "Easter"},
     "school.updated", "closures"),
    ("/settings/platforms", {"platforms": "the school office\n\nthe parent app\n"},
     "school.updated", "permitted platforms"),
    ("/settings/notice", {"text": "Hello from {school}: we read messages of those who agree."},
     "school.settings_changed", "consent notice"),
    ("/settings/reminders", {"reminder:staff-contact": "Hi {name}, please use {platforms}."},
     "school.settings_changed", "reminders"),
    ("/settings/retention", {"metadata_days": "14", "flag_days": "", "audit_days": "400"},
     "school.settings_changed", "retention"),
    ("/settings/alerts", {"dsl_rules": ["disrepute", "confidential-info"],
                          "escalate_after_minutes": "45", "digest_time": "15:30"},
     "school.settings_changed", "alert routing"),
]  # fmt: skip


@pytest.mark.parametrize(("url", "data", "action", "changed"), FORMS)
async def test_each_section_saves_from_its_form_and_is_audited(
    sign_in: SignIn,
    sessions: Sessions,
    seeded_school: School,
    url: str,
    data: dict[str, Any],
    action: str,
    changed: str,
) -> None:
    admin = await sign_in(UserRole.ADMIN)
    saved = await admin.form(url, data)
    assert saved.status_code == 303, saved.text
    assert saved.headers["location"].startswith("/settings#")
    page = await admin.get(saved.headers["location"])
    assert page.status_code == 200
    assert 'class="notice"' in page.text
    [event] = await audit_events(sessions, action)
    assert (event.actor, event.subject) == (f"user:{admin.user.id}", f"school:{seeded_school.id}")
    assert event.details["changed"] == changed


async def test_the_saved_values_are_what_the_api_shows(sign_in: SignIn) -> None:
    admin = await sign_in(UserRole.ADMIN)
    for url, data, _, _ in FORMS:
        assert (await admin.form(url, data)).status_code == 303
    shown = (await admin.get("/api/settings")).json()
    assert shown["hours"]["working_hours"]["monday"] == "08:30-16:00"
    assert shown["hours"]["working_hours"]["tuesday"] == "closed"  # left blank in the form
    assert shown["hours"]["bank_holidays"] == "wales"
    assert [c["name"] for c in shown["closures"]] == ["February half term", "Easter"]
    assert shown["permitted_platforms"] == ["the school office", "the parent app"]
    assert shown["notice"]["own"] is True
    assert shown["notice"]["text"].startswith("Hello from {school}")
    reminders = {r["rule"]: r for r in shown["reminders"]}
    assert reminders["staff-contact"]["own"] is True
    assert reminders["out-of-hours"]["own"] is False
    assert shown["retention"]["metadata_days"] == 14
    assert shown["retention"]["flag_days"] is None
    assert shown["alerts"]["dsl_rules"] == ["confidential-info", "disrepute"]
    assert shown["alerts"]["escalate_after_minutes"] == 45
    assert shown["alerts"]["digest_time"] == "15:30"


BAD_FORMS: list[tuple[str, dict[str, Any], str]] = [
    ("/settings/hours", {"monday": "8-5"},
     "school.working_hours.monday: &#39;8-5&#39; is not a time range like"),
    ("/settings/hours", {"monday": "08:00-17:00", "bank_holidays": "zz"}, "school.bank_holidays"),
    ("/settings/closures", {"from": "2027-04-16", "to": "2027-04-05", "name": "Backwards"},
     "before it starts"),
    ("/settings/platforms", {"platforms": "  \n "}, "permitted_platforms: needs at least one"),
    ("/settings/notice", {"text": "Hello {parent}, this is the school's notice."},
     "notice.text: {parent} is not a placeholder"),
    ("/settings/reminders", {"reminder:staff-contact": "Hi {teacher}"},
     "reminders.staff-contact: {teacher} is not a placeholder"),
    ("/settings/retention", {"metadata_days": "a week"},
     "retention.metadata_days: &#39;a week&#39; is not a whole number"),
    ("/settings/retention", {"audit_days": "5"}, "audit_days: Input should be greater than"),
    ("/settings/alerts", {"dsl_rules": ["gossip"]}, "dsl_rules[0]: Input should be"),
    ("/settings/alerts", {"digest_time": "25:00"}, "digest_time: String should match"),
]  # fmt: skip


@pytest.mark.parametrize(("url", "data", "problem"), BAD_FORMS)
async def test_bad_input_is_a_clear_400_that_changes_nothing(
    sign_in: SignIn,
    sessions: Sessions,
    seeded_school: School,
    url: str,
    data: dict[str, Any],
    problem: str,
) -> None:
    admin = await sign_in(UserRole.ADMIN)
    before = await school_row(sessions, seeded_school.id)
    refused = await admin.form(url, data)
    assert refused.status_code == 400
    assert problem in refused.text, re.findall(r"role=.alert.>([^<]*)", refused.text)
    assert 'role="alert"' in refused.text
    after = await school_row(sessions, seeded_school.id)
    assert (after.config, after.settings, after.updated_at) == (
        before.config, before.settings, before.updated_at,
    )  # fmt: skip
    assert not await audit_events(sessions, "school.updated")
    assert not await audit_events(sessions, "school.settings_changed")


async def test_a_failed_form_keeps_what_was_typed(sign_in: SignIn) -> None:
    admin = await sign_in(UserRole.ADMIN)
    refused = await admin.form("/settings/notice", {"text": "Our own words, with {oops} in."})
    assert refused.status_code == 400
    assert "Our own words, with {oops} in.</textarea>" in refused.text


async def test_removing_a_closure(sign_in: SignIn) -> None:
    admin = await sign_in(UserRole.ADMIN)
    closure: dict[str, object] = {
        "from": "2027-02-15", "to": "2027-02-19", "name": "February half term",
    }  # fmt: skip
    assert (await admin.form("/settings/closures/remove", closure)).status_code == 303
    assert (await admin.get("/api/settings")).json()["closures"] == []
    assert (await admin.form("/settings/closures/remove", closure)).status_code == 404


async def test_each_section_saves_through_the_api(sign_in: SignIn, sessions: Sessions) -> None:
    admin = await sign_in(UserRole.ADMIN)
    calls: list[tuple[str, dict[str, Any]]] = [
        ("hours", {"working_hours": {"monday": "08:00-12:00, 13:00-16:00"}, "bank_holidays": None}),
        ("closures", {"closures": [{"from": "2027-05-31", "to": "2027-06-04"}]}),
        ("platforms", {"permitted_platforms": ["the office"]}),
        ("notice", {"text": "Hello, {school} asks your consent: kept {flag_days} days."}),
        ("reminders", {"reminders": {"out-of-hours": "Hi {name}, {who} is back {when}."}}),
        ("retention", {"metadata_days": 10, "flag_days": 200, "audit_days": None}),
        ("alerts", {"dsl_rules": ["harassment-campaign"], "escalate_after_minutes": 15}),
    ]
    for section, body in calls:
        answer = await admin.put(f"/api/settings/{section}", json=body)
        assert answer.status_code == 200, (section, answer.text)
    shown = answer.json()
    assert shown["hours"]["working_hours"] == {
        "monday": "08:00-12:00, 13:00-16:00", "tuesday": "closed", "wednesday": "closed",
        "thursday": "closed", "friday": "closed", "saturday": "closed", "sunday": "closed",
    }  # fmt: skip
    assert shown["hours"]["bank_holidays"] is None
    assert shown["closures"] == [
        {"from": "2027-05-31", "to": "2027-06-04", "name": "school closure"}
    ]
    assert shown["notice"]["version"].endswith(".1")
    assert shown["retention"]["flag_days"] == 200
    assert shown["alerts"]["dsl_rules"] == ["harassment-campaign"]
    assert shown["alerts"]["digest_time"] is None
    assert len(await audit_events(sessions, "school.updated")) == 3
    assert len(await audit_events(sessions, "school.settings_changed")) == 4


@pytest.mark.parametrize(
    ("section", "body", "status", "problem"),
    [
        ("hours", {"working_hours": {"monday": "9 till 3"}}, 400, "school.working_hours.monday"),
        ("hours", {"working_hours": {"funday": "09:00-15:00"}}, 422, None),
        ("notice", {"text": "x" * 4001}, 422, None),
        ("notice", {"text": "Hello {school.name}, this is our notice"}, 400, "notice.text"),
        ("reminders", {"reminders": {"disrepute": "Hi {name}"}}, 400, "no reminder"),
        ("retention", {"flag_days": 0}, 422, None),
        ("platforms", {"permitted_platforms": []}, 422, None),
        ("platforms", {"permitted_platforms": ["the office\x00"]}, 400, "control character"),
        ("notice", {"text": "Hello from {school}\x00, this is our notice"}, 400, "control"),
        (
            "closures",
            {"closures": [{"from": "2027-01-04", "to": "2027-01-04", "name": "\x07"}]},
            400,
            "school.closures[0].name: has a control character",
        ),
        ("alerts", {"dsl_rules": [], "escalate_after_minutes": -5}, 422, None),
    ],
)
async def test_the_api_refuses_bad_input(
    sign_in: SignIn,
    sessions: Sessions,
    section: str,
    body: dict[str, Any],
    status: int,
    problem: str | None,
) -> None:
    admin = await sign_in(UserRole.ADMIN)
    refused = await admin.put(f"/api/settings/{section}", json=body)
    assert refused.status_code == status
    if problem:
        assert problem in refused.json()["detail"]
    assert not await audit_events(sessions, "school.updated")
    assert not await audit_events(sessions, "school.settings_changed")


async def test_a_new_notice_is_posted_to_the_schools_chats_for_fresh_consent(
    sign_in: SignIn, sessions: Sessions, seeded_school: School
) -> None:
    async with transaction(sessions) as session:
        chat = await a_chat(session, seeded_school)
        becky = await a_member(session, chat)
        await consent.give(session, chat, becky, "button", chat.registered_at or chat.first_seen_at)
        chat_id, becky_id = chat.id, becky.id
    admin = await sign_in(UserRole.ADMIN)
    words = "Hello from {school}. Messages that break the code are kept {flag_days} days."
    saved = await admin.form("/settings/notice", {"text": words})
    assert saved.status_code == 303
    async with sessions() as session:
        stored = await session.get(Chat, chat_id)
        assert stored is not None
        version = stored.notice_version
        assert version is not None
        assert version.endswith(".1")
        [posted] = list(await session.scalars(select(OutboxMessage)))
        assert posted.purpose == "notice"
        assert posted.recipient == stored.platform_chat_id
        assert posted.text == (
            "Hello from Peartree Spring Primary School. Messages that break the code are kept "
            "365 days."
        )
        assert posted.buttons == [["I agree", f"consent:{version}"]]
        member = await session.get(ChatMember, becky_id)
        assert member is not None
        assert not await consent.has_consented(session, stored, member)


async def test_keeping_things_longer_asks_everyone_again_and_shorter_does_not(
    sign_in: SignIn, sessions: Sessions, seeded_school: School
) -> None:
    async with transaction(sessions) as session:
        chat = await a_chat(session, seeded_school)
        chat_id, agreed_to = chat.id, chat.notice_version
    admin = await sign_in(UserRole.ADMIN)
    shorter = await admin.put("/api/settings/retention", json={"metadata_days": 14})
    assert shorter.status_code == 200
    async with sessions() as session:
        stored = await session.get(Chat, chat_id)
        assert stored is not None
        assert stored.notice_version == agreed_to, "shorter periods only favour members"
    longer = await admin.put("/api/settings/retention", json={"flag_days": 730})
    assert longer.status_code == 200
    async with sessions() as session:
        stored = await session.get(Chat, chat_id)
        assert stored is not None
        assert stored.notice_version != agreed_to
        [posted] = list(await session.scalars(select(OutboxMessage)))
        assert posted.purpose == "notice"
        assert "730 days" in posted.text
        assert posted.buttons == [["I agree", f"consent:{stored.notice_version}"]]


async def test_settings_are_always_the_users_own_schools(
    sign_in: SignIn, sessions: Sessions, seeded_school: School
) -> None:
    async with transaction(sessions) as session:
        elsewhere = await another_school(session)
    theirs = await sign_in(UserRole.ADMIN, at=elsewhere)
    assert (await theirs.form("/settings/hours", {"monday": "10:00-11:00"})).status_code == 303
    assert (await theirs.put("/api/settings/retention", json={"flag_days": 7})).status_code == 200
    ours = await school_row(sessions, seeded_school.id)
    assert ours.config["school"]["working_hours"]["monday"] == ["08:00-17:00"]
    assert ours.settings == {}
    mine = await sign_in(UserRole.ADMIN)
    assert (await mine.get("/api/settings")).json()["retention"]["flag_days"] is None
    assert (await theirs.get("/api/settings")).json()["retention"]["flag_days"] == 7


async def test_the_outbox_is_woken_once_a_notice_to_send_is_committed(
    sign_in: SignIn, app: FastAPI, seeded_school: School, sessions: Sessions
) -> None:
    async with transaction(sessions) as session:
        await a_chat(session, seeded_school)
    admin = await sign_in(UserRole.ADMIN)
    words = "Hello from {school}. Messages that break the code are kept {flag_days} days."
    happened: list[str] = []

    def committed(session: Session) -> None:
        happened.append("commit")

    async def woken_after_commit(request: Awaitable[httpx.Response]) -> bool:
        """Whether saving woke the outbox, after the request's transaction committed."""
        happened.clear()
        assert (await request).status_code in (200, 303)
        return happened.count("wake") == 1 and happened[-2:] == ["commit", "wake"]

    # Woken before the commit, the outbox would find nothing to send.
    app.state.runtime.wake_outbox = lambda: happened.append("wake")
    event.listen(Session, "after_commit", committed)
    try:
        assert await woken_after_commit(admin.put("/api/settings/notice", json={"text": words}))
        # Unchanged: nothing to send.
        assert not await woken_after_commit(admin.form("/settings/notice", {"text": words}))
        assert "wake" not in happened
        changed: dict[str, object] = {"text": f"{words} Thank you."}
        assert await woken_after_commit(admin.form("/settings/notice", changed))
        # Kept longer than members agreed to: the notice goes out again.
        longer = admin.put("/api/settings/retention", json={"flag_days": 730})
        assert await woken_after_commit(longer)
    finally:
        event.remove(Session, "after_commit", committed)
