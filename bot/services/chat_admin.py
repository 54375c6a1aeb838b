"""The school's chats as the admin pages show them: coverage, members on record, closures,
registration codes and the observe-only switch; hosted WhatsApp groups (making one, a new join
code, inviting a parent by number) and the WhatsApp report line."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

import phonenumbers
from sqlalchemy.ext.asyncio import AsyncSession

from bot.channels.whatsapp.twilio_client import WHATSAPP_PREFIX, TwilioApiError
from bot.errors import BadInputError, ConflictError, NotFoundError, SchoolgateError
from bot.services import consent, registration, whatsapp_groups
from bot.services.consent import Coverage
from bot.services.people import ConsentState, consent_state
from bot.services.whatsapp_groups import MAX_PARTICIPANTS, Conversations, NewGroup
from bot.store.models import (
    Chat,
    ChatClosure,
    ChatMember,
    ChatStatus,
    Consent,
    JoinRequest,
    RegistrationCode,
    School,
    utcnow,
)
from bot.store.repositories.audit import AuditRepository
from bot.store.repositories.chats import ACTIVE_CLOSURE, ChatRepository, ClosureRepository
from bot.store.repositories.members import ConsentRepository, MemberRepository
from bot.store.repositories.registration import RegistrationCodeRepository
from bot.store.repositories.whatsapp import (
    PLATFORM as WHATSAPP,
)
from bot.store.repositories.whatsapp import (
    REPORT_LINE_PREFIX,
    GroupRepository,
    JoinRequestRepository,
)
from bot.texts import Notice, WhatsAppTexts

CANNOT_READ = (
    "The bot cannot see ordinary messages in this chat, so it checks nothing. To fix it, make "
    "the bot a group admin (recommended), or turn its privacy mode off with @BotFather and add "
    "it to the chat again."
)


def coverage_text(cover: Coverage) -> str:
    return f"{cover.consented} of {cover.members} agreed"


def is_report_line(chat: Chat) -> bool:
    """The school's WhatsApp report line: reports forwarded to its number, not a group."""
    return chat.platform == WHATSAPP and chat.platform_chat_id.startswith(REPORT_LINE_PREFIX)


def is_hosted_group(chat: Chat) -> bool:
    """A WhatsApp class group Schoolgate hosts (a Twilio conversation)."""
    return chat.platform == WHATSAPP and not is_report_line(chat)


PLATFORM_LABELS = {"telegram": "Telegram", WHATSAPP: "WhatsApp"}


def platform_label(chat: Chat) -> str:
    if is_report_line(chat):
        return "WhatsApp report line"
    return PLATFORM_LABELS.get(chat.platform, chat.platform.capitalize())


@dataclass(frozen=True)
class ChatOverview:
    chat: Chat
    coverage: Coverage
    closure: ChatClosure | None
    """The closure under way, if any."""

    @property
    def warning(self) -> str | None:
        return None if self.chat.bot_can_read_all else CANNOT_READ

    @property
    def platform(self) -> str:
        return platform_label(self.chat)


async def overview_of(session: AsyncSession, chat: Chat) -> ChatOverview:
    closing = await ClosureRepository(session).active_in([chat.id])
    return ChatOverview(chat, await consent.coverage(session, chat), closing.get(chat.id))


async def overview(session: AsyncSession, school_id: int) -> list[ChatOverview]:
    chats = await ChatRepository(session).for_school(school_id)
    closing = await ClosureRepository(session).active_in([chat.id for chat in chats])
    return [
        ChatOverview(chat, await consent.coverage(session, chat), closing.get(chat.id))
        for chat in chats
    ]


async def chat_of_school(session: AsyncSession, school_id: int, chat_id: int) -> Chat:
    chat = await ChatRepository(session).in_school(school_id, chat_id)
    if chat is None:
        raise NotFoundError("There is no such chat at your school.")
    return chat


@dataclass(frozen=True)
class MemberOnRecord:
    member: ChatMember
    consents: list[Consent]
    state: ConsentState


@dataclass(frozen=True)
class GroupFacts:
    """A hosted WhatsApp group's numbers."""

    participants: int
    """Members in the conversation now (those who agreed and have not left)."""
    waiting: int
    """People who asked to join, or were invited, and have not agreed yet."""
    join_code_set: bool
    limit: int = MAX_PARTICIPANTS
    """Twilio's limit on WhatsApp participants in one conversation."""

    @property
    def full(self) -> bool:
        return self.participants >= self.limit


async def group_facts(session: AsyncSession, chat: Chat, now: datetime) -> GroupFacts:
    return GroupFacts(
        participants=await GroupRepository(session).member_count(chat.id),
        waiting=await JoinRequestRepository(session).waiting(chat.id, now),
        join_code_set=chat.join_code_hash is not None,
    )


@dataclass(frozen=True)
class ChatDetail:
    overview: ChatOverview
    members: list[MemberOnRecord]
    closures: list[ChatClosure]
    """Every closure of the chat, the latest first."""
    group: GroupFacts | None = None
    """For a hosted WhatsApp group."""


async def detail(
    session: AsyncSession, school_id: int, chat_id: int, now: datetime | None = None
) -> ChatDetail:
    chat = await chat_of_school(session, school_id, chat_id)
    members = await MemberRepository(session).on_record(chat.id)
    consents = await ConsentRepository(session).for_members([m.id for m in members])
    closures = await ClosureRepository(session).for_chat(chat.id)
    active = next((c for c in closures if c.status in ACTIVE_CLOSURE), None)
    group = None
    if is_hosted_group(chat):
        group = await group_facts(session, chat, now or utcnow())
    return ChatDetail(
        ChatOverview(chat, await consent.coverage(session, chat), active),
        [MemberOnRecord(m, consents[m.id], consent_state(chat, consents[m.id])) for m in members],
        closures,
        group,
    )


async def set_observe_only(session: AsyncSession, chat: Chat, on: bool, actor: str) -> bool:
    """Switch the chat's observe-only mode (the bot then neither reminds nor warns there).

    Returns whether anything changed; a change is audited.
    """
    if chat.observe_only == on:
        return False
    chat.observe_only = on
    await AuditRepository(session).record(
        actor, "chat.observe_only", f"chat:{chat.id}", chat.school_id, observe_only=on
    )
    return True


class CodeState(StrEnum):
    WAITING = "waiting"
    USED = "used"
    EXPIRED = "expired"


def code_state(code: RegistrationCode, now: datetime) -> CodeState:
    if code.used_at is not None:
        return CodeState.USED
    return CodeState.EXPIRED if code.expires_at <= now else CodeState.WAITING


async def new_code(
    session: AsyncSession,
    school: School,
    class_name: str,
    actor: str,
    valid_for: timedelta,
    now: datetime,
) -> str:
    """A registration code for ``class_name``: shown once, only its hash is kept."""
    cleaned = " ".join(class_name.split())
    if not cleaned:
        raise BadInputError('give the class the chat is for, e.g. "Year 3"')
    return await registration.create_code(session, school, cleaned, actor, valid_for, now)


async def codes(session: AsyncSession, school_id: int) -> list[RegistrationCode]:
    """The school's latest registration codes (never the codes themselves: only hashes are
    stored)."""
    return await RegistrationCodeRepository(session).for_school(school_id)


# -- hosted WhatsApp groups ----------------------------------------------------------------


class TwilioUnavailableError(SchoolgateError):
    """Twilio did not answer (or the channel is not running yet): nothing was done."""

    http_status = 503


class TwilioRefusedError(SchoolgateError):
    """Twilio refused the request: nothing was done."""

    http_status = 502


def twilio_failure(error: TwilioApiError) -> SchoolgateError:
    if error.retryable:
        return TwilioUnavailableError(
            "Twilio did not answer, so nothing was made. Please try again in a few minutes."
        )
    return TwilioRefusedError(
        f"Twilio refused ({error.message}; Twilio error {error.code}), so nothing was made. "
        "Check the Twilio settings: see the README's WhatsApp section."
    )


def display_number(address: str) -> str:
    """``whatsapp:+441632960000`` as people write it: +44 1632 960000."""
    number = address.removeprefix(WHATSAPP_PREFIX)
    try:
        parsed = phonenumbers.parse(number, "GB")
    except phonenumbers.NumberParseException:
        return number
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def join_instructions(code: str, number: str) -> str:
    return (
        f"Each parent sends JOIN {code} to {number} on WhatsApp. They are sent the school's "
        "notice, and join the group when they reply AGREE; nothing they write is read or passed "
        "on before that."
    )


async def create_whatsapp_group(
    session: AsyncSession,
    api: Conversations,
    school: School,
    class_name: str,
    *,
    actor: str,
    notice: Notice,
    now: datetime,
) -> NewGroup:
    """A hosted WhatsApp group for ``class_name`` with its join code (shown once)."""
    try:
        return await whatsapp_groups.create_group(
            session, api, school, class_name, actor=actor, notice=notice, now=now
        )
    except TwilioApiError as error:
        raise twilio_failure(error) from error


async def _open_group(session: AsyncSession, chat: Chat) -> Chat:
    """``chat`` if it is a hosted WhatsApp group that people may still join."""
    if not is_hosted_group(chat):
        raise ConflictError("Only a hosted WhatsApp group has a join code and invitations.")
    if chat.status != ChatStatus.REGISTERED:
        raise ConflictError("This group is closed: nobody can join it any more.")
    if await ClosureRepository(session).active(chat.id) is not None:
        raise ConflictError("This group is being closed: nobody can join it any more.")
    return chat


async def new_join_code(session: AsyncSession, chat: Chat, actor: str) -> str:
    """A new join code for the group (the old one stops working); shown once."""
    return await whatsapp_groups.renew_join_code(session, await _open_group(session, chat), actor)


def whatsapp_number(number: str) -> str:
    """A parent's number as a WhatsApp address (07700 900123 -> whatsapp:+447700900123)."""
    try:
        return whatsapp_groups.whatsapp_address(number)
    except BadInputError:
        raise BadInputError(
            f"{number.strip()[:40]!r} is not a phone number. Give a UK mobile number like "
            "07700 900123, or a number starting with + and its country code."
        ) from None


async def invite_parent(
    session: AsyncSession,
    chat: Chat,
    school: School,
    number: str,
    *,
    actor: str,
    texts: WhatsAppTexts,
    now: datetime,
) -> JoinRequest:
    """Invite ``number`` to the group: they are sent the invitation and join by replying JOIN,
    then AGREE. Refused for a number already in the group, or a group that is full."""
    group = await _open_group(session, chat)
    address = whatsapp_number(number)
    member = await MemberRepository(session).find(group.id, address)
    if member is not None and member.left_at is None:
        raise ConflictError(f"That number is already in {group.title}.")
    facts = await group_facts(session, group, now)
    if facts.full:
        raise ConflictError(
            f"{group.title} is full: a WhatsApp group can have at most {facts.limit} members."
        )
    return await whatsapp_groups.invite(
        session, group, school, address, invited_by=actor, texts=texts, now=now
    )
