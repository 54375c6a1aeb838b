from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TypeVarTuple

from sqlalchemy import Select, exists, func, select
from sqlalchemy.orm import selectinload

from bot.store.models import (
    MAX_ID,
    AuditEvent,
    Chat,
    ChatMember,
    Flag,
    FlagReason,
    FlagSource,
    FlagStatus,
    StoredMessage,
)
from bot.store.repositories.base import Repository

Columns = TypeVarTuple("Columns")


@dataclass(frozen=True)
class FlagQuery:
    """Which of a school's flags to list; None means any."""

    school_id: int
    with_safeguarding: bool
    """Also flags escalated to the DSL (only for those allowed to see them)."""
    rule: str | None = None
    severity: str | None = None
    chat_id: int | None = None
    status: FlagStatus | None = None
    source: FlagSource | None = None
    """A message in a chat, or one forwarded to the report line."""
    since: datetime | None = None
    before: datetime | None = None


class FlagRepository(Repository):
    async def add(self, flag: Flag) -> Flag:
        self.session.add(flag)
        await self.session.flush()
        return flag

    async def with_reasons(self, flag_id: int) -> Flag | None:
        query = select(Flag).where(Flag.id == flag_id).options(selectinload(Flag.reasons))
        return await self.session.scalar(query)

    async def case(
        self, flag_id: int, school_id: int | None = None
    ) -> tuple[Flag, Chat, ChatMember, StoredMessage] | None:
        """A flag with its reasons, chat, sender and message; with ``school_id``, only if its
        chat belongs to that school."""
        if not 1 <= flag_id <= MAX_ID:
            return None
        query = (
            select(Flag, Chat, ChatMember, StoredMessage)
            .join(Chat, Chat.id == Flag.chat_id)
            .join(ChatMember, ChatMember.id == Flag.member_id)
            .join(StoredMessage, StoredMessage.id == Flag.message_id)
            .where(Flag.id == flag_id)
            .options(selectinload(Flag.reasons))
        )
        if school_id is not None:
            query = query.where(Chat.school_id == school_id)
        row = (await self.session.execute(query)).first()
        return None if row is None else (row[0], row[1], row[2], row[3])

    async def for_message(self, message_id: int) -> Flag | None:
        query = (
            select(Flag)
            .where(Flag.message_id == message_id)
            .options(selectinload(Flag.reasons))
            .order_by(Flag.id.desc())
        )
        return await self.session.scalar(query.limit(1))

    async def listing(self, chat_ids: list[int] | None = None, limit: int = 1000) -> list[Flag]:
        query = select(Flag).options(selectinload(Flag.reasons)).order_by(Flag.id)
        if chat_ids is not None:
            query = query.where(Flag.chat_id.in_(chat_ids))
        return list(await self.session.scalars(query.limit(limit)))

    async def for_member(self, member_id: int) -> list[Flag]:
        query = (
            select(Flag)
            .where(Flag.member_id == member_id)
            .options(selectinload(Flag.reasons))
            .order_by(Flag.id)
        )
        return list(await self.session.scalars(query))

    async def queue(
        self, wanted: FlagQuery, *, offset: int, limit: int
    ) -> list[tuple[Flag, Chat, ChatMember]]:
        """One page of the school's flags that match, newest first."""
        query = (
            _matching(select(Flag, Chat, ChatMember), wanted)
            .join(ChatMember, ChatMember.id == Flag.member_id)
            .options(selectinload(Flag.reasons))
            .order_by(Flag.created_at.desc(), Flag.id.desc())
            .offset(offset)
            .limit(limit)
        )
        return [(flag, chat, sender) for flag, chat, sender in await self.session.execute(query)]

    async def count(self, wanted: FlagQuery) -> int:
        query = _matching(select(func.count(Flag.id)), wanted)
        return int(await self.session.scalar(query) or 0)

    async def history(self, flag_id: int, school_id: int) -> list[AuditEvent]:
        """What the audit log holds about the flag, oldest first."""
        query = (
            select(AuditEvent)
            .where(AuditEvent.subject == f"flag:{flag_id}", AuditEvent.school_id == school_id)
            .order_by(AuditEvent.created_at, AuditEvent.id)
        )
        return list(await self.session.scalars(query))


def _matching(query: Select[*Columns], wanted: FlagQuery) -> Select[*Columns]:
    query = query.join(Chat, Chat.id == Flag.chat_id).where(Chat.school_id == wanted.school_id)
    if not wanted.with_safeguarding:
        query = query.where(Flag.safeguarding.is_(False))
    if wanted.rule is not None:
        reason = exists().where(FlagReason.flag_id == Flag.id, FlagReason.rule == wanted.rule)
        query = query.where(reason)
    if wanted.severity is not None:
        query = query.where(Flag.severity == wanted.severity)
    if wanted.chat_id is not None:
        query = query.where(Flag.chat_id == wanted.chat_id)
    if wanted.status is not None:
        query = query.where(Flag.status == wanted.status)
    if wanted.source is not None:
        query = query.where(Flag.source == wanted.source)
    if wanted.since is not None:
        query = query.where(Flag.created_at >= wanted.since)
    if wanted.before is not None:
        query = query.where(Flag.created_at < wanted.before)
    return query
