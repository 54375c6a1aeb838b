"""Consent: recorded per member, chat and notice version; withdrawn at once, with the data."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.services import learning
from bot.store.models import Chat, ChatMember, Consent
from bot.store.repositories.audit import AuditRepository
from bot.store.repositories.chats import ChatRepository
from bot.store.repositories.flags import FlagRepository
from bot.store.repositories.learning import LearningRepository
from bot.store.repositories.members import ConsentRepository, MemberRepository
from bot.store.repositories.messages import MessageRepository


async def has_consented(session: AsyncSession, chat: Chat, member: ChatMember) -> bool:
    """Consent in force for the chat's current notice: a new notice needs fresh consent."""
    current = await ConsentRepository(session).current(member.id)
    return current is not None and current.notice_version == chat.notice_version


async def give(
    session: AsyncSession, chat: Chat, member: ChatMember, method: str, now: datetime
) -> bool:
    """Record consent to the chat's notice; False when it was already given."""
    if chat.notice_version is None:
        raise ValueError("a chat has no notice to agree to until it is registered")
    if await has_consented(session, chat, member):
        return False
    await ConsentRepository(session).add(
        Consent(member_id=member.id, notice_version=chat.notice_version, method=method,
                given_at=now)
    )  # fmt: skip
    await AuditRepository(session).record(
        f"{chat.platform}:user:{member.platform_user_id}", "consent.given",
        f"member:{member.id}", chat.school_id, chat=chat.id,
        notice_version=chat.notice_version, method=method,
    )  # fmt: skip
    return True


async def withdraw(
    session: AsyncSession, platform: str, platform_user_id: str, now: datetime
) -> int:
    """Withdraw this person's consent in every chat and delete their messages' words.

    Returns how many consents were withdrawn (0: there was nothing to withdraw).
    """
    members = await MemberRepository(session).everywhere(platform_user_id)
    consents = ConsentRepository(session)
    withdrawn = 0
    for member in members:
        while (current := await consents.current(member.id)) is not None:
            current.withdrawn_at = now
            withdrawn += 1
            await session.flush()
    erased = await MessageRepository(session).erase_content([m.id for m in members])
    await learning.forget_members(session, [m.id for m in members], now)
    if withdrawn:
        await AuditRepository(session).record(
            f"{platform}:user:{platform_user_id}", "consent.withdrawn",
            f"{platform}:user:{platform_user_id}", None,
            consents=withdrawn, messages_erased=erased,
        )  # fmt: skip
    return withdrawn


@dataclass(frozen=True)
class Coverage:
    consented: int
    members: int
    """People in the chat as the platform reports them (or, if it has not, those on record)."""
    unconsented_messages: int


async def coverage(session: AsyncSession, chat: Chat) -> Coverage:
    consented = 0
    if chat.notice_version is not None:
        consented = await ConsentRepository(session).consenting_count(chat.id, chat.notice_version)
    members = chat.member_count
    if members is None:
        members = len(await MemberRepository(session).in_chat(chat.id))
    return Coverage(consented, max(members, consented), chat.unconsented_messages)


async def subject_access(
    session: AsyncSession, platform: str, platform_user_id: str
) -> dict[str, Any]:
    """Everything held about one person: their memberships, consents, messages and flags."""
    members = await MemberRepository(session).everywhere(platform_user_id)
    chats = ChatRepository(session)
    consents = ConsentRepository(session)
    messages = MessageRepository(session)
    flags = FlagRepository(session)
    report: dict[str, Any] = {"platform": platform, "user_id": platform_user_id, "chats": []}
    for member in members:
        chat = await chats.get(member.chat_id)
        flagged = await flags.for_member(member.id)
        kept = await LearningRepository(session).kept_among([f.id for f in flagged])
        report["chats"].append(
            {
                "chat": chat.title if chat else "",
                "name": member.display_name,
                "first_seen": member.first_seen_at.isoformat(),
                "consents": [
                    {
                        "notice_version": c.notice_version,
                        "method": c.method,
                        "given_at": c.given_at.isoformat(),
                        "withdrawn_at": c.withdrawn_at.isoformat() if c.withdrawn_at else None,
                    }
                    for c in await consents.history(member.id)
                ],
                "messages": [
                    {
                        "sent_at": m.sent_at.isoformat(),
                        "text": m.text,
                        "contacted_staff": m.contacted_staff,
                        "media": m.media_kinds,
                    }
                    for m in await messages.for_member(member.id)
                ],
                "flags": [
                    {
                        "created_at": f.created_at.isoformat(),
                        "status": str(f.status),
                        "rules": [r.rule for r in f.reasons],
                        "kept_as_example": f.id in kept,
                    }
                    for f in flagged
                ],
            }
        )
    return report
