from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import select, update

from bot.store.models import Chat, ChatClosure, ChatStatus, ClosureStatus
from bot.store.repositories.base import Repository

ACTIVE_CLOSURE = (ClosureStatus.REQUESTED, ClosureStatus.NOTICE_POSTED, ClosureStatus.LOCKED)


class ChatRepository(Repository):
    async def get(self, chat_id: int) -> Chat | None:
        return await self.session.get(Chat, chat_id)

    async def in_school(self, school_id: int, chat_id: int) -> Chat | None:
        """The chat, if it is ``school_id``'s: another school's is not found."""
        query = select(Chat).where(Chat.id == chat_id, Chat.school_id == school_id)
        return await self.session.scalar(query)

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


class ClosureRepository(Repository):
    async def add(self, closure: ChatClosure) -> ChatClosure:
        self.session.add(closure)
        await self.session.flush()
        return closure

    async def active(self, chat_id: int) -> ChatClosure | None:
        """The closure under way in the chat, locked: one change to it at a time."""
        query = select(ChatClosure).where(
            ChatClosure.chat_id == chat_id, ChatClosure.status.in_(ACTIVE_CLOSURE)
        )
        return await self.session.scalar(query.with_for_update())

    async def active_in(self, chat_ids: Collection[int]) -> dict[int, ChatClosure]:
        """The closure under way in each of these chats that has one."""
        query = select(ChatClosure).where(
            ChatClosure.chat_id.in_(chat_ids), ChatClosure.status.in_(ACTIVE_CLOSURE)
        )
        return {closure.chat_id: closure for closure in await self.session.scalars(query)}

    async def for_chat(self, chat_id: int) -> list[ChatClosure]:
        """Every closure of the chat, the latest first."""
        query = select(ChatClosure).where(ChatClosure.chat_id == chat_id)
        return list(await self.session.scalars(query.order_by(ChatClosure.id.desc())))

    async def due(self, now: datetime, platform: str | None = None) -> list[ChatClosure]:
        """Closures with a step to take now: a notice to post, a chat to lock, a chat to leave;
        of chats on ``platform`` only, if given."""
        query = select(ChatClosure).where(
            (ChatClosure.status == ClosureStatus.REQUESTED)
            | (
                (ChatClosure.status == ClosureStatus.NOTICE_POSTED)
                & (ChatClosure.grace_until <= now)
            )
            | (ChatClosure.status == ClosureStatus.LOCKED)
        )
        if platform is not None:
            query = query.join(Chat, Chat.id == ChatClosure.chat_id).where(
                Chat.platform == platform
            )
        return list(await self.session.scalars(query.order_by(ChatClosure.id)))
