"""Closing a chat at SLT's request: requested -> notice posted -> locked -> bot leaves -> closed.

The service records each step and decides the next one; each platform's runtime carries out
its own chats' steps (Telegram: posting, making the chat read-only, leaving; WhatsApp: posting,
then closing the group's conversation, which locks and closes it at once). A cancelled request
stops wherever it has got to, and if the chat was told about it, the chat is told it is off.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.errors import BadInputError, ConflictError
from bot.services.outbox import enqueue
from bot.store.models import Chat, ChatClosure, ChatStatus, ClosureStatus
from bot.store.repositories.audit import AuditRepository
from bot.store.repositories.chats import ACTIVE_CLOSURE, ClosureRepository
from bot.store.repositories.schools import SchoolRepository
from bot.store.repositories.whatsapp import REPORT_LINE_PREFIX
from bot.texts import TelegramTexts

log = logging.getLogger(__name__)

ACTIVE = ACTIVE_CLOSURE
MAX_GRACE = timedelta(hours=72)
GROUP_CHANNELS = {"telegram": "telegram", "whatsapp": "whatsapp-group"}
"""By a chat's platform, the outbox channel that posts to everyone in it."""


def group_channel(chat: Chat) -> str:
    """The outbox channel that posts to the whole of ``chat``."""
    return GROUP_CHANNELS.get(chat.platform, chat.platform)


async def request_closure(
    session: AsyncSession,
    chat: Chat,
    reason: str,
    by: str,
    grace: timedelta,
    now: datetime,
    *,
    actor: str | None = None,
) -> ChatClosure:
    """Ask for ``chat`` to be closed after ``grace``; the running bot carries it out.

    ``by`` is the person asking, by name (members are not told it, the audit log is);
    ``actor`` is how the audit log names them, if not by name (``user:7``).
    """
    if chat.status != ChatStatus.REGISTERED:
        raise ConflictError(f"chat {chat.id} ({chat.title}) is not a registered chat the bot is in")
    if chat.platform_chat_id.startswith(REPORT_LINE_PREFIX):
        raise ConflictError("the WhatsApp report line is not a group: it cannot be closed")
    if not reason.strip():
        raise BadInputError("give the reason for closing the chat: members will be told it")
    if grace < timedelta(0) or grace > MAX_GRACE:
        raise BadInputError("the grace period is 0 to 72 hours")
    closures = ClosureRepository(session)
    if await closures.active(chat.id) is not None:
        raise ConflictError(f"chat {chat.id} ({chat.title}) is already being closed")
    closure = await closures.add(
        ChatClosure(
            chat_id=chat.id, reason=reason.strip(), requested_by=by, requested_at=now,
            grace_until=now + grace,
        )
    )  # fmt: skip
    await AuditRepository(session).record(
        actor or by, "closure.requested", f"chat:{chat.id}", chat.school_id,
        reason=closure.reason, grace_until=closure.grace_until.isoformat(), requested_by=by,
    )  # fmt: skip
    return closure


async def cancel_closure(
    session: AsyncSession,
    chat: Chat,
    by: str,
    now: datetime,
    *,
    texts: TelegramTexts,
    actor: str | None = None,
) -> ChatClosure:
    """Stop the closure under way; if the notice went out, queue word that it is withdrawn."""
    closure = await ClosureRepository(session).active(chat.id)
    if closure is None:
        raise ConflictError(f"chat {chat.id} ({chat.title}) has no closure under way to cancel")
    closure.status, closure.cancelled_at = ClosureStatus.CANCELLED, now
    told = closure.notice_at is not None
    if told:
        school = await SchoolRepository(session).get(chat.school_id) if chat.school_id else None
        await enqueue(
            session, key=f"closure:{closure.id}:cancelled", channel=group_channel(chat),
            recipient=chat.platform_chat_id, purpose="closure", school_id=chat.school_id,
            text=texts.closure_cancelled.format(school=school.name if school else "The school"),
            now=now,
        )  # fmt: skip
    await AuditRepository(session).record(
        actor or by, "closure.cancelled", f"chat:{chat.id}", chat.school_id,
        cancelled_by=by, members_told=told,
    )  # fmt: skip
    return closure


async def due_closures(
    session: AsyncSession, now: datetime, platform: str | None = None
) -> list[ChatClosure]:
    """Closures with a step to take now: a notice to post, a chat to lock, a chat to leave (of
    chats on ``platform`` only, if given: each platform's runtime takes its own chats' steps)."""
    return await ClosureRepository(session).due(now, platform)


async def advance_due_closures(
    sessions: async_sessionmaker[AsyncSession],
    platform: str,
    now: datetime,
    step: Callable[[int, datetime], Awaitable[int]],
    platform_error: type[Exception],
) -> int:
    """Take each of ``platform``'s due closures one ``step`` further; how many moved.

    ``step`` runs in its own transaction per closure, so one chat the platform refuses
    (``platform_error``) is tried again at the next sweep without holding up the others.
    """
    async with sessions() as session:
        due = [closure.id for closure in await due_closures(session, now, platform)]
    moved = 0
    for closure_id in due:
        try:
            moved += await step(closure_id, now)
        except platform_error as error:
            log.warning("closure %s could not move on: %s", closure_id, error)
    return moved


def notice_key(closure: ChatClosure) -> str:
    """The outbox key of the notice that tells a chat it is closing."""
    return f"closure:{closure.id}:notice"


async def post_closure_notice(
    session: AsyncSession, closure: ChatClosure, chat: Chat, texts: TelegramTexts, now: datetime
) -> None:
    """The first step: queue the notice (why, when, and where parents may reach staff
    instead) to everyone in the chat, and record it posted."""
    school = await SchoolRepository(session).get(chat.school_id) if chat.school_id else None
    platforms = " or ".join(school.config.get("permitted_platforms", [])) if school else ""
    text = texts.closure_notice.format(
        school=school.name if school else "The school", reason=closure.reason,
        platforms=platforms, when=f"{closure.grace_until:%A %-d %B at %H:%M} (UTC)",
    )  # fmt: skip
    await enqueue(
        session, key=notice_key(closure), channel=group_channel(chat),
        recipient=chat.platform_chat_id, text=text, purpose="closure", school_id=chat.school_id,
    )  # fmt: skip
    await record_step(session, closure, chat, ClosureStatus.NOTICE_POSTED, now)


async def record_step(
    session: AsyncSession,
    closure: ChatClosure,
    chat: Chat,
    step: ClosureStatus,
    now: datetime,
    problem: str | None = None,
) -> None:
    """Move ``closure`` on to ``step`` and audit it."""
    closure.status = step
    if step == ClosureStatus.NOTICE_POSTED:
        closure.notice_at = now
    elif step == ClosureStatus.LOCKED:
        closure.locked_at = now
    elif step == ClosureStatus.CLOSED:
        closure.closed_at = now
        chat.status, chat.left_at = ChatStatus.LEFT, now
    if problem:
        closure.problem = problem
    await AuditRepository(session).record(
        "system", f"closure.{step}", f"chat:{chat.id}", chat.school_id, problem=problem
    )


@dataclass(frozen=True)
class Step:
    """One line of a closure's timeline: done (with when), or still to come."""

    what: str
    at: datetime | None
    done: bool
    problem: bool = False


def timeline(closure: ChatClosure, platform: str = "telegram") -> list[Step]:
    """How far the closure has got, step by step, and what comes next if it is under way (in
    the words of the chat's ``platform``)."""
    whatsapp = platform == "whatsapp"
    closed = "The group was closed on WhatsApp" if whatsapp else "The bot left the chat: closed"
    leaves = "The group is closed on WhatsApp" if whatsapp else "The bot leaves the chat"
    steps = [Step(f"Requested by {closure.requested_by}", closure.requested_at, True)]
    if closure.notice_at:
        steps.append(Step("Notice posted in the chat", closure.notice_at, True))
    if closure.locked_at:
        if closure.problem:
            steps.append(Step(f"Not made read-only: {closure.problem}", closure.locked_at, True,
                              problem=True))  # fmt: skip
        else:
            steps.append(Step("Made read-only", closure.locked_at, True))
    if closure.closed_at:
        steps.append(Step(closed, closure.closed_at, True))
    if closure.cancelled_at:
        steps.append(Step("Cancelled", closure.cancelled_at, True))
    if closure.status == ClosureStatus.REQUESTED:
        steps.append(Step("Notice to be posted in the chat by the bot", None, False))
    if closure.status in (ClosureStatus.REQUESTED, ClosureStatus.NOTICE_POSTED):
        steps.append(Step("Read-only at the end of the grace period", closure.grace_until, False))
    if closure.status in ACTIVE:
        steps.append(Step(leaves, None, False))
    return steps
