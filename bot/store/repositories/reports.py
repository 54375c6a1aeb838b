"""The statistics SQL behind the dashboard and the annual review.

Every query is scoped to one school through the flag's chat. Queries return compact rows and
leave grouping by week or month to Python, because SQLite and PostgreSQL share no date
functions (and the buckets are in the school's time zone, not UTC).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from bot.store.models import Chat, ChatClosure, ClosureStatus, Flag, FlagReason, FlagStatus
from bot.store.repositories.base import Repository


@dataclass(frozen=True)
class FlagFacts:
    """What the statistics need of one flag: never its message, sender or evidence."""

    id: int
    created_at: datetime
    severity: str
    status: FlagStatus
    safeguarding: bool
    acknowledged_at: datetime | None
    rules: tuple[str, ...]


@dataclass(frozen=True)
class OpenCount:
    severity: str
    safeguarding: bool
    status: FlagStatus
    count: int


@dataclass(frozen=True)
class WaitingFlag:
    """An open flag nobody has acknowledged yet."""

    id: int
    created_at: datetime
    severity: str
    chat_title: str
    reasons: tuple[FlagReason, ...]
    """For ``bot.services.alerts.flag_timing``: whether the school was alerted at once depends on
    its own settings for each rule, which SQL cannot see."""

    @property
    def rules(self) -> tuple[str, ...]:
        return tuple(reason.rule for reason in self.reasons)


@dataclass(frozen=True)
class ClosedChat:
    title: str
    closed_at: datetime


class ReportRepository(Repository):
    async def flags_created(
        self,
        school_id: int,
        start: datetime,
        end: datetime,
        *,
        safeguarding: bool = True,
    ) -> list[FlagFacts]:
        """Flags created in [start, end), oldest first; without ``safeguarding``, leaving out
        those escalated to the DSL."""
        query = (
            select(
                Flag.id,
                Flag.created_at,
                Flag.severity,
                Flag.status,
                Flag.safeguarding,
                Flag.acknowledged_at,
                FlagReason.rule,
            )
            .join(Chat, Chat.id == Flag.chat_id)
            .outerjoin(FlagReason, FlagReason.flag_id == Flag.id)
            .where(Chat.school_id == school_id, Flag.created_at >= start, Flag.created_at < end)
            .order_by(Flag.created_at, Flag.id, FlagReason.id)
        )
        if not safeguarding:
            query = query.where(Flag.safeguarding.is_(False))
        facts: dict[int, FlagFacts] = {}
        for id, created_at, severity, status, guarded, acknowledged_at, rule in (
            await self.session.execute(query)
        ).all():
            known = facts.get(id)
            rules = (*known.rules, rule) if known else (rule,)
            facts[id] = FlagFacts(
                id,
                created_at,
                severity,
                FlagStatus(status),
                bool(guarded),
                acknowledged_at,
                tuple(r for r in rules if r is not None),
            )
        return list(facts.values())

    async def open_counts(
        self, school_id: int, statuses: tuple[FlagStatus, ...]
    ) -> list[OpenCount]:
        """How many flags in ``statuses`` there are, by severity, safeguarding and status."""
        query = (
            select(Flag.severity, Flag.safeguarding, Flag.status, func.count(Flag.id))
            .join(Chat, Chat.id == Flag.chat_id)
            .where(Chat.school_id == school_id, Flag.status.in_(statuses))
            .group_by(Flag.severity, Flag.safeguarding, Flag.status)
        )
        return [
            OpenCount(str(severity), bool(guarded), FlagStatus(status), int(count))
            for severity, guarded, status, count in (await self.session.execute(query)).all()
        ]

    async def unacknowledged(
        self, school_id: int, *, safeguarding: bool = True
    ) -> list[WaitingFlag]:
        """The school's open flags nobody has acknowledged, oldest first; without
        ``safeguarding``, leaving out those escalated to the DSL. All of them: which were
        alerted at once is for the caller to decide, by the school's settings."""
        query = (
            select(Flag, Chat.title, Chat.class_name)
            .join(Chat, Chat.id == Flag.chat_id)
            .where(
                Chat.school_id == school_id,
                Flag.status == FlagStatus.OPEN,
                Flag.acknowledged_at.is_(None),
            )
            # The rule and severity decide the timing; the evidence (message words) stays unread.
            .options(selectinload(Flag.reasons).load_only(FlagReason.rule, FlagReason.severity))
            .order_by(Flag.created_at, Flag.id)
        )
        if not safeguarding:
            query = query.where(Flag.safeguarding.is_(False))
        return [
            WaitingFlag(
                flag.id,
                flag.created_at,
                flag.severity,
                title or class_name or "",
                tuple(flag.reasons),
            )
            for flag, title, class_name in (await self.session.execute(query)).all()
        ]

    async def chats_closed(
        self, school_id: int, start: datetime, end: datetime
    ) -> list[ClosedChat]:
        """Chats whose closure finished in [start, end), in order."""
        query = (
            select(Chat.title, Chat.class_name, ChatClosure.closed_at)
            .join(Chat, Chat.id == ChatClosure.chat_id)
            .where(
                Chat.school_id == school_id,
                ChatClosure.status == ClosureStatus.CLOSED,
                ChatClosure.closed_at >= start,
                ChatClosure.closed_at < end,
            )
            .order_by(ChatClosure.closed_at, ChatClosure.id)
        )
        return [
            ClosedChat(title or class_name or "", closed_at)
            for title, class_name, closed_at in (await self.session.execute(query)).all()
            if closed_at is not None  # always, by the query: for the type checker
        ]

    async def first_flag_at(self, school_id: int) -> datetime | None:
        query = (
            select(func.min(Flag.created_at))
            .join(Chat, Chat.id == Flag.chat_id)
            .where(Chat.school_id == school_id)
        )
        first: datetime | None = await self.session.scalar(query)
        return first

    async def safeguarding_among(self, school_id: int, flag_ids: list[int]) -> set[int]:
        """Which of these flags of the school are escalated to the DSL."""
        if not flag_ids:
            return set()
        query = (
            select(Flag.id)
            .join(Chat, Chat.id == Flag.chat_id)
            .where(
                Chat.school_id == school_id,
                Flag.id.in_(flag_ids),
                Flag.safeguarding.is_(True),
            )
        )
        return set(await self.session.scalars(query))
