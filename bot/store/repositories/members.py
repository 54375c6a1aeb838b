from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import func, select
from sqlalchemy.sql.elements import ColumnElement

from bot.store.models import ChatMember, Consent
from bot.store.repositories.base import Repository

ERASED_PREFIX = "erased:"
"""An erased member's platform_user_id is ``erased:<member id>``: no longer anyone's."""


def not_erased() -> ColumnElement[bool]:
    return ChatMember.platform_user_id.not_like(f"{ERASED_PREFIX}%")


class MemberRepository(Repository):
    async def get(self, member_id: int) -> ChatMember | None:
        return await self.session.get(ChatMember, member_id)

    async def find(self, chat_id: int, platform_user_id: str) -> ChatMember | None:
        query = select(ChatMember).where(
            ChatMember.chat_id == chat_id, ChatMember.platform_user_id == platform_user_id
        )
        return await self.session.scalar(query)

    async def find_or_add(
        self, chat_id: int, platform_user_id: str, display_name: str, username: str | None
    ) -> ChatMember:
        member = await self.find(chat_id, platform_user_id)
        if member is None:
            member = ChatMember(
                chat_id=chat_id,
                platform_user_id=platform_user_id,
                display_name=display_name,
                username=username,
            )
            self.session.add(member)
            await self.session.flush()
        else:
            member.display_name, member.username = display_name, username
            member.left_at = None
        return member

    async def everywhere(self, platform_user_id: str) -> list[ChatMember]:
        """The same person's membership of every chat the bot is in."""
        query = select(ChatMember).where(ChatMember.platform_user_id == platform_user_id)
        return list(await self.session.scalars(query.order_by(ChatMember.id)))

    async def on_record(self, chat_id: int) -> list[ChatMember]:
        """Everyone on record in the chat (only members who agreed are), those who left too."""
        query = select(ChatMember).where(ChatMember.chat_id == chat_id, not_erased())
        return list(await self.session.scalars(query.order_by(ChatMember.display_name)))

    async def in_chat(self, chat_id: int) -> list[ChatMember]:
        query = select(ChatMember).where(
            ChatMember.chat_id == chat_id, ChatMember.left_at.is_(None)
        )
        return list(await self.session.scalars(query.order_by(ChatMember.id)))


class ConsentRepository(Repository):
    async def current(self, member_id: int) -> Consent | None:
        """The member's consent in force (the latest not withdrawn), if any."""
        query = (
            select(Consent)
            .where(Consent.member_id == member_id, Consent.withdrawn_at.is_(None))
            .order_by(Consent.given_at.desc(), Consent.id.desc())
        )
        return await self.session.scalar(query.limit(1))

    async def add(self, consent: Consent) -> Consent:
        self.session.add(consent)
        await self.session.flush()
        return consent

    async def history(self, member_id: int) -> list[Consent]:
        query = select(Consent).where(Consent.member_id == member_id).order_by(Consent.id)
        return list(await self.session.scalars(query))

    async def for_members(self, member_ids: Collection[int]) -> dict[int, list[Consent]]:
        """Each member's consents, oldest first."""
        query = select(Consent).where(Consent.member_id.in_(member_ids)).order_by(Consent.id)
        found: dict[int, list[Consent]] = {member_id: [] for member_id in member_ids}
        for consent in await self.session.scalars(query):
            found[consent.member_id].append(consent)
        return found

    async def consenting_count(self, chat_id: int, notice_version: str) -> int:
        query = (
            select(func.count(func.distinct(ChatMember.id)))
            .join(Consent, Consent.member_id == ChatMember.id)
            .where(
                ChatMember.chat_id == chat_id,
                ChatMember.left_at.is_(None),
                Consent.notice_version == notice_version,
                Consent.withdrawn_at.is_(None),
            )
        )
        return int(await self.session.scalar(query) or 0)
