"""The SQL about one person across a school's chats: who they are, what is held, erasing it.

A person is a platform and a platform user id; they have one ``chat_members`` row per chat.
Everything here is scoped to one school through the chats' ``school_id``.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import String, cast, delete, exists, func, literal, or_, select, update

from bot.store.models import (
    Chat,
    ChatMember,
    Consent,
    Flag,
    FlagReason,
    OutboxMessage,
    StoredMessage,
)
from bot.store.repositories.base import Repository
from bot.store.repositories.members import ERASED_PREFIX, not_erased

ERASED_NAME = "Erased member"
ERASED_EVIDENCE = "(erased at the person's request)"


class PeopleRepository(Repository):
    async def parents(self, school_id: int) -> list[tuple[ChatMember, Chat]]:
        """Every membership of the school's chats by someone who has agreed at some point."""
        agreed = exists().where(Consent.member_id == ChatMember.id)
        query = (
            select(ChatMember, Chat)
            .join(Chat, Chat.id == ChatMember.chat_id)
            .where(Chat.school_id == school_id, not_erased(), agreed)
            .order_by(ChatMember.id)
        )
        return [(member, chat) for member, chat in await self.session.execute(query)]

    async def of_person(
        self, school_id: int, platform: str, platform_user_id: str
    ) -> list[tuple[ChatMember, Chat]]:
        """One person's memberships of the school's chats."""
        query = (
            select(ChatMember, Chat)
            .join(Chat, Chat.id == ChatMember.chat_id)
            .where(
                Chat.school_id == school_id,
                Chat.platform == platform,
                ChatMember.platform_user_id == platform_user_id,
                not_erased(),
            )
            .order_by(ChatMember.id)
        )
        return [(member, chat) for member, chat in await self.session.execute(query)]

    async def everyone_in_school(self, school_id: int) -> list[tuple[str, ChatMember]]:
        """Every member on record in the school's chats, with the chat's platform."""
        query = (
            select(Chat.platform, ChatMember)
            .join(Chat, Chat.id == ChatMember.chat_id)
            .where(Chat.school_id == school_id, not_erased())
        )
        return [(platform, member) for platform, member in await self.session.execute(query)]

    async def message_counts(self, member_ids: Collection[int]) -> dict[int, int]:
        query = (
            select(StoredMessage.member_id, func.count(StoredMessage.id))
            .where(StoredMessage.member_id.in_(member_ids))
            .group_by(StoredMessage.member_id)
        )
        counts = dict.fromkeys(member_ids, 0)
        counts.update({member_id: int(n) for member_id, n in await self.session.execute(query)})
        return counts

    # -- erasure ----------------------------------------------------------------------------

    async def consents_in_force(self, member_ids: Collection[int]) -> int:
        query = select(func.count(Consent.id)).where(
            Consent.member_id.in_(member_ids), Consent.withdrawn_at.is_(None)
        )
        return int(await self.session.scalar(query) or 0)

    async def delete_consents(self, member_ids: Collection[int]) -> int:
        result = await self.session.execute(
            delete(Consent).where(Consent.member_id.in_(member_ids))
        )
        return _count(result)

    async def flag_ids(self, member_ids: Collection[int]) -> list[int]:
        query = select(Flag.id).where(Flag.member_id.in_(member_ids))
        return list(await self.session.scalars(query))

    async def strip_flags(self, flag_ids: Collection[int]) -> None:
        """Keep the flags as numbers (rule, severity, dates, status): no words, no notes."""
        await self.session.execute(
            update(FlagReason)
            .where(FlagReason.flag_id.in_(flag_ids))
            .values(evidence=ERASED_EVIDENCE)
        )
        await self.session.execute(
            update(Flag).where(Flag.id.in_(flag_ids)).values(decision_note=None)
        )

    async def delete_messages(self, member_ids: Collection[int]) -> tuple[int, int]:
        """Delete the members' message records; those a flag points to lose their words and
        the platform's id of the message, and stay as bare records for the flag's sake.

        Returns (deleted, kept bare).
        """
        flagged = select(Flag.message_id).where(Flag.member_id.in_(member_ids))
        deleted = await self.session.execute(
            delete(StoredMessage).where(
                StoredMessage.member_id.in_(member_ids), StoredMessage.id.not_in(flagged)
            )
        )
        kept = await self.session.execute(
            update(StoredMessage)
            .where(StoredMessage.member_id.in_(member_ids))
            .values(
                text=None,
                media_kinds=[],
                platform_message_id=literal(ERASED_PREFIX) + cast(StoredMessage.id, String),
            )
        )
        return _count(deleted), _count(kept)

    async def delete_outbox(self, member_ids: Collection[int], flag_ids: Collection[int]) -> int:
        """Messages to the members or about their flags (they quote the words)."""
        result = await self.session.execute(
            delete(OutboxMessage).where(
                or_(OutboxMessage.member_id.in_(member_ids), OutboxMessage.flag_id.in_(flag_ids))
            )
        )
        return _count(result)

    async def anonymise(self, member_ids: Collection[int], now: datetime) -> None:
        """The rows stay (flags point to them) but no longer say who it was."""
        await self.session.execute(
            update(ChatMember)
            .where(ChatMember.id.in_(member_ids))
            .values(
                display_name=ERASED_NAME,
                username=None,
                private_chat_id=None,
                platform_user_id=literal(ERASED_PREFIX) + cast(ChatMember.id, String),
            )
        )
        # Not in the chat as far as coverage is concerned: it counts people, and this is no one.
        await self.session.execute(
            update(ChatMember)
            .where(ChatMember.id.in_(member_ids), ChatMember.left_at.is_(None))
            .values(left_at=now)
        )


def _count(result: object) -> int:
    return int(getattr(result, "rowcount", 0) or 0)
