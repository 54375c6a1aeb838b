from __future__ import annotations

from typing import Any

from bot.store.models import AuditEvent
from bot.store.repositories.base import Repository


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
