"""Closing a chat at SLT's request: requested -> notice posted -> locked -> bot leaves -> closed.

The service records each step and decides the next one; the channel carries it out (posting,
making the chat read-only, leaving). A cancelled request stops wherever it has got to.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.errors import BadInputError
from bot.store.models import Chat, ChatClosure, ChatStatus, ClosureStatus
from bot.store.repositories.audit import AuditRepository

ACTIVE = (ClosureStatus.REQUESTED, ClosureStatus.NOTICE_POSTED, ClosureStatus.LOCKED)


async def active_closure(session: AsyncSession, chat_id: int) -> ChatClosure | None:
    query = select(ChatClosure).where(
        ChatClosure.chat_id == chat_id, ChatClosure.status.in_(ACTIVE)
    )
    return await session.scalar(query.with_for_update())


async def request_closure(
    session: AsyncSession, chat: Chat, reason: str, by: str, grace: timedelta, now: datetime
) -> ChatClosure:
    if chat.status != ChatStatus.REGISTERED:
        raise BadInputError(f"chat {chat.id} ({chat.title}) is not a registered chat the bot is in")
    if not reason.strip():
        raise BadInputError("give the reason for closing the chat: members will be told it")
    if await active_closure(session, chat.id) is not None:
        raise BadInputError(f"chat {chat.id} ({chat.title}) is already being closed")
    closure = ChatClosure(
        chat_id=chat.id, reason=reason.strip(), requested_by=by, requested_at=now,
        grace_until=now + grace,
    )  # fmt: skip
    session.add(closure)
    await session.flush()
    await AuditRepository(session).record(
        by, "closure.requested", f"chat:{chat.id}", chat.school_id,
        reason=closure.reason, grace_until=closure.grace_until.isoformat(),
    )  # fmt: skip
    return closure


async def cancel_closure(session: AsyncSession, chat: Chat, by: str, now: datetime) -> ChatClosure:
    closure = await active_closure(session, chat.id)
    if closure is None:
        raise BadInputError(f"chat {chat.id} ({chat.title}) has no closure under way to cancel")
    closure.status, closure.cancelled_at = ClosureStatus.CANCELLED, now
    await AuditRepository(session).record(
        by, "closure.cancelled", f"chat:{chat.id}", chat.school_id
    )
    return closure


async def due_closures(session: AsyncSession, now: datetime) -> list[ChatClosure]:
    """Closures with a step to take now: a notice to post, a chat to lock, a chat to leave."""
    query = select(ChatClosure).where(
        (ChatClosure.status == ClosureStatus.REQUESTED)
        | ((ChatClosure.status == ClosureStatus.NOTICE_POSTED) & (ChatClosure.grace_until <= now))
        | (ChatClosure.status == ClosureStatus.LOCKED)
    )
    return list(await session.scalars(query.order_by(ChatClosure.id)))


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
