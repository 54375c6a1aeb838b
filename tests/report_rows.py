"""Flags with chosen times, rules and decisions, for the dashboard and report tests: what the
statistics count, without running the policy engine for each."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from bot.store.models import Chat, ChatMember, Flag, FlagReason, FlagStatus, StoredMessage

_ids = itertools.count(1)


async def a_flag(
    session: AsyncSession,
    chat: Chat,
    member: ChatMember,
    *,
    at: datetime,
    rules: Sequence[str] = ("staff-contact",),
    severity: str = "low",
    status: FlagStatus = FlagStatus.OPEN,
    acknowledged_after: timedelta | None = None,
    safeguarding: bool = False,
) -> Flag:
    """A flag raised at ``at`` on a new message of ``member``'s, acknowledged
    ``acknowledged_after`` later (if given)."""
    stored = StoredMessage(
        chat_id=chat.id, member_id=member.id, platform_message_id=f"m{next(_ids)}", sent_at=at,
        text="words the statistics never show", keep_until=at + timedelta(days=365),
    )  # fmt: skip
    session.add(stored)
    await session.flush()
    flag = Flag(
        message_id=stored.id, chat_id=chat.id, member_id=member.id, severity=severity,
        status=status, created_at=at, keep_until=at + timedelta(days=365),
        safeguarding=safeguarding,
        acknowledged_at=at + acknowledged_after if acknowledged_after is not None else None,
        acknowledged_by="user:1" if acknowledged_after is not None else None,
        reasons=[
            FlagReason(rule=rule, severity=severity, clause="a clause", evidence="evidence")
            for rule in rules
        ],
    )  # fmt: skip
    session.add(flag)
    await session.flush()
    return flag
