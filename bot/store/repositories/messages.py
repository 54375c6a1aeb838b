from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, exists, or_, select, update

from bot.store.models import ChatMember, Flag, FlagReason, StoredMessage
from bot.store.repositories.base import Repository


@dataclass(frozen=True)
class Neighbour:
    """A message near another in its chat, with its sender's name and whether a flag on it
    was escalated to the DSL (its words are then for the DSL only)."""

    message: StoredMessage
    sender: str
    safeguarding: bool


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

    async def around(self, message: StoredMessage, count: int) -> list[Neighbour]:
        """Up to ``count`` messages of the same chat just before ``message``, then up to
        ``count`` just after it, in the order they were sent (``message`` not included)."""
        escalated = exists().where(Flag.message_id == StoredMessage.id, Flag.safeguarding)
        base = (
            select(StoredMessage, ChatMember.display_name, escalated)
            .join(ChatMember, ChatMember.id == StoredMessage.member_id)
            .where(StoredMessage.chat_id == message.chat_id)
        )
        same_time = StoredMessage.sent_at == message.sent_at
        earlier = base.where(
            or_(
                StoredMessage.sent_at < message.sent_at,
                and_(same_time, StoredMessage.id < message.id),
            )
        ).order_by(StoredMessage.sent_at.desc(), StoredMessage.id.desc())
        later = base.where(
            or_(
                StoredMessage.sent_at > message.sent_at,
                and_(same_time, StoredMessage.id > message.id),
            )
        ).order_by(StoredMessage.sent_at, StoredMessage.id)
        before = list(await self.session.execute(earlier.limit(count)))
        after = list(await self.session.execute(later.limit(count)))
        return [Neighbour(row[0], row[1], bool(row[2])) for row in [*reversed(before), *after]]

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
