from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite

from bot.store.models import InboxItem, InboxStatus, utcnow
from bot.store.repositories.base import Repository


class InboxRepository(Repository):
    async def add(self, platform: str, update_id: int, payload: dict[str, Any] | None) -> bool:
        """Store an update once: False when this update id was stored before (a replay)."""
        dialect = self.session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        statement = (
            insert(InboxItem)
            .values(
                platform=platform,
                update_id=update_id,
                payload=payload,
                status=InboxStatus.PENDING if payload is not None else InboxStatus.REJECTED,
                received_at=utcnow(),
                attempts=0,
            )
            .on_conflict_do_nothing(index_elements=["platform", "update_id"])
            .returning(InboxItem.id)
        )
        return (await self.session.scalar(statement)) is not None

    async def claim(self, platform: str, update_id: int) -> InboxItem | None:
        """The pending item for this update, locked for processing."""
        query = select(InboxItem).where(
            InboxItem.platform == platform,
            InboxItem.update_id == update_id,
            InboxItem.status == InboxStatus.PENDING,
        )
        return await self.session.scalar(query.with_for_update(skip_locked=True))

    async def pending(self, platform: str, limit: int = 100) -> list[int]:
        """Update ids waiting to be processed: those never tried first, then oldest first, so an
        update being retried never holds up the ones behind it."""
        query = (
            select(InboxItem.update_id)
            .where(InboxItem.platform == platform, InboxItem.status == InboxStatus.PENDING)
            .order_by(InboxItem.attempts, InboxItem.update_id)
            .limit(limit)
        )
        return list(await self.session.scalars(query))

    async def set_aside(self, since: datetime, limit: int) -> tuple[int, list[InboxItem]]:
        """Updates that could not be processed, received since ``since``: how many, and the most
        recent ``limit`` of them (their content is gone; what went wrong is kept)."""
        failed = (InboxItem.status == InboxStatus.FAILED, InboxItem.received_at >= since)
        count = await self.session.scalar(select(func.count()).where(*failed))
        query = select(InboxItem).where(*failed).order_by(InboxItem.id.desc()).limit(limit)
        return count or 0, list(await self.session.scalars(query))

    @staticmethod
    def finish(item: InboxItem, status: InboxStatus, error: str | None = None) -> None:
        """Mark an item done. Its payload goes: received content is never kept past this point."""
        item.status = status
        item.payload = None
        item.error = error
        item.processed_at = utcnow()
