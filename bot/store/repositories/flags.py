from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from bot.store.models import Flag
from bot.store.repositories.base import Repository


class FlagRepository(Repository):
    async def add(self, flag: Flag) -> Flag:
        self.session.add(flag)
        await self.session.flush()
        return flag

    async def with_reasons(self, flag_id: int) -> Flag | None:
        query = select(Flag).where(Flag.id == flag_id).options(selectinload(Flag.reasons))
        return await self.session.scalar(query)

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
