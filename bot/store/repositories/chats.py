from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update

from bot.store.models import Chat, ChatStatus
from bot.store.repositories.base import Repository


class ChatRepository(Repository):
    async def get(self, chat_id: int) -> Chat | None:
        return await self.session.get(Chat, chat_id)

    async def find(self, platform: str, platform_chat_id: str) -> Chat | None:
        query = select(Chat).where(
            Chat.platform == platform, Chat.platform_chat_id == platform_chat_id
        )
        return await self.session.scalar(query)

    async def find_or_add(self, platform: str, platform_chat_id: str, title: str) -> Chat:
        chat = await self.find(platform, platform_chat_id)
        if chat is None:
            chat = Chat(platform=platform, platform_chat_id=platform_chat_id, title=title)
            self.session.add(chat)
            await self.session.flush()
        elif title and chat.title != title:
            chat.title = title
        return chat

    async def for_school(self, school_id: int) -> list[Chat]:
        query = select(Chat).where(Chat.school_id == school_id).order_by(Chat.id)
        return list(await self.session.scalars(query))

    async def registered(self, platform: str) -> list[Chat]:
        query = select(Chat).where(Chat.platform == platform, Chat.status == ChatStatus.REGISTERED)
        return list(await self.session.scalars(query.order_by(Chat.id)))

    async def due_to_leave(self, now: datetime) -> list[Chat]:
        """Unregistered chats whose grace period to register has run out."""
        query = select(Chat).where(
            Chat.status == ChatStatus.UNREGISTERED,
            Chat.leave_after.is_not(None),
            Chat.leave_after <= now,
        )
        return list(await self.session.scalars(query))

    async def count_unconsented(self, chat_id: int) -> None:
        await self.session.execute(
            update(Chat)
            .where(Chat.id == chat_id)
            .values(unconsented_messages=Chat.unconsented_messages + 1)
        )
