from __future__ import annotations

from sqlalchemy import select

from bot.store.models import RegistrationCode
from bot.store.repositories.base import Repository


class RegistrationCodeRepository(Repository):
    async def add(self, code: RegistrationCode) -> RegistrationCode:
        self.session.add(code)
        await self.session.flush()
        return code

    async def by_hash(self, code_hash: str) -> RegistrationCode | None:
        query = select(RegistrationCode).where(RegistrationCode.code_hash == code_hash)
        # Lock the row so that two chats redeeming one code at once cannot both succeed.
        return await self.session.scalar(query.with_for_update())

    async def for_school(self, school_id: int, limit: int = 50) -> list[RegistrationCode]:
        """The school's latest codes (their hashes are of no use to show; the rest is)."""
        query = (
            select(RegistrationCode)
            .where(RegistrationCode.school_id == school_id)
            .order_by(RegistrationCode.created_at.desc(), RegistrationCode.id.desc())
        )
        return list(await self.session.scalars(query.limit(limit)))
