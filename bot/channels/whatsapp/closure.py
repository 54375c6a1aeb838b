"""Carrying out the steps of closing hosted WhatsApp groups (``bot.services.closure`` records
them): the notice is posted to the group through the outbox, and once the grace period is over
and the notice has gone, the group's Twilio conversation is closed. A closed conversation takes
no more messages and cannot be reopened, so it is locked and closed in the one step, recorded
as both; the chat is then left.

``run_forever`` takes the steps on a timer, as the Telegram runtime's sweep does for its chats.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.channels.whatsapp.twilio_client import (
    CONVERSATION_CLOSED,
    NOT_FOUND,
    TwilioApiError,
    WhatsAppApi,
)
from bot.periodic import repeat
from bot.services.closure import (
    ACTIVE,
    advance_due_closures,
    notice_key,
    post_closure_notice,
    record_step,
)
from bot.store.db import transaction
from bot.store.models import Chat, ChatClosure, ClosureStatus, OutboxStatus, utcnow
from bot.store.repositories.outbox import OutboxRepository
from bot.texts import TelegramTexts

log = logging.getLogger(__name__)

PLATFORM = "whatsapp"
SWEEP_EVERY = 30.0
"""Seconds between looks for closures with a step to take."""
UNDELIVERED = (OutboxStatus.PENDING, OutboxStatus.SENDING)


class WhatsAppClosures:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        api: WhatsAppApi,
        texts: TelegramTexts,
        wake_outbox: Callable[[], None],
        *,
        every: float = SWEEP_EVERY,
    ) -> None:
        self.sessions = sessions
        self.api = api
        self.texts = texts
        self.wake_outbox = wake_outbox
        """Called once a notice is queued, so that it goes at once."""
        self.every = every

    async def advance(self, now: datetime | None = None) -> int:
        """Take each WhatsApp group's closure under way one step further; how many moved."""
        moved = await advance_due_closures(
            self.sessions, PLATFORM, now or utcnow(), self._advance, TwilioApiError
        )
        if moved:
            self.wake_outbox()
        return moved

    async def _advance(self, closure_id: int, now: datetime) -> int:
        async with transaction(self.sessions) as session:
            closure = await session.get(ChatClosure, closure_id, with_for_update=True)
            chat = await session.get(Chat, closure.chat_id) if closure else None
            if closure is None or chat is None or closure.status not in ACTIVE:
                return 0
            if closure.status == ClosureStatus.REQUESTED:
                await post_closure_notice(session, closure, chat, self.texts, now)
                return 1
            notice = await OutboxRepository(session).by_key(notice_key(closure))
            if notice is not None and notice.status in UNDELIVERED:
                return 0  # members read the notice before the group closes
            problem = await self._close(chat.platform_chat_id)
            if closure.status == ClosureStatus.NOTICE_POSTED:
                await record_step(session, closure, chat, ClosureStatus.LOCKED, now, problem)
            await record_step(session, closure, chat, ClosureStatus.CLOSED, now)
        return 1

    async def _close(self, conversation_sid: str) -> str | None:
        """Close the conversation on Twilio; what was odd about it, if anything. Raises
        TwilioApiError when it is still open."""
        try:
            await self.api.close_conversation(conversation_sid)
        except TwilioApiError as error:
            if error.code == CONVERSATION_CLOSED:
                return None  # closed already (by us, before a crash, or in Twilio's console)
            if error.code == NOT_FOUND:
                return "the group's conversation no longer existed on Twilio"
            raise
        return None

    async def run_forever(self, stop: asyncio.Event) -> None:
        """Take the steps due now and then every ``every`` seconds until ``stop``."""
        await repeat(self.advance, every=self.every, what="WhatsApp closures", stop=stop)
