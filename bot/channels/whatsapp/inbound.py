"""Each Twilio webhook, handled inside the caller's transaction; returns the answer to give.

Nothing is sent from here: an answer goes back in the webhook's response (TwiML for a message
to the school's number, relay or hold for a group message), and anything else to say is queued
in the outbox in the same transaction, so nothing is said about a change then rolled back.

A message to the school's number (Programmable Messaging) comes from someone in no open group on
it (Twilio routes a participant's messages into their conversation). It is, in order: JOIN with
a code (or alone, after an invitation), AGREE to a pending request, a command, a message from
someone asked to agree (not read, not kept: counted and answered), the answer to "Which group
was it from?", or a report.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from bot.channels.whatsapp.answers import twiml
from bot.channels.whatsapp.context import Context, command_of, is_agree, join_code_of
from bot.channels.whatsapp.conversation import ConversationEvents
from bot.channels.whatsapp.translate import incoming_message
from bot.channels.whatsapp.twilio_client import WHATSAPP_PREFIX
from bot.services import whatsapp_groups
from bot.services.receipts import Answer
from bot.services.registration import code_hash
from bot.services.report_line import answer_which_group, school_for
from bot.services.whatsapp_groups import JoinOutcome
from bot.services.windows import record_inbound
from bot.store.models import Chat, ChatStatus, School
from bot.store.repositories.chats import ChatRepository
from bot.store.repositories.schools import SchoolRepository
from bot.store.repositories.whatsapp import GroupRepository, JoinRequestRepository

MAX_NAME = 255


class InboundHandler:
    def __init__(self, context: Context) -> None:
        self.context = context
        self.texts = context.texts
        self.conversations = ConversationEvents(context)

    async def pre_event(
        self, session: AsyncSession, params: Mapping[str, str], ref: str, now: datetime
    ) -> Answer:
        """A participant's message in a hosted group, before it is delivered."""
        return await self.conversations.pre_event(session, params, ref, now)

    async def sender_state(self, session: AsyncSession, params: Mapping[str, str]) -> str:
        """Part of a pre-event's key: see ``ConversationEvents.sender_state``."""
        return await self.conversations.sender_state(session, params)

    async def post_event(
        self, session: AsyncSession, params: Mapping[str, str], now: datetime
    ) -> Answer:
        return await self.conversations.post_event(session, params, now)

    async def incoming(
        self, session: AsyncSession, params: Mapping[str, str], ref: str, now: datetime
    ) -> Answer:
        """A message to the school's number."""
        address = params.get("From", "")
        if not address.startswith(WHATSAPP_PREFIX):
            return twiml(self.texts.whatsapp_only)
        await record_inbound(session, address, now)
        text = params.get("Body", "").strip()
        name = " ".join(params.get("ProfileName", "").split())[:MAX_NAME]
        code = join_code_of(text)
        if code is not None:
            return await self._join(session, address, name, code, now)
        if is_agree(text):
            return await self._agree(session, address, now)
        command = command_of(text)
        message = replace(incoming_message(params, now), id=ref)
        if command is not None and command.name == "report":  # a report is asked for: taken
            if not command.argument:
                return twiml(self.texts.report_usage)
            reported = replace(message, text=command.argument)
            return twiml(await self.context.report(session, reported, school=None, now=now))
        if command is not None:
            return await self._command(session, address, command.name, now)
        pending = await JoinRequestRepository(session).latest(address, now)
        if pending is not None:
            # Asked to agree and has not: what they wrote is neither read nor kept.
            await ChatRepository(session).count_unconsented(pending.chat_id)
            chat = await ChatRepository(session).get(pending.chat_id)
            return twiml(self.texts.pending_agree.format(group=chat.title if chat else ""))
        if not message.forwarded and not message.media:
            valid = self.context.settings.question_valid
            if await answer_which_group(session, address, text, now, valid_for=valid):
                return twiml(self.texts.which_group_noted.format(group=" ".join(text.split())))
        if not message.text.strip() and not message.media:
            return twiml(self.texts.join_usage)
        return twiml(await self.context.report(session, message, school=None, now=now))

    async def _join(
        self, session: AsyncSession, address: str, name: str, code: str, now: datetime
    ) -> Answer:
        """JOIN CODE: a request to join, answered with the notice; JOIN alone: the same for the
        group they were invited to."""
        if code:
            chat = await GroupRepository(session).by_join_code(code_hash(code))
            if chat is None:
                return twiml(self.texts.bad_code)
        else:
            invited = await JoinRequestRepository(session).latest(address, now)
            chat = await ChatRepository(session).get(invited.chat_id) if invited else None
            if chat is None:
                return twiml(self.texts.join_usage)
        valid = self.context.settings.join_request_valid
        await whatsapp_groups.ask_to_join(session, chat, address, name, now, valid_for=valid)
        school = await _school(session, chat)
        return twiml(self.context.notice(school), self.texts.join_prompt.format(group=chat.title))

    async def _agree(self, session: AsyncSession, address: str, now: datetime) -> Answer:
        request = await JoinRequestRepository(session).latest(address, now)
        chat = await ChatRepository(session).get(request.chat_id) if request else None
        if request is None or chat is None or chat.status != ChatStatus.REGISTERED:
            return twiml(self.texts.nothing_to_agree)  # (a group closed meanwhile)
        settings = self.context.settings
        joined = await whatsapp_groups.join(
            session, self.context.api, request, chat, proxy_address=settings.proxy_address,
            now=now, limit=settings.max_participants,
        )  # fmt: skip
        return twiml(self._joined_text(joined, chat))

    def _joined_text(self, joined: whatsapp_groups.Joined, chat: Chat) -> str:
        texts = self.texts
        if joined.outcome is JoinOutcome.JOINED:
            return texts.joined.format(group=chat.title)
        if joined.outcome is JoinOutcome.FULL:
            return texts.group_full.format(
                group=chat.title, limit=self.context.settings.max_participants
            )
        if joined.outcome is JoinOutcome.IN_ANOTHER_GROUP:
            current = joined.current.title if joined.current else "another group"
            return texts.in_another_group.format(current=current, group=chat.title)
        return texts.try_later

    async def _command(
        self, session: AsyncSession, address: str, name: str, now: datetime
    ) -> Answer:
        """/privacy, /mydata, /leave sent to the number itself (not from inside a group)."""
        pending = await JoinRequestRepository(session).latest(address, now)
        chat = await ChatRepository(session).get(pending.chat_id) if pending else None
        school = await _school(session, chat) or await school_for(session, address, None)
        if name in ("privacy", "help"):
            return twiml(self.context.notice(school), self.texts.join_usage)
        if name == "mydata":
            return twiml(await self.context.subject_access(session, address, school))
        if name in ("leave", "withdraw"):
            return twiml(self.texts.not_in_group)
        return twiml(self.texts.join_usage)


async def _school(session: AsyncSession, chat: Chat | None) -> School | None:
    if chat is None or chat.school_id is None:
        return None
    return await SchoolRepository(session).get(chat.school_id)
