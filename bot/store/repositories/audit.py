from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from bot.store.models import AuditEvent
from bot.store.repositories.base import Repository


@dataclass(frozen=True)
class AuditFilter:
    """Which events of a school to list; every field left None matches everything."""

    actor: str | None = None
    action_prefix: str | None = None
    """e.g. "flag." for every decision about flags."""
    subject: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    """Exclusive."""
    before_id: int | None = None
    """Only events older than this one: the next page, newest first."""


class AuditRepository(Repository):
    async def record(
        self,
        actor: str,
        action: str,
        subject: str = "",
        school_id: int | None = None,
        **details: Any,
    ) -> AuditEvent:
        event = AuditEvent(
            actor=actor, action=action, subject=subject, school_id=school_id, details=details
        )
        self.session.add(event)
        await self.session.flush()
        return event

    async def listing(self, school_id: int, where: AuditFilter, limit: int) -> list[AuditEvent]:
        """A school's events matching ``where``, newest first (by id: the order they were
        recorded in, even when two share a timestamp)."""
        query = select(AuditEvent).where(AuditEvent.school_id == school_id)
        if where.actor is not None:
            query = query.where(AuditEvent.actor == where.actor)
        if where.action_prefix is not None:
            query = query.where(AuditEvent.action.startswith(where.action_prefix, autoescape=True))
        if where.subject is not None:
            query = query.where(AuditEvent.subject == where.subject)
        if where.since is not None:
            query = query.where(AuditEvent.created_at >= where.since)
        if where.until is not None:
            query = query.where(AuditEvent.created_at < where.until)
        if where.before_id is not None:
            query = query.where(AuditEvent.id < where.before_id)
        return list(await self.session.scalars(query.order_by(AuditEvent.id.desc()).limit(limit)))

    async def actors(self, school_id: int, limit: int = 500) -> list[str]:
        """Everyone and everything that appears in a school's log (for the filter's choices)."""
        query = (
            select(AuditEvent.actor)
            .where(AuditEvent.school_id == school_id)
            .distinct()
            .order_by(AuditEvent.actor)
            .limit(limit)
        )
        return list(await self.session.scalars(query))

    async def actions(self, school_id: int, limit: int = 500) -> list[str]:
        query = (
            select(AuditEvent.action)
            .where(AuditEvent.school_id == school_id)
            .distinct()
            .order_by(AuditEvent.action)
            .limit(limit)
        )
        return list(await self.session.scalars(query))
