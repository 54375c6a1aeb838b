"""The People pages and API: staff (kept in the school file) and parents, with a parent's
export and erasure."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from fastapi import FastAPI
from sqlalchemy import select

from bot.policy import PolicyEngine
from bot.policy.school import SchoolConfig
from bot.services import consent
from bot.services.moderation import Retention, check_message
from bot.services.registration import code_hash
from bot.store.db import transaction
from bot.store.models import (
    ChatMember,
    Consent,
    School,
    StaffLinkCode,
    StaffMember,
    StoredMessage,
    UserRole,
)
from bot.store.repositories.schools import SchoolRepository
from tests.api.conftest import SignIn
from tests.api.support import Sessions, audit_events
from tests.conftest import message
from tests.factories import NOW, a_chat, a_member, another_school

pytestmark = pytest.mark.anyio
RETENTION = Retention(metadata=timedelta(days=30), flags=timedelta(days=365))
BECKY = "/people/parents/telegram/501"
NEW_TEACHER = {
    "name": "Ms Priya Shah",
    "role": "Year 2 teacher",
    "aliases": ["Ms Shah", "Priya"],
    "handles": ["@priya_shah"],
    "phone": "07700 900456",
    "email": "p.shah@peartree.example.sch.uk",
    "slt": True,
    "working_hours": {"monday": "08:30-15:30"},
    "alert_channels": ["email"],
}


async def staff_rows(sessions: Sessions, school: School) -> dict[str, StaffMember]:
    async with transaction(sessions) as session:
        return {row.name: row for row in await SchoolRepository(session).staff(school.id)}


async def school_file(sessions: Sessions, school: School) -> SchoolConfig:
    async with transaction(sessions) as session:
        found = await session.get(School, school.id)
        assert found is not None
        return SchoolConfig.model_validate(found.config)


async def parents_in_year3(sessions: Sessions, engine: PolicyEngine, school: School) -> None:
    """Becky (who posted a flagged message naming Kerry) and Kerry, in Year 3."""
    async with transaction(sessions) as session:
        chat = await a_chat(session, school)
        becky = await a_member(session, chat, user_id="501", name="Becky Sutton")
        kerry = await a_member(session, chat, user_id="502", name="Kerry Marsh")
        for member in (becky, kerry):
            await consent.give(session, chat, member, "button", NOW)
        said = message("@mr_okafor Kerry Marsh is an absolute idiot, ring her on 07700 900123")
        checked = await check_message(session, engine, chat, becky, said, RETENTION, NOW)
        assert checked.flag is not None


# -- staff ------------------------------------------------------------------------------------


async def test_staff_phone_numbers_are_masked_unless_you_manage_staff(
    sign_in: SignIn, seeded_school: School
) -> None:
    slt, admin = await sign_in(UserRole.SLT), await sign_in(UserRole.ADMIN)
    seen_by_slt = {s["name"]: s for s in (await slt.get("/api/people/staff")).json()}
    seen_by_admin = {s["name"]: s for s in (await admin.get("/api/people/staff")).json()}
    assert seen_by_slt["Miss Chloe Hughes"]["phone"] == "••••• •••999"
    assert seen_by_admin["Miss Chloe Hughes"]["phone"] == "07700 900999"
    patel = seen_by_slt["Mrs Anita Patel"]
    assert (patel["slt"], patel["dsl"], patel["telegram_linked"]) == (True, True, False)
    assert patel["alerts_on"] == []  # not linked, and this service sends no e-mail
    assert seen_by_slt["Mr Tom Reilly"]["working_hours"]["monday"] == "08:30-15:30"

    page = await slt.get("/people")
    assert page.status_code == 200
    assert "Mrs Anita Patel" in page.text
    assert "07700 900999" not in page.text
    assert "Add a member of staff" not in page.text
    assert "07700 900999" in (await admin.get("/people")).text


async def test_adding_changing_and_removing_staff_goes_through_the_school_file(
    sign_in: SignIn, sessions: Sessions, seeded_school: School
) -> None:
    admin = await sign_in(UserRole.ADMIN)
    added = await admin.post("/api/people/staff", json=NEW_TEACHER)
    assert added.status_code == 201, added.text
    shah = added.json()
    assert (shah["alert_channels"], shah["phone"]) == (["email"], "07700 900456")
    config = await school_file(sessions, seeded_school)
    entry = next(m for m in config.staff if m.name == "Ms Priya Shah")
    assert entry.all_handles == ("@priya_shah",)
    assert entry.aliases == ("Ms Shah", "Priya")
    assert entry.working_hours is not None

    # Linked to Telegram later; a new name keeps the row and the link.
    async with transaction(sessions) as session:
        row = await session.get(StaffMember, shah["id"])
        assert row is not None
        row.telegram_user_id = 777
    renamed = {**NEW_TEACHER, "name": "Mrs Priya Shah", "alert_channels": None}
    changed = await admin.put(f"/api/people/staff/{shah['id']}", json=renamed)
    assert changed.status_code == 200, changed.text
    assert changed.json()["alerts_on"] == ["telegram"]  # e-mail is off in this service
    rows = await staff_rows(sessions, seeded_school)
    assert "Ms Priya Shah" not in rows
    assert (rows["Mrs Priya Shah"].id, rows["Mrs Priya Shah"].telegram_user_id) == (shah["id"], 777)
    assert rows["Mrs Priya Shah"].alert_channels is None
    [updated] = await audit_events(sessions, "staff.updated")
    assert updated.details["renamed_from"] == "Ms Priya Shah"
    assert "name" in updated.details["changed"]
    assert "alert_channels" in updated.details["changed"]

    removed = await admin.delete(f"/api/people/staff/{shah['id']}")
    assert removed.status_code == 204
    assert "Mrs Priya Shah" not in await staff_rows(sessions, seeded_school)
    assert "Mrs Priya Shah" not in [
        m.name for m in (await school_file(sessions, seeded_school)).staff
    ]
    assert [e.actor for e in await audit_events(sessions, "staff.removed")] == [
        f"user:{admin.user.id}"
    ]
    assert len(await audit_events(sessions, "staff.added")) == 1


async def test_the_staff_form_shows_problems_by_field(
    sign_in: SignIn, sessions: Sessions, seeded_school: School
) -> None:
    admin = await sign_in(UserRole.ADMIN)
    form = await admin.get("/people/staff/new")
    assert form.status_code == 200
    bad = await admin.form(
        "/people/staff/new",
        {"name": "Mrs Anita Patel", "handles": "@mr_okafor, not a handle", "phone": "12",
         "own_hours": "true", "hours_monday": "9 till 3", "alert_telegram": "true"},
    )  # fmt: skip
    assert bad.status_code == 400
    assert 'id="name-error"' in bad.text
    assert "already on the staff list" in bad.text
    assert 'id="handles-error"' in bad.text
    assert 'id="phone-error"' in bad.text
    assert 'id="working_hours-monday-error"' in bad.text
    assert 'value="@mr_okafor, not a handle"' in bad.text  # what was typed is kept
    assert "Ms Nadia Ali" not in await staff_rows(sessions, seeded_school)

    good = await admin.form(
        "/people/staff/new",
        {"name": "Ms Nadia Ali", "handles": "nadia_ali", "alert_telegram": "true", "dsl": "true"},
    )
    assert good.status_code == 303
    ali = (await staff_rows(sessions, seeded_school))["Ms Nadia Ali"]
    assert (ali.handles, ali.dsl, ali.alert_channels) == (["@nadia_ali"], True, ["telegram"])
    page = await admin.get(good.headers["location"])
    assert "Added Ms Nadia Ali" in page.text

    clash = await admin.post("/api/people/staff", json={**NEW_TEACHER, "handles": ["@sbennett"]})
    assert clash.status_code == 400
    assert "Mrs Sarah Bennett" in clash.json()["detail"]


async def test_the_edit_form_saves_and_a_link_code_is_shown_once(
    sign_in: SignIn, sessions: Sessions, seeded_school: School
) -> None:
    admin = await sign_in(UserRole.ADMIN)
    okafor = (await staff_rows(sessions, seeded_school))["Mr David Okafor"]
    page = await admin.get(f"/people/staff/{okafor.id}")
    assert page.status_code == 200
    assert 'value="@mr_okafor"' in page.text

    saved = await admin.form(
        f"/people/staff/{okafor.id}",
        {"name": "Mr David Okafor", "role": "Deputy head", "aliases": "Mr Okafor, David",
         "handles": "@mr_okafor", "slt": "true", "alert_email": "true"},
    )  # fmt: skip
    assert saved.status_code == 303
    row = (await staff_rows(sessions, seeded_school))["Mr David Okafor"]
    assert (row.role, row.slt, row.alert_channels) == ("Deputy head", True, ["email"])
    entry = next(m for m in (await school_file(sessions, seeded_school)).staff if m.id)
    assert entry.id == "s:okafor"  # what the form does not show is kept

    code_page = await admin.form(f"/people/staff/{okafor.id}/link-code")
    assert code_page.status_code == 200
    async with transaction(sessions) as session:
        [link] = await session.scalars(select(StaffLinkCode))
    shown = re.search(r"/link ([A-Z0-9]{4}-[A-Z0-9]{4})", code_page.text)
    assert shown is not None
    assert code_hash(shown[1]) == link.code_hash  # only the hash is stored
    code = shown[1]
    assert f"/link {code}" in code_page.text
    [event] = await audit_events(sessions, "staff.link_code_created")
    assert event.actor == f"user:{admin.user.id}"
    made = (await admin.post(f"/api/people/staff/{okafor.id}/link-code")).json()
    assert f"/link {made['code']}" in made["instructions"]


async def test_another_schools_staff_member_is_not_found(
    sign_in: SignIn, sessions: Sessions, seeded_school: School
) -> None:
    async with transaction(sessions) as session:
        elsewhere = await another_school(session)
    theirs = next(iter((await staff_rows(sessions, elsewhere)).values()))
    admin = await sign_in(UserRole.ADMIN)
    assert (await admin.get(f"/api/people/staff/{theirs.id}")).status_code == 404
    assert (await admin.get(f"/people/staff/{theirs.id}")).status_code == 404
    put = await admin.put(f"/api/people/staff/{theirs.id}", json=NEW_TEACHER)
    assert put.status_code == 404
    assert (await admin.delete(f"/api/people/staff/{theirs.id}")).status_code == 404
    assert (await admin.post(f"/api/people/staff/{theirs.id}/link-code")).status_code == 404
    assert theirs.name in await staff_rows(sessions, elsewhere)


# -- parents ----------------------------------------------------------------------------------


async def test_parents_are_listed_and_viewing_one_is_audited(
    sign_in: SignIn, sessions: Sessions, seeded_school: School, engine: PolicyEngine
) -> None:
    await parents_in_year3(sessions, engine, seeded_school)
    slt = await sign_in(UserRole.SLT)
    listed = (await slt.get("/api/people/parents")).json()
    assert [(p["user_id"], p["names"]) for p in listed] == [
        ("501", ["Becky Sutton"]),
        ("502", ["Kerry Marsh"]),
    ]
    assert listed[0]["chats"][0]["consent"] == "agreed"
    assert "Becky Sutton" in (await slt.get("/people")).text

    page = await slt.get(BECKY)
    assert page.status_code == 200
    assert "staff-contact" in page.text
    assert "Download their data" not in page.text  # SLT has no PARENT_DATA
    detail = (await slt.get(f"/api{BECKY}")).json()
    assert (detail["messages"], len(detail["flags"])) == (1, 1)
    assert detail["chats"][0]["consents"][0]["method"] == "button"
    viewed = await audit_events(sessions, "parent.viewed")
    assert [(e.actor, e.subject) for e in viewed] == [
        (f"user:{slt.user.id}", "telegram:user:501")
    ] * 2
    assert (await slt.get(f"{BECKY}/export")).status_code == 403


async def test_another_schools_parent_is_not_found(
    sign_in: SignIn, sessions: Sessions, seeded_school: School
) -> None:
    async with transaction(sessions) as session:
        elsewhere = await another_school(session)
        chat = await a_chat(session, elsewhere, platform_chat_id="-2002", title="Elsewhere")
        theirs = await a_member(session, chat, user_id="901", name="Dana Other")
        await consent.give(session, chat, theirs, "button", NOW)
    dsl = await sign_in(UserRole.DSL)
    assert (await dsl.get("/api/people/parents")).json() == []
    for url in (
        "/people/parents/telegram/901",
        "/api/people/parents/telegram/901",
        "/people/parents/telegram/901/export",
        "/api/people/parents/telegram/901/export",
    ):
        assert (await dsl.get(url)).status_code == 404, url  # fmt: skip
    assert (await dsl.delete("/api/people/parents/telegram/901")).status_code == 404
    erase = await dsl.form("/people/parents/telegram/901/erase", {"confirm": "true"})
    assert erase.status_code == 404
    assert (await dsl.get("/api/people/parents/telegram/bad%00id")).status_code == 422


async def test_the_export_is_a_download_without_other_peoples_details(
    sign_in: SignIn, sessions: Sessions, seeded_school: School, engine: PolicyEngine
) -> None:
    await parents_in_year3(sessions, engine, seeded_school)
    dsl = await sign_in(UserRole.DSL)
    download = await dsl.get(f"{BECKY}/export")
    assert download.status_code == 200
    assert download.headers["content-disposition"].startswith("attachment;")
    export = download.json()
    [membership] = export["memberships"]
    assert membership["name"] == "Becky Sutton"
    [said] = membership["messages"]
    assert said["text"] == "[redacted] [redacted] is an absolute idiot, ring her on [redacted]"
    for other in ("Kerry", "Marsh", "okafor", "07700", "Patel", "Test DSL"):
        assert other not in download.text
    api = await dsl.get(f"/api{BECKY}/export")
    assert api.headers["content-disposition"].startswith("attachment;")
    assert api.json()["memberships"] == export["memberships"]
    exported = await audit_events(sessions, "parent.exported")
    assert [e.actor for e in exported] == [f"user:{dsl.user.id}"] * 2


async def test_erasure_asks_for_confirmation_then_removes_the_person(
    sign_in: SignIn, sessions: Sessions, seeded_school: School, engine: PolicyEngine
) -> None:
    await parents_in_year3(sessions, engine, seeded_school)
    admin = await sign_in(UserRole.ADMIN)
    page = await admin.get(BECKY)
    assert "Erase their data" in page.text
    assert "data-confirm" in page.text

    unconfirmed = await admin.form(f"{BECKY}/erase")
    assert unconfirmed.status_code == 400
    assert (await admin.get(BECKY)).status_code == 200

    erased = await admin.form(f"{BECKY}/erase", {"confirm": "true"})
    assert erased.status_code == 303
    assert (await admin.get(BECKY)).status_code == 404
    assert (await admin.get(f"{BECKY}/export")).status_code == 404
    assert [p["user_id"] for p in (await admin.get("/api/people/parents")).json()] == ["502"]
    async with transaction(sessions) as session:
        names = {m.display_name for m in await session.scalars(select(ChatMember))}
        assert names == {"Erased member", "Kerry Marsh"}
        assert len(list(await session.scalars(select(Consent)))) == 1  # Kerry's
        assert [m.text for m in await session.scalars(select(StoredMessage))] == [None]
    [event] = await audit_events(sessions, "parent.erased")
    assert event.actor == f"user:{admin.user.id}"
    assert event.details["flags_kept"] == 1
    assert "Becky" not in str(event.details)

    by_api = await admin.delete("/api/people/parents/telegram/502")
    assert by_api.status_code == 200
    assert by_api.json()["memberships"] == 1
    assert (await admin.get("/api/people/parents")).json() == []


async def test_staff_may_choose_whatsapp_or_sms_alerts_to_their_phone(
    sign_in: SignIn, sessions: Sessions, seeded_school: School, app: FastAPI
) -> None:
    admin = await sign_in(UserRole.ADMIN)
    form = (await admin.get("/people/staff/new")).text
    for channel in ("telegram", "email", "whatsapp", "sms"):
        assert f'name="alert_{channel}"' in form
    assert "(not set up in this installation)" in form  # this app sends no WhatsApp or SMS

    added = await admin.form(
        "/people/staff/new",
        {"name": "Ms Nadia Ali", "phone": "07700 900456", "slt": "true",
         "alert_whatsapp": "true", "alert_sms": "true"},
    )  # fmt: skip
    assert added.status_code == 303
    ali = (await staff_rows(sessions, seeded_school))["Ms Nadia Ali"]
    assert (ali.phone, ali.alert_channels) == ("+447700900456", ["whatsapp", "sms"])
    assert (await admin.get(f"/api/people/staff/{ali.id}")).json()["alerts_on"] == []

    # An installation with Twilio's WhatsApp and SMS set up reaches her phone on both.
    runtime = app.state.runtime
    runtime.alert_channels = runtime.alert_channels | {"whatsapp", "sms"}
    assert (await admin.get(f"/api/people/staff/{ali.id}")).json()["alerts_on"] == [
        "whatsapp",
        "sms",
    ]

    # Telegram and e-mail is what choosing nothing means: stored as no choice.
    changed = await admin.put(
        f"/api/people/staff/{ali.id}",
        json={"name": "Ms Nadia Ali", "phone": "07700 900456", "slt": True,
              "alert_channels": ["email", "telegram"]},
    )  # fmt: skip
    assert changed.status_code == 200, changed.text
    assert changed.json()["alert_channels"] is None
    assert changed.json()["alerts_on"] == []  # no Telegram linked, no e-mail address
    page = (await admin.get(f"/people/staff/{ali.id}")).text
    assert 'name="alert_telegram" value="true" checked' in page
    assert 'name="alert_whatsapp" value="true" checked' not in page
