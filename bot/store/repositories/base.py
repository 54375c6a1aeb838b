from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession


class Repository:
    """Wraps the caller's session: repositories flush, they never commit."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
