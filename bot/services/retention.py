"""Deleting what has been kept long enough: message records, flags and processed updates."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from bot.store.models import (
    Flag,
    InboxItem,
    InboxStatus,
    OutboxMessage,
    OutboxStatus,
    StoredMessage,
)
from bot.store.repositories.audit import AuditRepository

# A processed update's row holds no content, only its id (to spot replays): Telegram stops
# re-sending an update within a day, so a week is ample.
INBOX_KEEP = timedelta(days=7)
# A delivered alert quotes the flagged words; once delivered (or given up on) it is kept only
# long enough to see that it went, and the flag itself keeps the record.
OUTBOX_KEEP = timedelta(days=7)


@dataclass(frozen=True)
class Purged:
    messages: int
    flags: int
    updates: int
    """Processed updates and delivered outbox messages."""

    @property
    def anything(self) -> bool:
        return bool(self.messages or self.flags or self.updates)


async def purge_expired(session: AsyncSession, now: datetime) -> Purged:
    """Delete rows past their ``keep_until`` (set from the retention settings when stored)."""
    flags = await session.execute(delete(Flag).where(Flag.keep_until < now))
    messages = await session.execute(delete(StoredMessage).where(StoredMessage.keep_until < now))
    updates = await session.execute(
        delete(InboxItem).where(
            InboxItem.status != InboxStatus.PENDING, InboxItem.received_at < now - INBOX_KEEP
        )
    )
    outbox = await session.execute(
        delete(OutboxMessage).where(
            OutboxMessage.status.in_([OutboxStatus.SENT, OutboxStatus.FAILED]),
            OutboxMessage.created_at < now - OUTBOX_KEEP,
        )
    )
    purged = Purged(_count(messages), _count(flags), _count(updates) + _count(outbox))
    if purged.anything:
        await AuditRepository(session).record(
            "system", "retention.purged", "", None,
            messages=purged.messages, flags=purged.flags, updates=purged.updates,
        )  # fmt: skip
    return purged


def _count(result: object) -> int:
    return int(getattr(result, "rowcount", 0) or 0)
