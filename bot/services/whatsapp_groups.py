"""Hosted WhatsApp class groups: creating one, asking to join (a join request), agreeing to the
notice (then, and only then, a member in the conversation), leaving, and inviting a number.

A group is a Twilio conversation and a registered ``Chat`` of the school. Twilio is called in
the caller's transaction, before the rows that record the outcome: if the transaction then
fails, the worst left behind is a participant with no consent on record, whose messages are
held until they agree (see the channel's pre-event handling).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from bot.channels.whatsapp.twilio_client import (
    ADDRESS_IN_ANOTHER_CONVERSATION,
    ALREADY_A_PARTICIPANT,
    CONVERSATION_CLOSED,
    NOT_FOUND,
    PARTICIPANT_LIMIT_REACHED,
    WHATSAPP_PREFIX,
    ConversationInfo,
    ParticipantInfo,
    TwilioApiError,
)
from bot.errors import BadInputError
from bot.services import consent
from bot.services.notices import current_notice
from bot.services.outbox import enqueue
from bot.services.registration import code_hash, new_code
from bot.services.schools import e164
from bot.store.models import Chat, ChatMember, ChatStatus, JoinRequest, School
from bot.store.repositories.audit import AuditRepository
from bot.store.repositories.chats import ChatRepository
from bot.store.repositories.members import MemberRepository
from bot.store.repositories.whatsapp import PLATFORM, GroupRepository, JoinRequestRepository
from bot.texts import Notice, WhatsAppTexts

log = logging.getLogger(__name__)

MAX_PARTICIPANTS = 50
"""Twilio's limit on SMS/WhatsApp participants in one conversation."""
JOIN_REQUEST_VALID = timedelta(days=7)
MAX_CLASS_NAME = 100
MAX_TITLE = 255


class Conversations(Protocol):
    """What this needs of Twilio (``WhatsAppApi``); each raises TwilioApiError."""

    async def create_conversation(
        self, friendly_name: str, unique_name: str | None = None
    ) -> ConversationInfo: ...

    async def add_whatsapp_participant(
        self, conversation_sid: str, address: str, proxy_address: str, friendly_name: str
    ) -> ParticipantInfo: ...

    async def remove_participant(self, conversation_sid: str, participant_sid: str) -> None: ...


@dataclass(frozen=True)
class NewGroup:
    chat: Chat
    code: str
    """The join code, to show the admin now: only its hash is stored."""


async def create_group(
    session: AsyncSession,
    api: Conversations,
    school: School,
    class_name: str,
    *,
    actor: str,
    notice: Notice,
    now: datetime,
    title: str | None = None,
) -> NewGroup:
    """A conversation for ``class_name``, registered to ``school`` as a chat, with a join code.

    ``notice`` is the installation's (the school's own, if it has one, is used instead).
    Raises BadInputError for a name that cannot be used, TwilioApiError if Twilio refuses.
    """
    class_name = " ".join(class_name.split())
    title = " ".join((title or f"{class_name} Parents").split())
    if not 1 <= len(class_name) <= MAX_CLASS_NAME:
        raise BadInputError(f"class_name: give 1 to {MAX_CLASS_NAME} characters")
    if len(title) > MAX_TITLE:
        raise BadInputError(f"title: give at most {MAX_TITLE} characters")
    conversation = await api.create_conversation(title)
    code = new_code()
    chat = await ChatRepository(session).find_or_add(PLATFORM, conversation.sid, title)
    chat.school_id, chat.class_name = school.id, class_name
    chat.status, chat.registered_at = ChatStatus.REGISTERED, now
    chat.notice_version = current_notice(school, notice).version
    chat.join_code_hash = code_hash(code)
    await session.flush()
    await AuditRepository(session).record(
        actor, "chat.whatsapp_group_created", f"chat:{chat.id}", school.id,
        class_name=class_name, title=title,
    )  # fmt: skip
    return NewGroup(chat, code)


async def renew_join_code(session: AsyncSession, chat: Chat, actor: str) -> str:
    """A new join code for a group (the old one stops working); show it to the admin now."""
    code = new_code()
    chat.join_code_hash = code_hash(code)
    await session.flush()
    await AuditRepository(session).record(
        actor, "chat.join_code_renewed", f"chat:{chat.id}", chat.school_id
    )
    return code


async def ask_to_join(
    session: AsyncSession,
    chat: Chat,
    address: str,
    display_name: str,
    now: datetime,
    *,
    valid_for: timedelta = JOIN_REQUEST_VALID,
    invited_by: str | None = None,
) -> JoinRequest:
    """Record (or renew) ``address``'s request to join ``chat``, until they agree."""
    requests = JoinRequestRepository(session)
    request = await requests.find(chat.id, address)
    if request is None:
        return await requests.add(
            JoinRequest(
                chat_id=chat.id, address=address, display_name=display_name[:255],
                invited_by=invited_by, created_at=now, expires_at=now + valid_for,
            )
        )  # fmt: skip
    request.created_at, request.expires_at = now, now + valid_for
    request.display_name = display_name[:255] or request.display_name
    request.invited_by = invited_by or request.invited_by
    await session.flush()
    return request


class JoinOutcome(StrEnum):
    JOINED = "joined"
    FULL = "full"
    IN_ANOTHER_GROUP = "in_another_group"
    FAILED = "failed"
    """Twilio did not answer or refused for another reason: try again later."""


@dataclass(frozen=True)
class Joined:
    outcome: JoinOutcome
    member: ChatMember | None = None
    current: Chat | None = None
    """For IN_ANOTHER_GROUP: the group they are in, when it is one of ours."""


async def join(
    session: AsyncSession,
    api: Conversations,
    request: JoinRequest,
    chat: Chat,
    *,
    proxy_address: str,
    now: datetime,
    limit: int = MAX_PARTICIPANTS,
) -> Joined:
    """The requester agreed: add them to the conversation, then record them as a member with
    their consent (method "reply") and forget the request. Refused when the group is full (our
    count first, then Twilio's 50418) or their number is in another group on this number
    (ours, then Twilio's 50416): an address pair is in one open conversation at a time."""
    address = request.address
    current = [c for c in await GroupRepository(session).current_groups(address) if c.id != chat.id]
    if current:
        return Joined(JoinOutcome.IN_ANOTHER_GROUP, current=current[0])
    if await GroupRepository(session).member_count(chat.id) >= limit:
        return Joined(JoinOutcome.FULL)
    participant_sid: str | None = None
    try:
        participant = await api.add_whatsapp_participant(
            chat.platform_chat_id, address, proxy_address, request.display_name
        )
        participant_sid = participant.sid
    except TwilioApiError as error:
        if error.code == PARTICIPANT_LIMIT_REACHED:
            return Joined(JoinOutcome.FULL)
        if error.code == ADDRESS_IN_ANOTHER_CONVERSATION:
            return Joined(JoinOutcome.IN_ANOTHER_GROUP)
        if error.code != ALREADY_A_PARTICIPANT:  # already in: only the record is missing
            log.warning("could not add a participant to chat %s: %s", chat.id, error)
            return Joined(JoinOutcome.FAILED)
    member = await MemberRepository(session).find_or_add(
        chat.id, address, request.display_name, None
    )
    member.platform_ref = participant_sid or member.platform_ref
    await consent.give(session, chat, member, "reply", now)
    await JoinRequestRepository(session).remove(request)
    await AuditRepository(session).record(
        f"{PLATFORM}:user:{address}", "member.joined", f"member:{member.id}", chat.school_id,
        chat=chat.id,
    )  # fmt: skip
    return Joined(JoinOutcome.JOINED, member)


async def agree_in_group(
    session: AsyncSession,
    chat: Chat,
    address: str,
    participant_sid: str,
    display_name: str,
    now: datetime,
) -> tuple[ChatMember, bool]:
    """A participant agreed from inside the group (to a new notice, or because they are in the
    conversation with no consent on record); the member, and whether consent was recorded now
    (False: it was in force already)."""
    members = MemberRepository(session)
    member = await members.find(chat.id, address)
    if member is None:
        member = await members.find_or_add(chat.id, address, display_name, None)
    member.platform_ref = member.platform_ref or participant_sid or None
    member.left_at = None
    recorded = await consent.give(session, chat, member, "reply", now)
    requests = JoinRequestRepository(session)
    request = await requests.find(chat.id, address)
    if request is not None:
        await requests.remove(request)
    return member, recorded


async def leave(
    session: AsyncSession,
    api: Conversations,
    chat: Chat,
    address: str,
    participant_sid: str | None,
    now: datetime,
) -> bool:
    """``address`` leaves ``chat``: consent withdrawn and their words deleted (as Telegram's
    /withdraw: every chat of theirs), then they are taken out of the conversation. Whether they
    are out of it (False: Twilio failed; the withdrawal stands, they can try again)."""
    await consent.withdraw(session, PLATFORM, address, now)
    member = await MemberRepository(session).find(chat.id, address)
    participant = participant_sid or (member.platform_ref if member else None)
    if participant:
        try:
            await api.remove_participant(chat.platform_chat_id, participant)
        except TwilioApiError as error:
            if error.code not in (NOT_FOUND, CONVERSATION_CLOSED):  # else: out already
                log.warning("could not remove a participant from chat %s: %s", chat.id, error)
                return False
    if member is not None:
        member.left_at = now
    await AuditRepository(session).record(
        f"{PLATFORM}:user:{address}", "member.left", f"chat:{chat.id}", chat.school_id
    )
    return True


def whatsapp_address(number: str) -> str:
    """``whatsapp:+447700900123`` from a UK or E.164 number, or from such an address."""
    plain = number.strip().removeprefix(WHATSAPP_PREFIX)
    formatted = e164(plain)
    if formatted is None:
        raise BadInputError(f"number: {number!r} is not a phone number")
    return WHATSAPP_PREFIX + formatted


async def invite(
    session: AsyncSession,
    chat: Chat,
    school: School,
    number: str,
    *,
    invited_by: str,
    texts: WhatsAppTexts,
    now: datetime,
    valid_for: timedelta = JOIN_REQUEST_VALID,
) -> JoinRequest:
    """Invite a number to ``chat``: a join request (their reply JOIN or AGREE needs no code),
    and the invitation queued on the "whatsapp" channel with purpose "invite" (outside the
    24-hour window it goes as the approved invite template)."""
    if chat.platform != PLATFORM or chat.status != ChatStatus.REGISTERED:
        raise BadInputError("only a hosted WhatsApp group takes invitations")
    address = whatsapp_address(number)
    request = await ask_to_join(
        session, chat, address, "", now, valid_for=valid_for, invited_by=invited_by
    )
    await enqueue(
        session, key=f"invite:{chat.id}:{address}:{now.timestamp():.0f}", channel="whatsapp",
        recipient=address, text=texts.invite.format(school=school.name, group=chat.title),
        purpose="invite", school_id=school.id, now=now,
    )  # fmt: skip
    await AuditRepository(session).record(
        invited_by, "chat.whatsapp_invited", f"chat:{chat.id}", school.id,
        number_ending=address[-4:],
    )  # fmt: skip
    return request
