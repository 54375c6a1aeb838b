"""Parents known to the bot at one school: who they are, what is held about them, their export
(subject access, with other people redacted) and erasure.

A parent is a platform and a platform user id, with one membership per chat; only people who
agreed to the notice are ever on record. Everything here is within one school: the bot may serve
several, and a school answers only for what it holds. (``consent.subject_access`` is the
member's own /mydata, across every school.)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from bot.errors import NotFoundError
from bot.policy.redaction import Redactor, handle_forms, name_forms, staff_forms
from bot.policy.school import SchoolConfig
from bot.services import learning
from bot.store.models import Chat, ChatMember, Consent, Flag, School
from bot.store.repositories.audit import AuditRepository
from bot.store.repositories.flags import FlagRepository
from bot.store.repositories.members import ConsentRepository
from bot.store.repositories.messages import MessageRepository
from bot.store.repositories.people import PeopleRepository
from bot.store.repositories.schools import SchoolRepository


class ConsentState(StrEnum):
    AGREED = "agreed"
    """To the chat's current notice: their messages are read."""
    OLD_NOTICE = "old_notice"
    """To an earlier notice only: asked again, and not read until they agree."""
    WITHDRAWN = "withdrawn"


CONSENT_LABELS = {
    ConsentState.AGREED: "Agreed",
    ConsentState.OLD_NOTICE: "Agreed to an old notice",
    ConsentState.WITHDRAWN: "Withdrawn",
}


def consent_state(chat: Chat, consents: Iterable[Consent]) -> ConsentState:
    """The state of a member's consent in ``chat``, from their consents (as ``current`` reads)."""
    in_force = [c for c in consents if c.withdrawn_at is None]
    if not in_force:
        return ConsentState.WITHDRAWN
    latest = max(in_force, key=lambda c: (c.given_at, c.id))
    return (
        ConsentState.AGREED
        if latest.notice_version == chat.notice_version
        else (ConsentState.OLD_NOTICE)
    )


@dataclass(frozen=True)
class Membership:
    member: ChatMember
    chat: Chat
    consents: list[Consent]

    @property
    def state(self) -> ConsentState:
        return consent_state(self.chat, self.consents)


@dataclass(frozen=True)
class Parent:
    platform: str
    user_id: str
    memberships: list[Membership] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        return list(dict.fromkeys(m.member.display_name for m in self.memberships))

    @property
    def usernames(self) -> list[str]:
        return list(dict.fromkeys(m.member.username for m in self.memberships if m.member.username))


async def _memberships(
    session: AsyncSession, rows: list[tuple[ChatMember, Chat]]
) -> list[Membership]:
    consents = await ConsentRepository(session).for_members([member.id for member, _ in rows])
    return [Membership(member, chat, consents[member.id]) for member, chat in rows]


async def parents(session: AsyncSession, school_id: int) -> list[Parent]:
    """Everyone in the school's chats who has agreed at some point, one entry per person."""
    rows = await PeopleRepository(session).parents(school_id)
    found: dict[tuple[str, str], Parent] = {}
    for membership in await _memberships(session, rows):
        key = (membership.chat.platform, membership.member.platform_user_id)
        found.setdefault(key, Parent(*key)).memberships.append(membership)
    return sorted(found.values(), key=lambda p: (p.names[0].lower() if p.names else "", p.user_id))


async def parent(session: AsyncSession, school_id: int, platform: str, user_id: str) -> Parent:
    """One person as the parents list shows them (someone who agreed at some point), with all
    their memberships of the school's chats."""
    rows = await PeopleRepository(session).of_person(school_id, platform, user_id)
    memberships = await _memberships(session, rows)
    if not any(m.consents for m in memberships):
        raise NotFoundError("There is no such parent at your school.")
    return Parent(platform, user_id, memberships)


def _subject(platform: str, user_id: str) -> str:
    return f"{platform}:user:{user_id}"


@dataclass(frozen=True)
class ParentRecord:
    parent: Parent
    messages: int
    """Message records held (their words only while flagged)."""
    flags: list[tuple[Flag, Chat]]
    """The flags the viewer may see: those escalated to the DSL only for the DSL."""


async def view_parent(
    session: AsyncSession,
    school_id: int,
    platform: str,
    user_id: str,
    actor: str,
    *,
    safeguarding: bool,
) -> ParentRecord:
    """A parent's chats, consents, message count and flags; the view is audited."""
    found = await parent(session, school_id, platform, user_id)
    member_ids = [m.member.id for m in found.memberships]
    counts = await PeopleRepository(session).message_counts(member_ids)
    flags = FlagRepository(session)
    seen: list[tuple[Flag, Chat]] = []
    for membership in found.memberships:
        for flag in await flags.for_member(membership.member.id):
            if safeguarding or not flag.safeguarding:
                seen.append((flag, membership.chat))
    await AuditRepository(session).record(
        actor, "parent.viewed", _subject(platform, user_id), school_id,
        chats=len(found.memberships),
    )  # fmt: skip
    return ParentRecord(found, sum(counts.values()), seen)


# -- subject access ---------------------------------------------------------------------------


class ConsentRecord(BaseModel):
    notice_version: str
    method: str
    given_at: datetime
    withdrawn_at: datetime | None


class MessageRecord(BaseModel):
    sent_at: datetime
    edited_at: datetime | None
    text: str | None
    """The words, kept only while the message is flagged; other people redacted."""
    contacted_staff: bool
    media: list[str]


class ReasonRecord(BaseModel):
    rule: str
    severity: str
    clause: str
    evidence: str


class FlagRecord(BaseModel):
    created_at: datetime
    severity: str
    status: str
    decided_at: datetime | None
    decision_note: str | None
    reasons: list[ReasonRecord]


class MembershipRecord(BaseModel):
    chat: str
    class_name: str | None
    name: str
    username: str | None
    first_seen_at: datetime
    left_at: datetime | None
    consents: list[ConsentRecord]
    messages: list[MessageRecord]
    flags: list[FlagRecord]


class SubjectExport(BaseModel):
    """Everything one school holds about one person, other people's details redacted."""

    school: str
    platform: str
    user_id: str
    exported_at: datetime
    memberships: list[MembershipRecord]
    withheld: str | None = None
    """Said when something was left out because the person exporting may not see it."""


async def _redactor(session: AsyncSession, school: School, subject: Parent) -> Redactor:
    own: set[str] = set()
    for name in subject.names:
        own |= name_forms(name)
    for username in subject.usernames:
        own |= handle_forms(username)
    others = staff_forms(SchoolConfig.model_validate(school.config).staff)
    for staff in await SchoolRepository(session).staff(school.id):
        others |= name_forms(staff.name)
    for platform, member in await PeopleRepository(session).everyone_in_school(school.id):
        if (platform, member.platform_user_id) == (subject.platform, subject.user_id):
            continue
        others |= name_forms(member.display_name)
        if member.username:
            others |= handle_forms(member.username)
    return Redactor(others, own)


async def export(
    session: AsyncSession,
    school: School,
    platform: str,
    user_id: str,
    actor: str,
    now: datetime,
    *,
    safeguarding: bool,
) -> SubjectExport:
    """The school's subject access export for one person; audited.

    Flags escalated to the DSL are left out unless ``safeguarding`` (the DSL exporting), and
    the export then says something was withheld. Staff's names are never in it.
    """
    found = await parent(session, school.id, platform, user_id)
    redact = await _redactor(session, school, found)
    messages, flags = MessageRepository(session), FlagRepository(session)
    records: list[MembershipRecord] = []
    withheld = 0
    for membership in found.memberships:
        member = membership.member
        member_flags = await flags.for_member(member.id)
        hidden_flags = [f for f in member_flags if f.safeguarding and not safeguarding]
        hidden = {f.message_id for f in hidden_flags}
        withheld += len(hidden_flags)
        records.append(
            MembershipRecord(
                chat=redact(membership.chat.title), class_name=membership.chat.class_name,
                name=member.display_name, username=member.username,
                first_seen_at=member.first_seen_at, left_at=member.left_at,
                consents=[ConsentRecord(notice_version=c.notice_version, method=c.method,
                                        given_at=c.given_at, withdrawn_at=c.withdrawn_at)
                          for c in membership.consents],
                messages=[MessageRecord(sent_at=m.sent_at, edited_at=m.edited_at,
                                        text=redact(m.text) if m.text and m.id not in hidden
                                        else None,
                                        contacted_staff=m.contacted_staff, media=m.media_kinds)
                          for m in await messages.for_member(member.id)],
                flags=[_flag_record(f, redact) for f in member_flags
                       if f.message_id not in hidden],
            )
        )  # fmt: skip
    await AuditRepository(session).record(
        actor, "parent.exported", _subject(platform, user_id), school.id,
        chats=len(records), messages=sum(len(r.messages) for r in records),
        flags=sum(len(r.flags) for r in records), withheld=withheld,
    )  # fmt: skip
    return SubjectExport(
        school=school.name, platform=platform, user_id=user_id, exported_at=now,
        memberships=records,
        withheld=(
            f"{withheld} flag(s) escalated to the Designated Safeguarding Lead are not included: "
            "the DSL can make the complete export." if withheld else None
        ),
    )  # fmt: skip


def _flag_record(flag: Flag, redact: Redactor) -> FlagRecord:
    return FlagRecord(
        created_at=flag.created_at, severity=flag.severity, status=str(flag.status),
        decided_at=flag.decided_at,
        decision_note=redact(flag.decision_note) if flag.decision_note else None,
        reasons=[ReasonRecord(rule=r.rule, severity=r.severity, clause=r.clause,
                              evidence=redact(r.evidence)) for r in flag.reasons],
    )  # fmt: skip


# -- erasure ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Erased:
    memberships: int
    consents_withdrawn: int
    consents_deleted: int
    messages_deleted: int
    flags_kept: int
    """Kept as numbers for the annual report: rule, severity, dates, status."""
    outbox_deleted: int


async def erase(
    session: AsyncSession, school_id: int, platform: str, user_id: str, actor: str, now: datetime
) -> Erased:
    """Erase everything the school holds about one person, keeping their flags only as numbers.

    Their consents are withdrawn and deleted, their messages' words and the evidence quoting
    them deleted, their message records deleted (a flagged one stays as a bare record, which
    the flag needs), messages to them or about their flags dropped from the outbox, and their
    membership rows anonymised. The audit entry has the counts, not the name.
    """
    found = await parent(session, school_id, platform, user_id)
    member_ids = [m.member.id for m in found.memberships]
    people = PeopleRepository(session)
    withdrawn = await people.consents_in_force(member_ids)
    flag_ids = await people.flag_ids(member_ids)
    await people.strip_flags(flag_ids)
    await learning.forget_members(session, member_ids, now)
    deleted, _ = await people.delete_messages(member_ids)
    outbox = await people.delete_outbox(member_ids, flag_ids)
    erased = Erased(
        memberships=len(member_ids), consents_withdrawn=withdrawn,
        consents_deleted=await people.delete_consents(member_ids), messages_deleted=deleted,
        flags_kept=len(flag_ids), outbox_deleted=outbox,
    )  # fmt: skip
    await people.anonymise(member_ids, now)
    await AuditRepository(session).record(
        actor, "parent.erased", _subject(platform, user_id), school_id,
        memberships=erased.memberships, consents_withdrawn=erased.consents_withdrawn,
        consents_deleted=erased.consents_deleted, messages_deleted=erased.messages_deleted,
        flags_kept=erased.flags_kept, outbox_deleted=erased.outbox_deleted,
    )  # fmt: skip
    return erased
