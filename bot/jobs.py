"""Work that runs on a timer inside ``schoolgate serve`` and ``schoolgate worker``: the retention
purge. Running it in several processes at once is harmless (each deletes what is due)."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.periodic import repeat
from bot.services.retention import Purged, RetentionDefaults, purge_expired
from bot.store.db import transaction
from bot.store.models import utcnow

log = logging.getLogger(__name__)


class Housekeeping:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        defaults: RetentionDefaults,
        every: float,
    ) -> None:
        self.sessions = sessions
        self.defaults = defaults
        self.every = every
        """Seconds between purges."""

    async def run_once(self, now: datetime | None = None) -> Purged:
        async with transaction(self.sessions) as session:
            purged = await purge_expired(session, now or utcnow(), self.defaults)
        if purged.anything:
            log.info(
                "retention: deleted %s message records, %s flags, %s audit events, %s other rows",
                purged.messages, purged.flags, purged.audit_events, purged.updates,
            )  # fmt: skip
        return purged

    async def run_forever(self, stop: asyncio.Event) -> None:
        """Purge now and then every ``every`` seconds until ``stop``; an outage is waited out."""
        await repeat(self.run_once, every=self.every, what="retention purge", stop=stop)
