"""A message in a hosted group, decided in its ``onMessageAdd`` pre-event, before anyone sees it.

In order: a command (``/leave``, ``/privacy``, ``/mydata``, ``/report ...``, a join code, or
AGREE from someone who has something to agree to) is handled, answered privately and held: it is
for the school, not the group. A participant without consent to the chat's current notice is
held, counted and told why; nothing they wrote is stored or read. Anything else is checked as
on Telegram (stored as a record, words kept only if flagged, alerts, reminders) and then relayed
under the sender's name, unless a rule it breaks is set to hold: then nobody sees it and the
sender is told why and what to do instead.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from bot.channels.whatsapp.answers import ACCEPTED, HELD, relay
from bot.channels.whatsapp.context import Context, command_of, is_agree, join_code_of
from bot.channels.whatsapp.translate import conversation_message
from bot.channels.whatsapp.twilio_client import WHATSAPP_PREFIX
from bot.policy import ChatMessage, Verdict
from bot.services import consent, whatsapp_groups
from bot.services.alerts import AlertContext, alert_now
from bot.services.moderation import check_message
from bot.services.notices import retention_of
from bot.services.receipts import Answer
from bot.services.registration import code_hash
from bot.services.reminders import remind_sender
from bot.services.school_settings import settings_of
from bot.services.windows import record_inbound
from bot.store.models import Chat, ChatMember, ChatStatus, School
from bot.store.repositories.chats import ChatRepository
from bot.store.repositories.members import ConsentRepository, MemberRepository
from bot.store.repositories.schools import SchoolRepository
from bot.store.repositories.whatsapp import PLATFORM, GroupRepository, JoinRequestRepository

log = logging.getLogger(__name__)

MESSAGE_ADD = "onMessageAdd"
MESSAGE_UPDATE = "onMessageUpdate"
PARTICIPANT_REMOVED = "onParticipantRemoved"


class ConversationEvents:
    def __init__(self, context: Context) -> None:
        self.context = context
        self.texts = context.texts

    async def pre_event(
        self, session: AsyncSession, params: Mapping[str, str], ref: str, now: datetime
    ) -> Answer:
        if params.get("EventType") != MESSAGE_ADD:
            # Only onMessageAdd is subscribed; should edits ever be, none slips through unchecked.
            return HELD if params.get("EventType") == MESSAGE_UPDATE else ACCEPTED
        chat = await ChatRepository(session).find(PLATFORM, params.get("ConversationSid", ""))
        school = await _school_of(session, chat)
        address = params.get("Author", "")
        if chat is None or school is None or not address.startswith(WHATSAPP_PREFIX):
            log.warning("held a message in a conversation that is not a registered group")
            return HELD
        await record_inbound(session, address, now)
        member = await MemberRepository(session).find(chat.id, address)
        consented = member is not None and await consent.has_consented(session, chat, member)
        reply = await self._command(session, chat, school, member, consented, params, ref, now)
        if reply is not None:
            await self.context.tell(
                session, address, reply, key=f"wa:{ref}:reply", purpose="reply",
                school_id=school.id, member_id=member.id if member else None, now=now,
            )  # fmt: skip
            return HELD
        if member is None or not consented:
            # Not read, not kept: only counted, and the sender told why.
            await ChatRepository(session).count_unconsented(chat.id)
            # Told once an hour at most, however many messages they send meanwhile.
            await self.context.tell(
                session, address, self.texts.not_consented.format(group=chat.title),
                key=f"wa:consent:{chat.id}:{address}:{now:%Y%m%d%H}", purpose="consent",
                school_id=school.id, now=now,
            )  # fmt: skip
            return HELD
        return await self._check(session, chat, school, member, params, ref, now)

    async def sender_state(self, session: AsyncSession, params: Mapping[str, str]) -> str:
        """The consent the sender's message is judged under (its id, or "-"): part of a
        pre-event's key, so that words held for want of consent and sent again after agreeing
        are not taken for Twilio's retry of the held ones."""
        chat = await ChatRepository(session).find(PLATFORM, params.get("ConversationSid", ""))
        members = MemberRepository(session)
        member = await members.find(chat.id, params.get("Author", "")) if chat else None
        current = await ConsentRepository(session).current(member.id) if member else None
        return str(current.id) if current else "-"

    async def post_event(
        self, session: AsyncSession, params: Mapping[str, str], now: datetime
    ) -> Answer:
        """After the fact: a participant removed outside Schoolgate (Twilio's console) has left."""
        if params.get("EventType") == PARTICIPANT_REMOVED:
            chat = await ChatRepository(session).find(PLATFORM, params.get("ConversationSid", ""))
            participant = params.get("ParticipantSid", "")
            member = (
                await GroupRepository(session).by_participant(chat.id, participant)
                if chat is not None and participant
                else None
            )
            if member is not None and member.left_at is None:
                member.left_at = now
        return ACCEPTED

    # -- commands -------------------------------------------------------------------------

    async def _command(
        self,
        session: AsyncSession,
        chat: Chat,
        school: School,
        member: ChatMember | None,
        consented: bool,
        params: Mapping[str, str],
        ref: str,
        now: datetime,
    ) -> str | None:
        """The private answer to a command, or None for an ordinary message."""
        address, text = params.get("Author", ""), params.get("Body", "").strip()
        command = command_of(text)
        if command is not None:
            if command.name in ("leave", "withdraw"):
                return await self._leave(session, chat, params, now)
            if command.name in ("privacy", "help"):
                return self.context.notice(school)
            if command.name == "mydata":
                return await self.context.subject_access(session, address, school)
            if command.name == "report":
                if not command.argument:
                    return self.texts.report_usage
                reported = self._message(params, ref, member, chat, now, command.argument)
                return await self.context.report(session, reported, school=school, now=now)
            return None  # another "/word" is just a message
        code = join_code_of(text, in_group=True)
        if code:  # never relayed: it would give the code away
            name = member.display_name if member else ""
            return await self._join_another(session, chat, code, address, name, now)
        if is_agree(text) and not consented:
            name = (
                member.display_name
                if member
                else await self._requested_name(session, chat, address)
            )
            await whatsapp_groups.agree_in_group(
                session, chat, address, params.get("ParticipantSid", ""), name, now
            )
            return self.texts.agreed.format(group=chat.title)
        if is_agree(text) or code == "":
            # Invited elsewhere: a number is in one group at a time.
            other = await JoinRequestRepository(session).latest(address, now, other_than=chat.id)
            target = await ChatRepository(session).get(other.chat_id) if other else None
            if target is not None:
                return self.texts.in_another_group.format(current=chat.title, group=target.title)
        return None

    async def _leave(
        self, session: AsyncSession, chat: Chat, params: Mapping[str, str], now: datetime
    ) -> str:
        address = params.get("Author", "")
        removed = await whatsapp_groups.leave(
            session, self.context.api, chat, address, params.get("ParticipantSid") or None, now
        )
        template = self.texts.left if removed else self.texts.left_not_removed
        return template.format(group=chat.title)

    async def _join_another(
        self,
        session: AsyncSession,
        chat: Chat,
        code: str,
        address: str,
        name: str,
        now: datetime,
    ) -> str:
        target = await GroupRepository(session).by_join_code(code_hash(code))
        if target is None:
            return self.texts.bad_code
        if target.id == chat.id:
            return self.texts.join_prompt.format(group=chat.title)
        # Remembered, so that after /leave here a JOIN at the number (no code) is enough.
        await whatsapp_groups.ask_to_join(session, target, address, name, now)
        return self.texts.in_another_group.format(current=chat.title, group=target.title)

    @staticmethod
    async def _requested_name(session: AsyncSession, chat: Chat, address: str) -> str:
        request = await JoinRequestRepository(session).find(chat.id, address)
        return request.display_name if request else ""

    # -- ordinary messages ----------------------------------------------------------------

    def _message(
        self,
        params: Mapping[str, str],
        ref: str,
        member: ChatMember | None,
        chat: Chat,
        now: datetime,
        text: str | None = None,
    ) -> ChatMessage:
        message = conversation_message(
            params,
            message_id=f"pre-{ref}",
            sender_name=(member.display_name if member else "") or self.texts.someone,
            chat_title=chat.title,
            now=now,
        )
        return message if text is None else replace(message, text=text)

    async def _check(
        self,
        session: AsyncSession,
        chat: Chat,
        school: School,
        member: ChatMember,
        params: Mapping[str, str],
        ref: str,
        now: datetime,
    ) -> Answer:
        settings = self.context.settings
        engine = await self.context.engines.for_school(session, school)
        message = self._message(params, ref, member, chat, now)
        retention = retention_of(school, settings.retention)
        checked = await check_message(session, engine, chat, member, message, retention, now)
        if checked.flag is not None:
            alert = AlertContext(
                checked.flag, list(checked.flag.reasons), chat, member, message.text
            )
            await alert_now(
                session, self.context.bot_texts, alert, channels=settings.alert_channels
            )
        observe = settings.observe_only or chat.observe_only
        if not observe and await self._held(
            session, chat, school, member, checked.verdict, ref, now
        ):
            return HELD
        if not observe:
            await remind_sender(
                session, self.context.bot_texts, engine, chat, member, message.id,
                checked.verdict, school=school, sent_at=now, every=settings.remind_every, now=now,
            )  # fmt: skip
        name = member.display_name or self.texts.someone
        if message.text:
            return relay(self.texts.relay.format(name=name, text=message.text))
        return relay(self.texts.relay_without_text.format(name=name))

    async def _held(
        self,
        session: AsyncSession,
        chat: Chat,
        school: School,
        member: ChatMember,
        verdict: Verdict,
        ref: str,
        now: datetime,
    ) -> bool:
        """Whether a rule the message breaks is set to hold it; if so the sender is told why."""
        chosen = settings_of(school)
        held = [e for e in verdict.explanations if chosen.rule(e.rule).hold]
        if not held:
            return False
        engine = await self.context.engines.for_school(session, school)
        platforms = " or ".join(engine.school.config.permitted_platforms)
        advice = self.texts.held_advice.get(str(held[0].rule), self.texts.held_advice_general)
        text = self.texts.held.format(
            group=chat.title,
            clauses="; ".join(dict.fromkeys(e.clause for e in held)),
            advice=advice.format(platforms=platforms),
        )
        await self.context.tell(
            session, member.platform_user_id, text, key=f"wa:{ref}:held", purpose="held",
            school_id=school.id, member_id=member.id, rule=str(held[0].rule), now=now,
        )  # fmt: skip
        return True


async def _school_of(session: AsyncSession, chat: Chat | None) -> School | None:
    if chat is None or chat.status != ChatStatus.REGISTERED or chat.school_id is None:
        return None
    return await SchoolRepository(session).get(chat.school_id)
