"""The WhatsApp channel while Schoolgate runs: the Twilio client, the webhook handlers, and each
webhook handled exactly once.

Every webhook gets a key (a Messaging or post-event webhook: its MessageSid; a pre-event has
none, so: its conversation, participant, the sender's consent in force and a hash of what it
carries, a repeat within ``PRE_EVENT_RETRY`` being Twilio's retry). In one transaction the key
is claimed, the webhook handled and its answer stored with the key; a replay finds the key and
gets the same answer, changing nothing. If the database cannot be reached the answer is 503: a
group message is then held (Twilio rejects it), never relayed unchecked.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.channels.whatsapp.answers import ACCEPTED, UNAVAILABLE
from bot.channels.whatsapp.context import Context, HandlerSettings
from bot.channels.whatsapp.delivery import StatusReport
from bot.channels.whatsapp.inbound import InboundHandler
from bot.channels.whatsapp.paths import (
    POST_EVENT_PATH,
    PRE_EVENT_PATH,
)
from bot.channels.whatsapp.twilio_client import TwilioApiError, WhatsAppApi
from bot.services import receipts
from bot.services.moderation import Retention
from bot.services.receipts import Answer
from bot.services.schools import EngineCache
from bot.settings import Settings
from bot.store.db import database_unreachable, transaction
from bot.store.models import utcnow
from bot.texts import TelegramTexts, WhatsAppTexts

log = logging.getLogger(__name__)

RECEIPTS = "twilio"
"""The ``platform`` of this channel's webhook receipts."""
PRE_EVENT_RETRY = timedelta(minutes=5)
"""The same participant sending the same thing again within this is Twilio retrying."""


@dataclass(frozen=True)
class WhatsAppSettings:
    account_sid: str
    auth_token: str
    whatsapp_from: str
    public_base_url: str | None
    """Where Twilio reaches us; without it webhooks are neither configured nor accepted."""
    api_base_url: str | None = None
    conversations_service_sid: str | None = None

    @classmethod
    def of(cls, settings: Settings) -> WhatsAppSettings | None:
        """From the settings; None when Twilio is not configured (WhatsApp is off)."""
        token = settings.twilio_auth_token
        if not (settings.twilio_account_sid and token and settings.twilio_whatsapp_from):
            return None
        return cls(
            account_sid=settings.twilio_account_sid,
            auth_token=token.get_secret_value(),
            whatsapp_from=settings.twilio_whatsapp_from,
            public_base_url=settings.public_base_url.rstrip("/")
            if settings.public_base_url
            else None,
            api_base_url=settings.twilio_api_base_url,
            conversations_service_sid=settings.twilio_conversations_service_sid,
        )


StatusHook = Callable[[AsyncSession, StatusReport, datetime], Awaitable[None]]
Key = Callable[[InboundHandler, AsyncSession], Awaitable[str]]
"""A webhook's key, when it depends on what is stored."""
Handle = Callable[[InboundHandler, AsyncSession, str, datetime], Awaitable[Answer]]
"""Handles a claimed webhook (given its ``Claim.ref``) and says what to answer."""


async def _ignore_status(session: AsyncSession, report: StatusReport, now: datetime) -> None:
    return None


@dataclass
class WhatsAppRuntime:
    settings: WhatsAppSettings
    handling: HandlerSettings
    sessions: async_sessionmaker[AsyncSession]
    engines: EngineCache
    texts: WhatsAppTexts
    bot_texts: TelegramTexts
    clock: Callable[[], datetime] = utcnow
    wake: Callable[[], None] = lambda: None
    """Called after a webhook's transaction queued outbox rows: connect it to the dispatcher."""
    on_status: StatusHook = _ignore_status
    """Called in the transaction of each new status callback (e.g. to update the outbox row)."""
    api: WhatsAppApi | None = field(default=None, init=False)
    handler: InboundHandler | None = field(default=None, init=False)
    _owns_api: bool = field(default=False, init=False)

    @classmethod
    def build(
        cls,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        engines: EngineCache,
        texts: WhatsAppTexts,
        bot_texts: TelegramTexts,
        *,
        retention: Retention,
        alert_channels: frozenset[str] = frozenset({"telegram"}),
    ) -> WhatsAppRuntime | None:
        """The channel as the settings describe it; None when Twilio is not configured."""
        configured = WhatsAppSettings.of(settings)
        if configured is None:
            return None
        handling = HandlerSettings(
            proxy_address=configured.whatsapp_from,
            retention=retention,
            observe_only=settings.observe_only,
            alert_channels=alert_channels,
            remind_every=timedelta(hours=settings.remind_every_hours),
        )
        return cls(configured, handling, sessions, engines, texts, bot_texts)

    async def start(self, api: WhatsAppApi | None = None) -> None:
        """Take webhooks from now on, and point the Conversation Service's webhooks at us.

        ``api``: Twilio's client, shared with the rest of the process (then not closed by
        ``stop``); without it the channel connects its own from the settings.
        """
        settings = self.settings
        self._owns_api = api is None
        self.api = api or WhatsAppApi.connect(
            settings.account_sid, settings.auth_token, settings.api_base_url
        )
        self.handler = InboundHandler(
            Context(self.api, self.texts, self.bot_texts, self.engines, self.handling)
        )
        if settings.public_base_url is None:
            log.warning(
                "WhatsApp is on but PUBLIC_BASE_URL is not set: Twilio cannot reach Schoolgate, "
                "so no group message can be checked and nobody can join or report."
            )
            return
        base = settings.public_base_url
        try:
            await self.api.configure_webhooks(
                f"{base}{PRE_EVENT_PATH}",
                f"{base}{POST_EVENT_PATH}",
                chat_service_sid=settings.conversations_service_sid,
            )
        except TwilioApiError as error:
            # Serving the admin pages matters more than this; the last configuration stands.
            log.error("could not configure the Conversation Service's webhooks: %s", error)
            return
        log.info("WhatsApp is on: group messages are checked at %s%s", base, PRE_EVENT_PATH)

    async def stop(self) -> None:
        """Answer webhooks 503 from now on; close the client if it is the channel's own."""
        api, self.api, self.handler = self.api, None, None
        if api is not None and self._owns_api:
            await api.aclose()

    # -- each webhook -----------------------------------------------------------------------

    async def incoming(self, params: Mapping[str, str]) -> Answer:
        """A message to the school's number: TwiML."""
        sid = params.get("MessageSid")

        async def handle(
            handler: InboundHandler, session: AsyncSession, ref: str, now: datetime
        ) -> Answer:
            return await handler.incoming(session, params, sid or ref, now)

        return await self._once(receipts.key_of("incoming", sid or _digest(params)), handle)

    async def pre_event(self, params: Mapping[str, str]) -> Answer:
        """A group message before delivery: 200 (with the body to show) or 403 (held)."""
        carried = [params.get(name, "") for name in ("Author", "Body", "Media", "Attributes")]
        content = hashlib.sha256("\0".join(carried).encode()).hexdigest()
        conversation, participant = (
            params.get("ConversationSid", ""),
            params.get("ParticipantSid", ""),
        )

        async def key(handler: InboundHandler, session: AsyncSession) -> str:
            state = await handler.sender_state(session, params)
            return receipts.key_of("pre", conversation, participant, state, content)

        async def handle(
            handler: InboundHandler, session: AsyncSession, ref: str, now: datetime
        ) -> Answer:
            return await handler.pre_event(session, params, ref, now)

        return await self._once(key, handle, fresh_for=PRE_EVENT_RETRY)

    async def post_event(self, params: Mapping[str, str]) -> Answer:
        sid = params.get("MessageSid")

        async def handle(
            handler: InboundHandler, session: AsyncSession, ref: str, now: datetime
        ) -> Answer:
            return await handler.post_event(session, params, now)

        key = receipts.key_of("post", params.get("EventType", ""), sid or _digest(params))
        return await self._once(key, handle)

    async def status(self, params: Mapping[str, str]) -> Answer:
        sid, status = params.get("MessageSid", ""), params.get("MessageStatus", "")
        error = params.get("ErrorCode", "")
        code = int(error) if error.isdecimal() else None
        report = StatusReport(sid, status, code, params.get("To", ""))

        async def handle(
            handler: InboundHandler, session: AsyncSession, ref: str, now: datetime
        ) -> Answer:
            if sid and status:
                await self.on_status(session, report, now)
            return ACCEPTED

        return await self._once(receipts.key_of("status", sid, status), handle)

    async def _once(
        self, key: str | Key, handle: Handle, *, fresh_for: timedelta | None = None
    ) -> Answer:
        """Claim the webhook's key, handle it and store the answer, in one transaction; or give
        the answer stored for it before."""
        handler = self.handler
        if handler is None:
            return UNAVAILABLE  # not started, or stopped
        now = self.clock()
        try:
            async with transaction(self.sessions) as session:
                named = key if isinstance(key, str) else await key(handler, session)
                claimed = await receipts.claim(session, RECEIPTS, named, now, fresh_for=fresh_for)
                if claimed.answered is not None:
                    return claimed.answered
                answer = await handle(handler, session, claimed.ref, now)
                await receipts.record(session, claimed, answer)
        except Exception as error:
            if not database_unreachable(error):
                raise
            log.error(
                "database unavailable: answered a Twilio webhook 503 (%s)", type(error).__name__
            )
            return UNAVAILABLE
        self.wake()
        return answer


def _digest(params: Mapping[str, str]) -> str:
    """A webhook without a SID, named by what it carries (its retry count aside)."""
    carried = sorted((k, v) for k, v in params.items() if k != "RetryCount")
    return hashlib.sha256(repr(carried).encode()).hexdigest()
