"""Parents at one school: who they are, their subject access export, and erasure."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.errors import NotFoundError
from bot.policy import PolicyEngine
from bot.services import consent, people
from bot.services.moderation import Retention, check_message
from bot.services.outbox import enqueue
from bot.services.people import ConsentState
from bot.store.db import transaction
from bot.store.models import (
    AuditEvent,
    ChatMember,
    Consent,
    Flag,
    FlagReason,
    OutboxMessage,
    School,
    StoredMessage,
)
from tests.conftest import message
from tests.factories import NOW, a_chat, a_member, a_school, another_school

pytestmark = pytest.mark.anyio
Sessions = async_sessionmaker[AsyncSession]
RETENTION = Retention(metadata=timedelta(days=30), flags=timedelta(days=365))
NASTY = "@mr_okafor Kerry Marsh is an absolute idiot, her number is 07700 900123"
BECKY = "501"


@dataclass(frozen=True)
class World:
    school: School
    elsewhere: School
    flag_id: int


async def a_world(sessions: Sessions, engine: PolicyEngine) -> World:
    """Becky is in Year 3 and Year 4 here (and in a chat at another school); Kerry is in Year 3.
    Becky's nasty message in Year 3 is flagged; her harmless one is only recorded."""
    async with transaction(sessions) as session:
        school = await a_school(session)
        year3 = await a_chat(session, school)
        year4 = await a_chat(session, school, platform_chat_id="-1004", title="Year 4 Parents")
        becky3 = await a_member(session, year3, user_id=BECKY, name="Becky Sutton")
        becky3.username = "becky_s"
        becky4 = await a_member(session, year4, user_id=BECKY, name="Becky S")
        kerry = await a_member(session, year3, user_id="502", name="Kerry Marsh")
        kerry.username = "kerry_m"
        await a_member(session, year3, user_id="503", name="Never Agreed")
        for chat, member in ((year3, becky3), (year4, becky4), (year3, kerry)):
            await consent.give(session, chat, member, "button", NOW)
        year4.notice_version = "test-2"  # a new notice Becky has not agreed to yet
        flagged = await check_message(
            session, engine, year3, becky3, message(NASTY, id="1", sender="Becky Sutton"),
            RETENTION, NOW,
        )  # fmt: skip
        await check_message(
            session, engine, year3, becky3, message("see you at pick up", id="2"), RETENTION, NOW
        )
        await check_message(
            session, engine, year3, kerry, message("Becky Sutton is lovely", id="3"), RETENTION,
            NOW,
        )  # fmt: skip
        assert flagged.flag is not None
        flagged.flag.decision_note = "Spoke to Becky Sutton; Mr Okafor was upset"
        await enqueue(
            session, key="alert:test", channel="telegram", recipient="42", text=NASTY,
            purpose="alert", school_id=school.id, flag_id=flagged.flag.id,
        )  # fmt: skip
        elsewhere = await another_school(session)
        theirs = await a_chat(session, elsewhere, platform_chat_id="-2002", title="Elsewhere")
        becky_there = await a_member(session, theirs, user_id=BECKY, name="Becky Sutton")
        await consent.give(session, theirs, becky_there, "button", NOW)
        return World(school, elsewhere, flagged.flag.id)


async def test_parents_are_grouped_by_person_with_their_consent_in_each_chat(
    sessions: Sessions, engine: PolicyEngine
) -> None:
    world = await a_world(sessions, engine)
    async with transaction(sessions) as session:
        found = await people.parents(session, world.school.id)
        elsewhere = await people.parents(session, world.elsewhere.id)
    assert [(p.user_id, p.names) for p in found] == [
        (BECKY, ["Becky Sutton", "Becky S"]),
        ("502", ["Kerry Marsh"]),
    ]
    assert [(m.chat.title, m.state) for m in found[0].memberships] == [
        ("Year 3 Parents", ConsentState.AGREED),
        ("Year 4 Parents", ConsentState.OLD_NOTICE),
    ]
    assert [len(p.memberships) for p in elsewhere] == [1]  # only that school's chat


async def test_viewing_a_parent_is_audited(sessions: Sessions, engine: PolicyEngine) -> None:
    world = await a_world(sessions, engine)
    async with transaction(sessions) as session:
        record = await people.view_parent(
            session, world.school.id, "telegram", BECKY, "user:1", safeguarding=False
        )
        assert record.messages == 2
        assert [flag.id for flag, _ in record.flags] == [world.flag_id]
        with pytest.raises(NotFoundError):
            await people.view_parent(
                session, world.school.id, "telegram", "503", "user:1", safeguarding=False
            )  # on record in a chat, but never agreed: not a parent the school holds
        events = list(await session.scalars(select(AuditEvent).where(
            AuditEvent.action == "parent.viewed")))  # fmt: skip
    assert [(e.actor, e.subject) for e in events] == [("user:1", f"telegram:user:{BECKY}")]


async def test_the_export_holds_this_schools_data_with_other_people_redacted(
    sessions: Sessions, engine: PolicyEngine
) -> None:
    world = await a_world(sessions, engine)
    async with transaction(sessions) as session:
        export = await people.export(
            session, world.school, "telegram", BECKY, "user:1", NOW, safeguarding=False
        )
    text = json.dumps(export.model_dump(mode="json"))
    assert [m.chat for m in export.memberships] == ["Year 3 Parents", "Year 4 Parents"]
    year3 = export.memberships[0]
    assert year3.name == "Becky Sutton"
    assert [m.text for m in year3.messages] == [
        "[redacted] [redacted] is an absolute idiot, her number is [redacted]",
        None,  # not flagged: its words were never kept
    ]
    [flag] = year3.flags
    assert {r.rule for r in flag.reasons} >= {"staff-contact", "confidential-info"}
    assert flag.decision_note == "Spoke to Becky Sutton; [redacted] was upset"
    for other in ("Kerry", "Marsh", "kerry_m", "okafor", "Okafor", "07700", "Elsewhere"):
        assert other not in text
    assert "decided_by" not in text
    assert "acknowledged_by" not in text
    assert export.withheld is None
    async with transaction(sessions) as session:
        [event] = await session.scalars(
            select(AuditEvent).where(AuditEvent.action == "parent.exported")
        )
    assert event.details["messages"] == 2


async def test_a_flag_escalated_to_the_dsl_is_exported_only_by_the_dsl(
    sessions: Sessions, engine: PolicyEngine
) -> None:
    world = await a_world(sessions, engine)
    async with transaction(sessions) as session:
        flag = await session.get(Flag, world.flag_id)
        assert flag is not None
        flag.safeguarding = True
    async with transaction(sessions) as session:
        partial = await people.export(
            session, world.school, "telegram", BECKY, "user:1", NOW, safeguarding=False
        )
        full = await people.export(
            session, world.school, "telegram", BECKY, "user:2", NOW, safeguarding=True
        )
    assert partial.memberships[0].flags == []
    assert [m.text for m in partial.memberships[0].messages] == [None, None]
    assert partial.withheld is not None
    assert "Designated Safeguarding Lead" in partial.withheld
    assert len(full.memberships[0].flags) == 1
    assert full.withheld is None


async def test_erasure_leaves_flags_as_numbers_and_nothing_personal(
    sessions: Sessions, engine: PolicyEngine
) -> None:
    world = await a_world(sessions, engine)
    async with transaction(sessions) as session:
        erased = await people.erase(session, world.school.id, "telegram", BECKY, "user:1", NOW)
    assert (erased.memberships, erased.consents_withdrawn, erased.consents_deleted) == (2, 2, 2)
    assert (erased.messages_deleted, erased.flags_kept, erased.outbox_deleted) == (1, 1, 1)

    async with transaction(sessions) as session:
        members = list(await session.scalars(select(ChatMember).order_by(ChatMember.id)))
        mine = [m for m in members if m.display_name == "Erased member"]
        assert len(mine) == 2
        for member in mine:
            assert member.platform_user_id == f"erased:{member.id}"
            assert member.username is None
            assert member.private_chat_id is None
            assert member.left_at is not None
        erased_ids = [m.id for m in mine]
        assert not list(await session.scalars(
            select(Consent).where(Consent.member_id.in_(erased_ids))))  # fmt: skip
        [bare] = await session.scalars(
            select(StoredMessage).where(StoredMessage.member_id.in_(erased_ids))
        )
        assert bare.text is None
        assert bare.platform_message_id == f"erased:{bare.id}"
        flag = await session.get(Flag, world.flag_id)
        assert flag is not None
        assert flag.decision_note is None
        reasons = list(await session.scalars(
            select(FlagReason).where(FlagReason.flag_id == world.flag_id)))  # fmt: skip
        assert reasons
        assert all("erased" in r.evidence for r in reasons)
        assert {r.rule for r in reasons} >= {"staff-contact"}  # the numbers stay
        assert not list(await session.scalars(select(OutboxMessage)))
        # Kerry, and Becky at the other school, are untouched.
        assert {m.display_name for m in members} >= {"Kerry Marsh", "Becky Sutton"}
        assert len(await people.parents(session, world.elsewhere.id)) == 1
        assert [p.user_id for p in await people.parents(session, world.school.id)] == ["502"]
        with pytest.raises(NotFoundError):
            await people.export(
                session, world.school, "telegram", BECKY, "user:1", NOW, safeguarding=True
            )
        with pytest.raises(NotFoundError):  # a tombstone is no one
            await people.parent(session, world.school.id, "telegram", f"erased:{mine[0].id}")
        [event] = await session.scalars(
            select(AuditEvent).where(AuditEvent.action == "parent.erased")
        )
    assert event.details["messages_deleted"] == 1
    assert "Becky" not in json.dumps(event.details)
    assert "Becky" not in event.subject
