"""The school's chats as the admin pages show them: coverage, members on record, closures,
registration codes and the observe-only switch."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy.ext.asyncio import AsyncSession

from bot.errors import BadInputError, NotFoundError
from bot.services import consent, registration
from bot.services.consent import Coverage
from bot.services.people import ConsentState, consent_state
from bot.store.models import Chat, ChatClosure, ChatMember, Consent, RegistrationCode, School
from bot.store.repositories.audit import AuditRepository
from bot.store.repositories.chats import ACTIVE_CLOSURE, ChatRepository, ClosureRepository
from bot.store.repositories.members import ConsentRepository, MemberRepository
from bot.store.repositories.registration import RegistrationCodeRepository

CANNOT_READ = (
    "The bot cannot see ordinary messages in this chat, so it checks nothing. To fix it, make "
    "the bot a group admin (recommended), or turn its privacy mode off with @BotFather and add "
    "it to the chat again."
)


def coverage_text(cover: Coverage) -> str:
    return f"{cover.consented} of {cover.members} agreed"


@dataclass(frozen=True)
class ChatOverview:
    chat: Chat
    coverage: Coverage
    closure: ChatClosure | None
    """The closure under way, if any."""

    @property
    def warning(self) -> str | None:
        return None if self.chat.bot_can_read_all else CANNOT_READ


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
class ChatDetail:
    overview: ChatOverview
    members: list[MemberOnRecord]
    closures: list[ChatClosure]
    """Every closure of the chat, the latest first."""


async def detail(session: AsyncSession, school_id: int, chat_id: int) -> ChatDetail:
    chat = await chat_of_school(session, school_id, chat_id)
    members = await MemberRepository(session).on_record(chat.id)
    consents = await ConsentRepository(session).for_members([m.id for m in members])
    closures = await ClosureRepository(session).for_chat(chat.id)
    active = next((c for c in closures if c.status in ACTIVE_CLOSURE), None)
    return ChatDetail(
        ChatOverview(chat, await consent.coverage(session, chat), active),
        [MemberOnRecord(m, consents[m.id], consent_state(chat, consents[m.id])) for m in members],
        closures,
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
