"""SLT's review of flags: the queue, one flag examined, decisions on it and actions about it.

One implementation for every transport: the Telegram alert buttons and the admin pages call
these functions inside their own transaction. Whatever must reach someone (the DSL, the
sender, a chat) is queued in the outbox, so it goes if and only if the decision is committed.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy.ext.asyncio import AsyncSession

from bot.errors import BadInputError, ConflictError, NotFoundError
from bot.services import learning
from bot.services.alerts import AlertContext, alert_buttons, alert_text, audience, notify
from bot.services.audit_log import actor_names
from bot.services.outbox import enqueue
from bot.services.reminders import to_sender
from bot.store.models import (
    AuditEvent,
    Chat,
    ChatMember,
    Flag,
    FlagSource,
    FlagStatus,
    OutboxMessage,
    OutboxStatus,
    School,
    StoredMessage,
)
from bot.store.repositories.audit import AuditRepository
from bot.store.repositories.flags import FlagQuery, FlagRepository
from bot.store.repositories.messages import MessageRepository
from bot.store.repositories.outbox import OutboxRepository
from bot.store.repositories.schools import SchoolRepository
from bot.texts import TelegramTexts

# Telegram lets a bot delete a message for 48 hours after it was sent.
DELETE_WITHIN = timedelta(hours=48)
DELETES = frozenset({"telegram"})
"""Platforms on which the bot can delete a member's message. Not WhatsApp: Twilio relays each
message to every member's phone as the school's own, and nothing takes it back from a phone."""
NOT_THE_AUTHOR = (
    "This is a report: the message's author is not known to Schoolgate (the person named is "
    "the parent who reported it), so there is no one to remind, ask to remove it or meet."
)
CONTEXT = 10
"""Messages shown before and after a flagged one."""


class Decision(StrEnum):
    ACKNOWLEDGE = "acknowledge"
    CONFIRM = "confirm"
    """A breach of the code."""
    FALSE_POSITIVE = "false_positive"
    ESCALATE = "escalate"
    """To the Designated Safeguarding Lead: from then on only the DSL sees it."""


class Step(StrEnum):
    """Something done about a flag, beyond deciding it."""

    REMIND = "remind"
    REMOVE = "remove"
    MEET = "meet"


class Outcome(StrEnum):
    QUEUED = "queued"
    """A reminder or meeting request is on its way to the sender."""
    DELETED = "deleted"
    """The bot deletes the message itself."""
    ASKED = "asked sender"
    """The bot cannot delete it (not a group admin, too old, or on WhatsApp): the sender is
    asked to."""


STATUS = {
    Decision.ACKNOWLEDGE: FlagStatus.ACKNOWLEDGED,
    Decision.CONFIRM: FlagStatus.CONFIRMED,
    Decision.FALSE_POSITIVE: FlagStatus.FALSE_POSITIVE,
    Decision.ESCALATE: FlagStatus.ESCALATED,
}
AUDITED = {
    Decision.ACKNOWLEDGE: "flag.acknowledged",
    Decision.CONFIRM: "flag.confirmed",
    Decision.FALSE_POSITIVE: "flag.false_positive",
    Decision.ESCALATE: "flag.escalated",
}
# An acknowledgement says "seen"; it does not undo a decision someone has already taken.
UNDECIDED = (FlagStatus.OPEN, FlagStatus.ACKNOWLEDGED)


@dataclass(frozen=True)
class Reviewer:
    actor: str
    """How the audit log names them: "user:<id>" (admin pages) or "staff:<id>" (Telegram)."""
    name: str


@dataclass(frozen=True)
class Case:
    """A flag and what it is about, all of one school."""

    flag: Flag
    chat: Chat
    sender: ChatMember
    message: StoredMessage
    school_id: int

    @property
    def rules(self) -> list[str]:
        return [reason.rule for reason in self.flag.reasons]

    @property
    def reported(self) -> bool:
        """Forwarded to the report line: its member is the reporter, not the author."""
        return self.flag.source == FlagSource.REPORT


# -- finding flags ---------------------------------------------------------------------------


async def find_case(session: AsyncSession, flag_id: int) -> Case | None:
    """The flag, whatever its school (the caller checks who may act on it)."""
    row = await FlagRepository(session).case(flag_id)
    if row is None or row[1].school_id is None:
        return None
    return Case(*row, school_id=row[1].school_id)


async def open_case(
    session: AsyncSession, flag_id: int, school_id: int, *, see_safeguarding: bool
) -> Case:
    """The school's flag; another school's, or one escalated to the DSL for someone who may
    not see those, is answered as a missing one."""
    row = await FlagRepository(session).case(flag_id, school_id)
    if row is None or (row[0].safeguarding and not see_safeguarding):
        raise NotFoundError(f"There is no flag {flag_id}, or it is not one you can see.")
    return Case(*row, school_id=school_id)


@dataclass(frozen=True)
class QueuePage:
    rows: list[tuple[Flag, Chat, ChatMember]]
    total: int


async def queue(session: AsyncSession, wanted: FlagQuery, page: int, per_page: int) -> QueuePage:
    """One page of the flag queue, newest first."""
    flags = FlagRepository(session)
    rows = await flags.queue(wanted, offset=(page - 1) * per_page, limit=per_page)
    return QueuePage(rows, await flags.count(wanted))


# -- examining one flag ----------------------------------------------------------------------


@dataclass(frozen=True)
class Nearby:
    """A message in the flagged one's chat, around it (or the flagged one itself)."""

    id: int
    sender: str
    sent_at: datetime
    text: str | None
    """The words, where they are kept and the viewer may read them."""
    why_not: str | None
    """Why there are no words, said to the viewer."""
    this: bool = False


@dataclass(frozen=True)
class Examined:
    case: Case
    context: list[Nearby]
    history: list[AuditEvent]
    names: dict[str, str]
    """Who the actors in the history and decision are, by their audit name."""
    removal: OutboxMessage | None = None
    """The bot's deletion of the message from the chat, once asked for: whether it is done."""

    def name(self, actor: str | None) -> str:
        return self.names.get(actor, actor) if actor else ""


async def examine(
    session: AsyncSession, case: Case, viewer: Reviewer, *, see_safeguarding: bool, via: str
) -> Examined:
    """Everything about a flag, its message's words included; the view is audited."""
    context = await _context(session, case, see_safeguarding)
    shown = [n.id for n in context if n.text is not None and not n.this]
    await AuditRepository(session).record(
        viewer.actor, "flag.viewed", f"flag:{case.flag.id}", case.school_id,
        via=via, context_words=shown,
    )  # fmt: skip
    history = await FlagRepository(session).history(case.flag.id, case.school_id)
    actors = [e.actor for e in history] + [case.flag.decided_by, case.flag.acknowledged_by]
    names = await actor_names(session, case.school_id, actors)
    removal = await OutboxRepository(session).by_key(_removal_key(case))
    return Examined(case, context, history, names, removal)


async def _context(session: AsyncSession, case: Case, see_safeguarding: bool) -> list[Nearby]:
    this = _nearby(case.message, case.sender.display_name, hidden=False, this=True)
    if case.reported:
        # The messages around a report are other people's reports, not its chat.
        return [this]
    around = await MessageRepository(session).around(case.message, CONTEXT)
    context = [
        _nearby(n.message, n.sender, hidden=n.safeguarding and not see_safeguarding) for n in around
    ]
    earlier = sum(1 for n in context if (n.sent_at, n.id) < (this.sent_at, this.id))
    return [*context[:earlier], this, *context[earlier:]]


def _nearby(message: StoredMessage, sender: str, *, hidden: bool, this: bool = False) -> Nearby:
    if hidden:
        text, why = None, "words not shown: a safeguarding matter for the DSL"
    elif message.text is None:
        text, why = None, "words not kept"
    else:
        text, why = message.text, None
    return Nearby(message.id, sender, message.sent_at, text, why, this)


# -- decisions -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Decided:
    changed: bool
    """False when the flag already stood so (decided the same way, or an acknowledgement of a
    flag already decided): nothing was changed or recorded."""
    alerted: int = 0
    """Alerts queued to the DSL (an escalation)."""


async def decide(
    session: AsyncSession,
    case: Case,
    decision: Decision,
    reviewer: Reviewer,
    *,
    note: str | None,
    texts: TelegramTexts,
    channels: Collection[str],
    now: datetime,
) -> Decided:
    """Record SLT's decision on a flag (a reason is required when it is not a breach), and
    audit it; an escalation also alerts the school's DSL on their channels among ``channels``
    (those this installation sends on)."""
    flag = case.flag
    status = STATUS[decision]
    if flag.status == status or (decision is Decision.ACKNOWLEDGE and flag.status not in UNDECIDED):
        return Decided(changed=False)  # the decision (and its reason) stands
    note = (note or "").strip() or None
    if decision is Decision.FALSE_POSITIVE and note is None:
        raise BadInputError("Please say why this is not a breach: a reason is required.")
    previous = flag.status
    flag.status = status
    if flag.acknowledged_at is None:
        flag.acknowledged_at, flag.acknowledged_by = now, reviewer.actor
    flag.decided_at, flag.decided_by, flag.decision_note = now, reviewer.actor, note
    alerted = 0
    if decision is Decision.ESCALATE:
        flag.safeguarding = True
        alerted = await _alert_dsl(session, case, reviewer, note, texts=texts, channels=channels)
    school = await SchoolRepository(session).get(case.school_id)
    if school is not None:
        await learning.keep_decision(session, flag, school, case.sender.id, now)
    await AuditRepository(session).record(
        reviewer.actor, AUDITED[decision], f"flag:{flag.id}", case.school_id,
        reason=note, rules=case.rules, previous=str(previous),
        **({"dsl_alerts": alerted} if decision is Decision.ESCALATE else {}),
    )  # fmt: skip
    return Decided(changed=True, alerted=alerted)


async def _alert_dsl(
    session: AsyncSession,
    case: Case,
    reviewer: Reviewer,
    reason: str | None,
    *,
    texts: TelegramTexts,
    channels: Collection[str],
) -> int:
    flag = case.flag
    context = AlertContext(
        flag, list(flag.reasons), case.chat, case.sender, case.message.text or ""
    )
    text = texts.escalated_to_dsl.format(
        name=reviewer.name, reason=reason or "(none given)", alert=alert_text(texts, context)
    )
    dsl = await audience(session, case.school_id, set(), channels=channels, dsl_only=True)
    return await notify(
        session, dsl, key=f"dsl:{flag.id}", text=text, purpose="alert",
        buttons=alert_buttons(texts, flag), school_id=case.school_id, flag_id=flag.id,
    )  # fmt: skip


# -- actions ---------------------------------------------------------------------------------


async def act(
    session: AsyncSession,
    case: Case,
    step: Step,
    reviewer: Reviewer,
    *,
    texts: TelegramTexts,
    now: datetime,
) -> Outcome:
    """Remind the sender, have the message removed, or ask the sender to a meeting: queued
    in the outbox, and audited. A report has no known sender: ConflictError."""
    if case.reported:
        raise ConflictError(NOT_THE_AUTHOR)
    if step is Step.REMIND:
        await _to_sender(session, case, "remind", _reminder(texts, case), "reminder")
        await _audit(session, case, reviewer, "flag.reminder_sent")
        return Outcome.QUEUED
    if step is Step.MEET:
        school = await SchoolRepository(session).get(case.school_id)
        await _to_sender(session, case, "meet", _meeting(texts, case, school), "meeting")
        await _audit(session, case, reviewer, "flag.meeting_requested")
        return Outcome.QUEUED
    outcome = await _remove(session, case, texts, now)
    why = {} if case.chat.platform in DELETES else {"why": f"{case.chat.platform} cannot unsend"}
    await _audit(session, case, reviewer, "flag.removal_requested", outcome=str(outcome), **why)
    return outcome


def acts_on_sender(case: Case) -> bool:
    """Whether the sender can be reminded, asked to remove it or met: not for a report."""
    return not case.reported


def can_delete(case: Case, now: datetime) -> bool:
    """The bot deletes a message itself on Telegram, when it is a group admin and Telegram
    still allows; on WhatsApp never (see DELETES)."""
    return (
        case.chat.platform in DELETES
        and case.chat.bot_is_admin
        and now - case.message.sent_at < DELETE_WITHIN
    )


async def _remove(
    session: AsyncSession, case: Case, texts: TelegramTexts, now: datetime
) -> Outcome:
    earlier = await OutboxRepository(session).by_key(_removal_key(case))
    # After Telegram refused the bot's deletion (rights taken away, message gone, too old),
    # trying again would change nothing: the sender is asked instead.
    refused = earlier is not None and earlier.status == OutboxStatus.FAILED
    if refused or not can_delete(case, now):
        await _to_sender(session, case, "removal", _removal_request(texts, case), "removal")
        return Outcome.ASKED
    chat, message = case.chat, case.message
    await enqueue(
        session, key=_removal_key(case), channel=chat.platform,
        recipient=chat.platform_chat_id, reply_to=message.platform_message_id,
        text=f"Delete message {message.platform_message_id} in {chat.title or 'the chat'} "
        f"(flag {case.flag.id})", purpose="delete", school_id=case.school_id,
        flag_id=case.flag.id, member_id=case.sender.id,
    )  # fmt: skip
    return Outcome.DELETED


def _removal_key(case: Case) -> str:
    """The outbox row that deletes the flagged message: one per flag."""
    return f"delete:{case.flag.id}"


async def _to_sender(session: AsyncSession, case: Case, kind: str, text: str, purpose: str) -> None:
    await to_sender(
        session, case.chat, case.sender, case.message.platform_message_id,
        key=f"{kind}:{case.flag.id}", text=text, purpose=purpose,
    )  # fmt: skip


async def _audit(
    session: AsyncSession, case: Case, reviewer: Reviewer, action: str, **details: str
) -> None:
    await AuditRepository(session).record(
        reviewer.actor, action, f"flag:{case.flag.id}", case.school_id, **details
    )


def first_name(member: ChatMember) -> str:
    return member.display_name.split()[0] if member.display_name.strip() else "there"


def _clause(case: Case) -> str:
    return case.flag.reasons[0].clause if case.flag.reasons else ""


def _reminder(texts: TelegramTexts, case: Case) -> str:
    return texts.reminder_general.format(name=first_name(case.sender), clause=_clause(case))


def _removal_request(texts: TelegramTexts, case: Case) -> str:
    return texts.removal_request.format(
        name=first_name(case.sender), chat=case.chat.title, clause=_clause(case)
    )


def _meeting(texts: TelegramTexts, case: Case, school: School | None) -> str:
    config = school.config if school else {}
    return texts.meeting_request.format(
        name=first_name(case.sender),
        school=school.name if school else "The school",
        chat=case.chat.title,
        platforms=" or ".join(config.get("permitted_platforms", [])),
    )
