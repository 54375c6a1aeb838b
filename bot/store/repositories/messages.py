from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update

from bot.store.models import Flag, FlagReason, StoredMessage
from bot.store.repositories.base import Repository


class MessageRepository(Repository):
    async def find(self, chat_id: int, platform_message_id: str) -> StoredMessage | None:
        query = select(StoredMessage).where(
            StoredMessage.chat_id == chat_id,
            StoredMessage.platform_message_id == platform_message_id,
        )
        return await self.session.scalar(query)

    async def add(self, message: StoredMessage) -> StoredMessage:
        self.session.add(message)
        await self.session.flush()
        return message

    async def for_member(self, member_id: int) -> list[StoredMessage]:
        query = select(StoredMessage).where(StoredMessage.member_id == member_id)
        return list(await self.session.scalars(query.order_by(StoredMessage.sent_at)))

    async def staff_contact_times(self, member_id: int, since: datetime) -> list[datetime]:
        query = select(StoredMessage.sent_at).where(
            StoredMessage.member_id == member_id,
            StoredMessage.contacted_staff.is_(True),
            StoredMessage.sent_at >= since,
        )
        return list(await self.session.scalars(query))

    async def erase_content(self, member_ids: list[int]) -> int:
        """Delete the words of these members' messages and of the evidence quoting them."""
        result = await self.session.execute(
            update(StoredMessage)
            .where(StoredMessage.member_id.in_(member_ids), StoredMessage.text.is_not(None))
            .values(text=None)
        )
        flags = select(Flag.id).where(Flag.member_id.in_(member_ids)).scalar_subquery()
        await self.session.execute(
            update(FlagReason)
            .where(FlagReason.flag_id.in_(flags))
            .values(evidence="(removed: the sender withdrew consent)")
        )
        return int(getattr(result, "rowcount", 0) or 0)
