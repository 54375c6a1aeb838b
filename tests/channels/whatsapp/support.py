"""The WhatsApp channel end to end: the FastAPI app with the Twilio webhook routes, the real
``WhatsAppRuntime`` on the test database, and the fake Twilio API that the real twilio client
talks to and that posts signed webhooks to the app."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import selectinload

from bot.channels.whatsapp.paths import INCOMING_PATH
from bot.channels.whatsapp.runtime import WhatsAppRuntime
from bot.services.moderation import Retention
from bot.services.school_settings import save_settings, settings_of
from bot.services.whatsapp_groups import NewGroup, create_group
from bot.store.db import transaction
from bot.store.models import (
    AuditEvent,
    Chat,
    ChatMember,
    Consent,
    Flag,
    JoinRequest,
    MessagingWindow,
    OutboxMessage,
    School,
    StoredMessage,
    WebhookReceipt,
    utcnow,
)
from tests.fakes.twilio_api import ConversationDelivery, FakeTwilioAPI
from tests.fakes.twilio_webhooks import AUTH_TOKEN, PUBLIC_BASE_URL, MediaFile, parent, signed

T = TypeVar("T")
Sessions = async_sessionmaker[AsyncSession]

INCOMING_URL = f"{PUBLIC_BASE_URL}{INCOMING_PATH}"
MAX_BYTES = 4096
RETENTION = Retention(metadata=timedelta(days=30), flags=timedelta(days=365))
ABUSIVE = "ur a vile woman and everyone knows it"
HARMLESS = "what time is pick up on friday?"
HEAD_EMAIL = "head@peartree.example.sch.uk"
"""Mrs Patel (SLT and DSL) takes alerts by e-mail in these tests."""

COUNTED = (
    StoredMessage, Flag, OutboxMessage, WebhookReceipt, JoinRequest, ChatMember, Consent,
    AuditEvent, MessagingWindow,
)  # fmt: skip


def said(response: httpx.Response) -> list[str]:
    """The messages of a TwiML answer, in order."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/xml")
    return [message.text or "" for message in ElementTree.fromstring(response.text).iter("Message")]


@dataclass
class WhatsApp:
    twilio: FakeTwilioAPI
    runtime: WhatsAppRuntime
    sessions: Sessions
    app: FastAPI
    client: httpx.AsyncClient
    """Posts straight to the app, as if from Twilio at the public address."""
    engine_calls: list[int] = field(default_factory=list)
    """The school of each policy engine asked for: the engine is never used without it."""

    @property
    def texts(self) -> Any:
        return self.runtime.texts

    async def new_group(self, school: School, class_name: str = "Year 3") -> NewGroup:
        assert self.runtime.api is not None
        async with transaction(self.sessions) as session:
            found = await session.get(School, school.id)
            assert found is not None
            return await create_group(
                session, self.runtime.api, found, class_name,
                actor="user:1", notice=self.runtime.bot_texts.notice, now=utcnow(),
            )  # fmt: skip

    async def write(
        self, n: int, text: str, *, name: str | None = "Pat Jones", **options: Any
    ) -> httpx.Response:
        """Parent ``n`` writes to the school's number (the incoming-message webhook)."""
        return await self.twilio.deliver_incoming(
            parent(n), self.runtime.settings.whatsapp_from, text, profile_name=name, **options
        )

    async def join(self, group: NewGroup, n: int, name: str = "Pat Jones") -> None:
        """Parent ``n`` joins with the group's code and agrees."""
        notice = said(await self.write(n, f"JOIN {group.code}", name=name))
        assert notice[-1] == self.texts.join_prompt.format(group=group.chat.title)
        joined = said(await self.write(n, "AGREE", name=name))
        assert joined == [self.texts.joined.format(group=group.chat.title)]

    async def say(
        self, group: NewGroup, n: int, text: str, *, media: Sequence[MediaFile] = ()
    ) -> ConversationDelivery:
        """Parent ``n`` writes in the group (the pre-event webhook decides)."""
        return await self.twilio.send_from_participant(
            group.chat.platform_chat_id, parent(n), text, media=media
        )

    async def post(
        self,
        path: str,
        params: Mapping[str, str],
        *,
        token: str = AUTH_TOKEN,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """Post ``params`` to ``path`` signed as Twilio would (with ``token``)."""
        sent = signed(f"{PUBLIC_BASE_URL}{path}", params, token) if headers is None else headers
        return await self.client.post(path, data=dict(params), headers=dict(sent))

    async def hold_on(self, school: School, *rules: str) -> None:
        """The school holds messages that break ``rules`` instead of relaying them."""
        async with transaction(self.sessions) as session:
            found = await session.get(School, school.id)
            assert found is not None
            chosen = settings_of(found)
            changed = chosen.changed(rules={rule: {"hold": True} for rule in rules})
            await save_settings(session, found, changed, "test", "rules")

    async def rows(self, model: type[T]) -> list[T]:
        async with self.sessions() as session:
            query = select(model)
            if model is Flag:
                query = query.options(selectinload(Flag.reasons))
            return list(await session.scalars(query.order_by(model.id)))  # type: ignore[attr-defined]

    async def outbox(self, purpose: str | None = None) -> list[OutboxMessage]:
        return [m for m in await self.rows(OutboxMessage) if purpose in (None, m.purpose)]

    async def counts(self) -> dict[str, int]:
        """How many rows each table that a webhook may change holds."""
        async with self.sessions() as session:
            return {
                model.__tablename__: int(
                    await session.scalar(select(func.count()).select_from(model)) or 0
                )
                for model in COUNTED
            }

    async def chat(self, chat_id: int) -> Chat:
        async with self.sessions() as session:
            found = await session.get(Chat, chat_id)
        assert found is not None
        return found
