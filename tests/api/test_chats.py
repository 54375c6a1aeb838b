"""The Chats pages and API: coverage, registration codes, members, observe-only, closing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.services import consent
from bot.services.closure import record_step
from bot.services.registration import code_hash
from bot.store.db import transaction
from bot.store.models import (
    Chat,
    ChatClosure,
    ChatStatus,
    ClosureStatus,
    OutboxMessage,
    RegistrationCode,
    School,
    UserRole,
    utcnow,
)
from tests.api.conftest import SignIn
from tests.api.support import Sessions, audit_events
from tests.factories import NOW, a_chat, a_member, another_school

pytestmark = pytest.mark.anyio


async def year3(sessions: Sessions, school: School, *, can_read: bool = True) -> int:
    """Year 3: 20 people, Becky agreed to the notice, Kerry withdrew, 4 messages dropped."""
    async with transaction(sessions) as session:
        chat = await a_chat(session, school)
        chat.member_count, chat.unconsented_messages = 20, 4
        chat.bot_can_read_all = can_read
        becky = await a_member(session, chat, user_id="501", name="Becky Sutton")
        becky.username = "becky_s"
        kerry = await a_member(session, chat, user_id="502", name="Kerry Marsh")
        await consent.give(session, chat, becky, "button", NOW)
        await consent.give(session, chat, kerry, "command", NOW)
        await consent.withdraw(session, "telegram", "502", NOW + timedelta(hours=1))
        return chat.id


async def elsewhere_chat(sessions: Sessions) -> int:
    async with transaction(sessions) as session:
        school = await another_school(session)
        chat = await a_chat(session, school, platform_chat_id="-2002", title="Elsewhere Year 5")
        return chat.id


async def test_the_list_shows_coverage_health_and_only_this_schools_chats(
    sign_in: SignIn, sessions: Sessions, seeded_school: School
) -> None:
    chat_id = await year3(sessions, seeded_school, can_read=False)
    await elsewhere_chat(sessions)
    slt = await sign_in(UserRole.SLT)

    listed = (await slt.get("/api/chats")).json()
    assert [c["id"] for c in listed] == [chat_id]
    [chat] = listed
    assert chat["coverage"] == "1 of 20 agreed"
    assert (chat["consented"], chat["members"], chat["unconsented_messages"]) == (1, 20, 4)
    assert "make the bot a group admin" in chat["warning"]
    assert chat["closure"] is None

    page = await slt.get("/chats")
    assert page.status_code == 200
    assert "Year 3 Parents" in page.text
    assert "1 of 20 agreed" in page.text
    assert "Cannot see messages" in page.text
    assert "Elsewhere Year 5" not in page.text


async def test_a_chat_shows_its_members_on_record_and_their_consent(
    sign_in: SignIn, sessions: Sessions, seeded_school: School
) -> None:
    chat_id = await year3(sessions, seeded_school)
    slt = await sign_in(UserRole.SLT)

    found = (await slt.get(f"/api/chats/{chat_id}")).json()
    members = {m["name"]: m for m in found["members_on_record"]}
    assert members["Becky Sutton"]["consent"] == "agreed"
    assert members["Becky Sutton"]["username"] == "becky_s"
    assert members["Becky Sutton"]["consents"][0]["method"] == "button"
    assert members["Kerry Marsh"]["consent"] == "withdrawn"
    assert members["Kerry Marsh"]["consents"][0]["withdrawn_at"] is not None

    page = await slt.get(f"/chats/{chat_id}")
    assert page.status_code == 200
    assert "Becky Sutton" in page.text
    assert "Withdrawn" in page.text
    assert "Close the chat" in page.text


async def test_another_schools_chat_is_not_found(
    sign_in: SignIn, sessions: Sessions, seeded_school: School
) -> None:
    theirs = await elsewhere_chat(sessions)
    slt = await sign_in(UserRole.SLT)
    assert (await slt.get(f"/api/chats/{theirs}")).status_code == 404
    assert (await slt.get(f"/chats/{theirs}")).status_code == 404
    put = await slt.put(f"/api/chats/{theirs}/observe-only", json={"observe_only": True})
    assert put.status_code == 404
    close = await slt.post(f"/api/chats/{theirs}/closure", json={"reason": "abuse"})
    assert close.status_code == 404
    assert (await slt.delete(f"/api/chats/{theirs}/closure")).status_code == 404
    assert (await slt.get("/api/chats/99999")).status_code == 404
    assert (await slt.get("/api/chats/99999999999")).status_code == 422  # not an id at all


async def test_a_registration_code_is_shown_once_and_never_stored_in_clear(
    sign_in: SignIn, sessions: Sessions, seeded_school: School
) -> None:
    slt = await sign_in(UserRole.SLT)
    page = await slt.form("/chats/codes", {"class_name": "  Year 4  "})
    assert page.status_code == 200
    assert "/register " in page.text

    made = (await slt.post("/api/chats/codes", json={"class_name": "Year 5"})).json()
    assert made["class_name"] == "Year 5"
    assert f"/register {made['code']}" in made["instructions"]

    async with transaction(sessions) as session:
        codes = list(await session.scalars(select(RegistrationCode).order_by(RegistrationCode.id)))
    assert [c.class_name for c in codes] == ["Year 4", "Year 5"]
    assert codes[1].code_hash == code_hash(made["code"])

    listed = await slt.get("/api/chats/codes")
    assert [(c["class_name"], c["state"]) for c in listed.json()] == [
        ("Year 5", "waiting"),
        ("Year 4", "waiting"),
    ]
    assert made["code"] not in listed.text
    assert made["code"] not in (await slt.get("/chats")).text
    [first, _] = await audit_events(sessions, "registration_code.created")
    assert first.actor == f"user:{slt.user.id}"

    blank = await slt.post("/api/chats/codes", json={"class_name": "   "})
    assert blank.status_code == 400
    nul = await slt.post("/api/chats/codes", json={"class_name": "Year\x003"})
    assert nul.status_code == 422


async def test_the_observe_only_switch_is_audited(
    sign_in: SignIn, sessions: Sessions, seeded_school: School
) -> None:
    chat_id = await year3(sessions, seeded_school)
    slt = await sign_in(UserRole.SLT)

    switched = await slt.form(f"/chats/{chat_id}/observe-only", {"observe_only": "true"})
    assert switched.status_code == 303
    assert (await slt.get(f"/api/chats/{chat_id}")).json()["observe_only"] is True
    back = await slt.put(f"/api/chats/{chat_id}/observe-only", json={"observe_only": False})
    assert back.json()["observe_only"] is False
    again = await slt.put(f"/api/chats/{chat_id}/observe-only", json={"observe_only": False})
    assert again.status_code == 200

    events = await audit_events(sessions, "chat.observe_only")
    assert [(e.subject, e.details["observe_only"]) for e in events] == [
        (f"chat:{chat_id}", True),
        (f"chat:{chat_id}", False),
    ]


async def test_closing_a_chat_and_cancelling_it(
    sign_in: SignIn, sessions: Sessions, seeded_school: School
) -> None:
    chat_id = await year3(sessions, seeded_school)
    slt = await sign_in(UserRole.SLT)

    started = await slt.post(
        f"/api/chats/{chat_id}/closure", json={"reason": "repeated abuse", "grace_hours": 12}
    )
    assert started.status_code == 201, started.text
    closure = started.json()
    assert (closure["status"], closure["requested_by"]) == ("requested", slt.user.name)
    assert [s["what"] for s in closure["timeline"] if s["done"]] == [
        f"Requested by {slt.user.name}"
    ]
    assert (await slt.get("/api/chats")).json()[0]["closure"]["id"] == closure["id"]
    twice = await slt.post(f"/api/chats/{chat_id}/closure", json={"reason": "again"})
    assert twice.status_code == 409
    assert "already being closed" in twice.json()["detail"]
    [requested] = await audit_events(sessions, "closure.requested")
    assert requested.actor == f"user:{slt.user.id}"
    assert requested.details["requested_by"] == slt.user.name

    # The bot posts the notice; cancelling now tells the chat the closure is withdrawn.
    async with transaction(sessions) as session:
        row = await session.get(ChatClosure, closure["id"])
        chat = await session.get(Chat, chat_id)
        assert row is not None
        assert chat is not None
        await record_step(session, row, chat, ClosureStatus.NOTICE_POSTED, utcnow())
        chat_address = chat.platform_chat_id
    cancelled = await slt.delete(f"/api/chats/{chat_id}/closure")
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    assert [s["what"] for s in cancelled.json()["timeline"]] == [
        f"Requested by {slt.user.name}",
        "Notice posted in the chat",
        "Cancelled",
    ]
    async with transaction(sessions) as session:
        told = list(await session.scalars(select(OutboxMessage)))
    [notice] = [m for m in told if "withdrawn" in m.text]
    assert (notice.recipient, notice.purpose) == (chat_address, "closure")
    [cancel_event] = await audit_events(sessions, "closure.cancelled")
    assert cancel_event.actor == f"user:{slt.user.id}"
    assert cancel_event.details["members_told"] is True
    assert (await slt.delete(f"/api/chats/{chat_id}/closure")).status_code == 409


async def test_the_closing_form_and_its_timeline(
    sign_in: SignIn, sessions: Sessions, seeded_school: School
) -> None:
    chat_id = await year3(sessions, seeded_school)
    slt = await sign_in(UserRole.SLT)

    asked = await slt.form(f"/chats/{chat_id}/closure", {"reason": "abuse", "grace_hours": "24"})
    assert asked.status_code == 303
    page = await slt.get(f"/chats/{chat_id}")
    assert f"Requested by {slt.user.name}" in page.text
    assert "Cancel the closure" in page.text
    cancelled = await slt.form(f"/chats/{chat_id}/closure/cancel")
    assert cancelled.status_code == 303
    page = await slt.get(f"/chats/{chat_id}")
    assert "Cancelled" in page.text
    assert "Close the chat" in page.text
    async with transaction(sessions) as session:
        assert not list(await session.scalars(select(OutboxMessage)))  # nobody had been told

    too_long = await slt.form(f"/chats/{chat_id}/closure", {"reason": "x", "grace_hours": "100"})
    assert too_long.status_code == 422
    blank = await slt.form(f"/chats/{chat_id}/closure", {"reason": "   "})
    assert blank.status_code == 400
    no_reason = await slt.post(f"/api/chats/{chat_id}/closure", json={"reason": ""})
    assert no_reason.status_code == 422


async def test_an_unregistered_chat_cannot_be_closed(
    sign_in: SignIn, sessions: Sessions, seeded_school: School
) -> None:
    async with transaction(sessions) as session:
        chat = await a_chat(session, seeded_school)
        chat_id = chat.id
        chat.status = ChatStatus.LEFT
    slt = await sign_in(UserRole.SLT)
    refused = await slt.post(f"/api/chats/{chat_id}/closure", json={"reason": "abuse"})
    assert refused.status_code == 409
    assert "not a registered chat" in refused.json()["detail"]


async def test_an_administrator_sees_chats_but_cannot_close_them(
    sign_in: SignIn, sessions: Sessions, seeded_school: School
) -> None:
    chat_id = await year3(sessions, seeded_school)
    admin = await sign_in(UserRole.ADMIN)
    page = await admin.get(f"/chats/{chat_id}")
    assert page.status_code == 200
    assert "Close the chat" not in page.text
    refused = await admin.post(f"/api/chats/{chat_id}/closure", json={"reason": "abuse"})
    assert refused.status_code == 403
