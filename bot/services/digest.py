"""The daily digest of medium and low flags, and escalation of alerts nobody acknowledged."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from bot.services.alerts import AlertContext, alert_buttons, alert_text, recipients
from bot.services.outbox import enqueue
from bot.store.models import Chat, ChatMember, Flag, FlagStatus, School, StoredMessage
from bot.texts import TelegramTexts

DIGEST_SEVERITIES = ("medium", "low")


async def queue_digests(
    session: AsyncSession, texts: TelegramTexts, digest_time: time, now: datetime
) -> int:
    """Once a day, at ``digest_time`` in each school's time zone, a summary to each linked SLT
    member of the medium and low flags still open from the last day. Idempotent per day."""
    queued = 0
    for school in await session.scalars(select(School)):
        zone = ZoneInfo(school.config["school"].get("timezone", "Europe/London"))
        local = now.astimezone(zone)
        if local.time() < digest_time:
            continue
        flags = await _open_flags(session, school.id, DIGEST_SEVERITIES, now - timedelta(days=1))
        if not flags:
            continue
        lines = []
        for flag, chat, sender in flags:
            lines.append(
                texts.digest_line.format(
                    severity=flag.severity.capitalize(),
                    rules=", ".join(r.rule for r in flag.reasons),
                    chat=chat.title,
                    sender=sender.display_name,
                    evidence="; ".join(r.evidence for r in flag.reasons),
                )
            )
        text = texts.digest.format(school=school.name, count=len(flags), lines="\n".join(lines))
        for member in await recipients(session, school.id, set()):
            await enqueue(
                session, key=f"digest:{school.id}:{local.date()}:{member.id}",
                channel="telegram", recipient=str(member.telegram_user_id), text=text[:4000],
                purpose="digest", school_id=school.id, staff_id=member.id, now=now,
            )  # fmt: skip
            queued += 1
    return queued


async def escalate(
    session: AsyncSession, texts: TelegramTexts, after: timedelta, now: datetime
) -> int:
    """Send once more, to every recipient, each high-severity alert still open after ``after``."""
    queued = 0
    query = (
        select(Flag, Chat, ChatMember)
        .join(Chat, Chat.id == Flag.chat_id)
        .join(ChatMember, ChatMember.id == Flag.member_id)
        .where(
            Flag.status == FlagStatus.OPEN, Flag.severity == "high", Flag.created_at <= now - after
        )
        .options(selectinload(Flag.reasons))
    )
    for flag, chat, sender in await session.execute(query):
        if chat.school_id is None:
            continue
        stored = await session.get(StoredMessage, flag.message_id)
        context = AlertContext(
            flag, list(flag.reasons), chat, sender, (stored.text if stored else "") or ""
        )
        minutes = round(after.total_seconds() / 60)
        text = texts.escalation.format(minutes=minutes, alert=alert_text(texts, context))
        for member in await recipients(session, chat.school_id, {r.rule for r in flag.reasons}):
            await enqueue(
                session, key=f"escalation:{flag.id}:{member.id}", channel="telegram",
                recipient=str(member.telegram_user_id), text=text, purpose="alert",
                buttons=alert_buttons(texts, flag.id), school_id=chat.school_id,
                flag_id=flag.id, staff_id=member.id, now=now,
            )  # fmt: skip
            queued += 1
    return queued


async def _open_flags(
    session: AsyncSession, school_id: int, severities: tuple[str, ...], since: datetime
) -> list[tuple[Flag, Chat, ChatMember]]:
    query = (
        select(Flag, Chat, ChatMember)
        .join(Chat, Chat.id == Flag.chat_id)
        .join(ChatMember, ChatMember.id == Flag.member_id)
        .where(
            Chat.school_id == school_id,
            Flag.status == FlagStatus.OPEN,
            Flag.severity.in_(severities),
            Flag.created_at >= since,
        )
        .options(selectinload(Flag.reasons))
        .order_by(Flag.id)
    )
    return [(flag, chat, sender) for flag, chat, sender in await session.execute(query)]
