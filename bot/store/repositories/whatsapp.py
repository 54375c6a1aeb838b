"""The WhatsApp channel's SQL: join requests, answered webhooks, messaging windows, and the
hosted groups and report-line chats they concern."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite

from bot.store.models import (
    Chat,
    ChatMember,
    ChatStatus,
    Flag,
    FlagSource,
    JoinRequest,
    MessagingWindow,
    WebhookReceipt,
)
from bot.store.repositories.base import Repository

PLATFORM = "whatsapp"
REPORT_LINE_PREFIX = "report-line:"
"""A report line's ``platform_chat_id`` is ``report-line:<school id>``: no conversation has it."""


class _Upserting(Repository):
    def _insert(self) -> Callable[[type[Any]], postgresql.Insert | sqlite.Insert]:
        dialect = self.session.get_bind().dialect.name
        return postgresql.insert if dialect == "postgresql" else sqlite.insert


class GroupRepository(Repository):
    async def by_join_code(self, code_hash: str) -> Chat | None:
        query = select(Chat).where(
            Chat.platform == PLATFORM,
            Chat.join_code_hash == code_hash,
            Chat.status == ChatStatus.REGISTERED,
        )
        return await self.session.scalar(query)

    async def current_groups(self, address: str) -> list[Chat]:
        """The hosted groups this address is in now (not left), report lines excluded."""
        query = (
            select(Chat)
            .join(ChatMember, ChatMember.chat_id == Chat.id)
            .where(
                Chat.platform == PLATFORM,
                Chat.status == ChatStatus.REGISTERED,
                Chat.platform_chat_id.not_like(f"{REPORT_LINE_PREFIX}%"),
                ChatMember.platform_user_id == address,
                ChatMember.left_at.is_(None),
            )
            .order_by(Chat.id)
        )
        return list(await self.session.scalars(query))

    async def member_count(self, chat_id: int) -> int:
        """Members on record who have not left: the people we put in the conversation."""
        query = (
            select(func.count())
            .select_from(ChatMember)
            .where(ChatMember.chat_id == chat_id, ChatMember.left_at.is_(None))
        )
        return int(await self.session.scalar(query) or 0)

    async def by_participant(self, chat_id: int, participant_sid: str) -> ChatMember | None:
        query = select(ChatMember).where(
            ChatMember.chat_id == chat_id, ChatMember.platform_ref == participant_sid
        )
        return await self.session.scalar(query)

    async def registered_named(self, name: str) -> list[Chat]:
        """Registered chats (any platform) whose title or class is ``name``, case aside."""
        wanted = " ".join(name.split()).lower()
        query = select(Chat).where(
            Chat.status == ChatStatus.REGISTERED,
            (func.lower(Chat.title) == wanted) | (func.lower(Chat.class_name) == wanted),
        )
        return list(await self.session.scalars(query.order_by(Chat.id)))

    async def schools_of(self, address: str) -> set[int]:
        """The schools of every WhatsApp chat this address is on record in (left ones too)."""
        query = (
            select(Chat.school_id)
            .join(ChatMember, ChatMember.chat_id == Chat.id)
            .where(
                Chat.platform == PLATFORM,
                Chat.school_id.is_not(None),
                ChatMember.platform_user_id == address,
            )
            .distinct()
        )
        return {int(school_id) for school_id in await self.session.scalars(query) if school_id}


class JoinRequestRepository(Repository):
    async def find(self, chat_id: int, address: str) -> JoinRequest | None:
        query = select(JoinRequest).where(
            JoinRequest.chat_id == chat_id, JoinRequest.address == address
        )
        return await self.session.scalar(query)

    async def latest(
        self, address: str, now: datetime, *, other_than: int | None = None
    ) -> JoinRequest | None:
        """The address's most recent request that has not run out (not for chat ``other_than``)."""
        query = select(JoinRequest).where(
            JoinRequest.address == address, JoinRequest.expires_at > now
        )
        if other_than is not None:
            query = query.where(JoinRequest.chat_id != other_than)
        query = query.order_by(JoinRequest.created_at.desc(), JoinRequest.id.desc()).limit(1)
        return await self.session.scalar(query)

    async def waiting(self, chat_id: int, now: datetime) -> int:
        """Requests to join ``chat_id`` (asked or invited) not yet agreed to nor run out."""
        query = (
            select(func.count())
            .select_from(JoinRequest)
            .where(JoinRequest.chat_id == chat_id, JoinRequest.expires_at > now)
        )
        return int(await self.session.scalar(query) or 0)

    async def add(self, request: JoinRequest) -> JoinRequest:
        self.session.add(request)
        await self.session.flush()
        return request

    async def remove(self, request: JoinRequest) -> None:
        await self.session.delete(request)
        await self.session.flush()


class ReceiptRepository(_Upserting):
    async def claim(self, platform: str, key: str, now: datetime) -> WebhookReceipt | None:
        """Insert an unanswered receipt (status 0) for ``key``; None when one exists already.

        On PostgreSQL an insert that meets a receipt being written by a transaction still open
        waits for it to end, so a receipt found is always a committed answer.
        """
        statement = (
            self._insert()(WebhookReceipt)
            .values(platform=platform, key=key, received_at=now, status_code=0, body="")
            .on_conflict_do_nothing(index_elements=["platform", "key"])
            .returning(WebhookReceipt.id)
        )
        receipt_id = await self.session.scalar(statement)
        if receipt_id is None:
            return None
        return await self.session.get(WebhookReceipt, receipt_id)

    async def find(self, platform: str, key: str) -> WebhookReceipt | None:
        query = select(WebhookReceipt).where(
            WebhookReceipt.platform == platform, WebhookReceipt.key == key
        )
        return await self.session.scalar(query.with_for_update())


class WindowRepository(_Upserting):
    async def record(self, address: str, at: datetime) -> None:
        """``address`` wrote to us at ``at`` (an older time never moves the window back)."""
        statement = self._insert()(MessagingWindow).values(address=address, last_inbound_at=at)
        await self.session.execute(
            statement.on_conflict_do_update(
                index_elements=["address"],
                set_={"last_inbound_at": statement.excluded.last_inbound_at},
                where=MessagingWindow.last_inbound_at < statement.excluded.last_inbound_at,
            )
        )

    async def last_inbound(self, address: str) -> datetime | None:
        query = select(MessagingWindow.last_inbound_at).where(MessagingWindow.address == address)
        return await self.session.scalar(query)


class ReportRepository(Repository):
    async def awaiting_group(self, address: str, since: datetime) -> list[Flag]:
        """This reporter's reports since ``since`` that do not yet say which chat they came
        from."""
        query = (
            select(Flag)
            .join(ChatMember, ChatMember.id == Flag.member_id)
            .where(
                Flag.source == FlagSource.REPORT,
                Flag.reported_from.is_(None),
                Flag.created_at >= since,
                ChatMember.platform_user_id == address,
            )
            .order_by(Flag.id)
        )
        return list(await self.session.scalars(query))
