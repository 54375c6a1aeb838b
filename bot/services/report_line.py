"""The report line: a message someone sends the school's number (a worrying message they
forwarded from a WhatsApp group) is classified with the school's engine and always lands in the
flag queue, as a flag with ``source=REPORT``, even when no rule matched (a person chose to report
it: it then has no reasons and severity "low").

A report belongs to a per-school pseudo chat, "WhatsApp report line", whose member is the
reporter; the words of the reported message are kept (it is a flag). Where the report came from
is what the reporter says: "From Year 3 Parents: ..." at the start, or their answer to "Which
group was it from?" within an hour.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from bot.policy import ChatMessage, PolicyEngine
from bot.services.checking import verdict_of
from bot.services.moderation import Retention
from bot.store.models import (
    Chat,
    ChatMember,
    ChatStatus,
    Flag,
    FlagReason,
    FlagSource,
    FlagStatus,
    School,
    StoredMessage,
)
from bot.store.repositories.audit import AuditRepository
from bot.store.repositories.chats import ChatRepository
from bot.store.repositories.flags import FlagRepository
from bot.store.repositories.members import MemberRepository
from bot.store.repositories.messages import MessageRepository
from bot.store.repositories.schools import SchoolRepository
from bot.store.repositories.whatsapp import (
    PLATFORM,
    REPORT_LINE_PREFIX,
    GroupRepository,
    ReportRepository,
)

TITLE = "WhatsApp report line"
QUESTION_VALID = timedelta(hours=1)
"""How long a reporter's next message may answer "Which group was it from?"."""
MAX_GROUP_NAME = 100
_NAMED = re.compile(
    rf"^\s*(?:from|in)\s+(?P<group>[^:\n]{{1,{MAX_GROUP_NAME}}}?)\s*:\s*(?P<rest>.*)\Z",
    re.IGNORECASE | re.DOTALL,
)


@dataclass(frozen=True)
class Named:
    group: str | None
    """The chat the reporter says it came from, if they said."""
    text: str
    """The reported message, without that."""


def named_group(text: str) -> Named:
    """ "From Year 3 Parents: you're all idiots" names "Year 3 Parents"."""
    found = _NAMED.match(text)
    if found is None:
        return Named(None, text)
    return Named(" ".join(found["group"].split()), found["rest"].strip())


async def school_for(session: AsyncSession, address: str, group: str | None) -> School | None:
    """Which school a report is for: the one whose chat the reporter names, else the one whose
    WhatsApp chats they are on record in, else the only school; None if that says nothing."""
    groups = GroupRepository(session)
    schools = SchoolRepository(session)
    candidates: list[set[int]] = []
    if group:
        candidates.append(
            {c.school_id for c in await groups.registered_named(group) if c.school_id}
        )
    candidates.append(await groups.schools_of(address))
    candidates.append({school.id for school in await schools.all()})
    for found in candidates:
        if len(found) == 1:
            return await schools.get(next(iter(found)))
    return None


async def report_line(session: AsyncSession, school: School, now: datetime) -> Chat:
    """The school's report-line chat, made on first use."""
    chat = await ChatRepository(session).find_or_add(
        PLATFORM, f"{REPORT_LINE_PREFIX}{school.id}", TITLE
    )
    if chat.status != ChatStatus.REGISTERED:
        chat.school_id, chat.status, chat.registered_at = school.id, ChatStatus.REGISTERED, now
        await session.flush()
    return chat


@dataclass(frozen=True)
class Report:
    flag: Flag
    reasons: list[FlagReason]
    chat: Chat
    reporter: ChatMember


async def file_report(
    session: AsyncSession,
    engine: PolicyEngine,
    school: School,
    message: ChatMessage,
    *,
    reporter_name: str,
    reported_from: str | None,
    retention: Retention,
    now: datetime,
) -> Report:
    """Classify ``message`` (its sender is the reporter: ``message.sender.id`` their address)
    and put it in ``school``'s flag queue as a report."""
    # The reported words are someone else's: judge them as from an unknown sender (a reporter
    # on the staff list would otherwise have them pass as a member of staff's own).
    verdict = await verdict_of(
        engine, replace(message, sender=replace(message.sender, id="", name=""))
    )
    chat = await report_line(session, school, now)
    reporter = await MemberRepository(session).find_or_add(
        chat.id, message.sender.id, reporter_name[:255], None
    )
    stored = await MessageRepository(session).add(
        StoredMessage(
            chat_id=chat.id, member_id=reporter.id, platform_message_id=message.id,
            sent_at=message.sent_at, media_kinds=[m.kind for m in message.media],
            text=message.text, keep_until=now + retention.flags,
        )
    )  # fmt: skip
    reasons = [
        FlagReason(
            rule=str(e.rule),
            severity=e.severity.label,
            clause=e.clause,
            evidence=e.evidence,
            source=e.source,
        )
        for e in verdict.explanations
    ]
    flag = await FlagRepository(session).add(
        Flag(
            message_id=stored.id, chat_id=chat.id, member_id=reporter.id,
            severity=verdict.severity.label if verdict.severity else "low",
            status=FlagStatus.OPEN, created_at=now, keep_until=now + retention.flags,
            reasons=reasons, source=FlagSource.REPORT,
            reported_from=reported_from[:255] if reported_from else None,
        )
    )  # fmt: skip
    await AuditRepository(session).record(
        f"{PLATFORM}:user:{reporter.platform_user_id}", "flag.reported", f"flag:{flag.id}",
        school.id, rules=[str(r) for r in verdict.rules], chat=chat.id,
    )  # fmt: skip
    return Report(flag, reasons, chat, reporter)


async def answer_which_group(
    session: AsyncSession,
    address: str,
    answer: str,
    now: datetime,
    *,
    valid_for: timedelta = QUESTION_VALID,
) -> int:
    """The reporter's answer to "Which group was it from?": it fills ``reported_from`` of their
    reports of the last ``valid_for`` that lack it. How many it filled (0: no question was
    waiting, or the answer is too long to be a group's name)."""
    group = " ".join(answer.split())
    if not group or len(group) > MAX_GROUP_NAME:
        return 0
    reports = ReportRepository(session)
    waiting = await reports.awaiting_group(address, now - valid_for)
    if not waiting:
        return 0
    for flag in waiting:
        flag.reported_from = group
        chat = await ChatRepository(session).get(flag.chat_id)
        await AuditRepository(session).record(
            f"{PLATFORM}:user:{address}", "flag.reported_from", f"flag:{flag.id}",
            chat.school_id if chat else None,
        )  # fmt: skip
    return len(waiting)
