"""WhatsApp's 24-hour customer service window: free-form messages may go to an address for 24
hours after it last wrote to the school's number; after that only approved templates."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from bot.store.repositories.whatsapp import WindowRepository

WINDOW = timedelta(hours=24)


async def record_inbound(session: AsyncSession, address: str, at: datetime) -> None:
    """``address`` (``whatsapp:+44...``) wrote to us at ``at``."""
    await WindowRepository(session).record(address, at)


async def in_window(session: AsyncSession, address: str, now: datetime) -> bool:
    """Whether a free-form message may go to ``address`` now."""
    last = await WindowRepository(session).last_inbound(address)
    return last is not None and now - last < WINDOW
