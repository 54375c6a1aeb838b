"""The daily digest of flags each school hears of once a day, and escalation of alerts nobody
acknowledged. Each school may set its own digest time and escalation delay."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from bot.services.alerts import (
    TELEGRAM_ONLY,
    AlertContext,
    alert_buttons,
    alert_text,
    audience,
    flag_timing,
    notify,
)
from bot.services.school_settings import AlertTiming, settings_of
from bot.store.models import Chat, ChatMember, Flag, FlagStatus, School, StoredMessage
from bot.texts import TelegramTexts


async def queue_digests(
    session: AsyncSession,
    texts: TelegramTexts,
    digest_time: time,
    now: datetime,
    *,
    channels: Collection[str] = TELEGRAM_ONLY,
) -> int:
    """Once a day, at each school's digest time (``digest_time`` unless it set its own) in its
    time zone, a summary to SLT, on each of their channels among ``channels``, of the flags
    still open from the last day that the school hears of in the digest. Idempotent per day."""
    queued = 0
    for school in await session.scalars(select(School).order_by(School.id)):
        settings = settings_of(school)
        zone = ZoneInfo(school.config["school"].get("timezone", "Europe/London"))
        local = now.astimezone(zone)
        if local.time() < settings.digest_clock(digest_time):
            continue
        flags = [
            (flag, chat, sender)
            for flag, chat, sender in await _open_flags(
                session, school.id, since=now - timedelta(days=1)
            )
            if flag_timing(settings, flag.reasons) is AlertTiming.DIGEST
        ]
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
        queued += await notify(
            session, await audience(session, school.id, set(), channels=channels),
            key=f"digest:{school.id}:{local.date()}", text=text, purpose="digest",
            school_id=school.id, now=now,
        )  # fmt: skip
    return queued


async def escalate(
    session: AsyncSession,
    texts: TelegramTexts,
    after: timedelta,
    now: datetime,
    *,
    channels: Collection[str] = TELEGRAM_ONLY,
) -> int:
    """Send once more, to every recipient, each alert still open after the school's own delay
    (``after`` unless it set one)."""
    queued = 0
    for school in await session.scalars(select(School).order_by(School.id)):
        settings = settings_of(school)
        wait = (
            timedelta(minutes=settings.escalate_after_minutes)
            if settings.escalate_after_minutes
            else after
        )
        for flag, chat, sender in await _open_flags(session, school.id, until=now - wait):
            if flag_timing(settings, flag.reasons) is not AlertTiming.NOW:
                continue  # never alerted, so nothing to send again
            stored = await session.get(StoredMessage, flag.message_id)
            context = AlertContext(
                flag, list(flag.reasons), chat, sender, (stored.text if stored else "") or ""
            )
            minutes = round(wait.total_seconds() / 60)
            text = texts.escalation.format(minutes=minutes, alert=alert_text(texts, context))
            rules = {r.rule for r in flag.reasons}
            queued += await notify(
                session, await audience(session, school.id, rules, channels=channels),
                key=f"escalation:{flag.id}", text=text, purpose="alert",
                buttons=alert_buttons(texts, flag), school_id=school.id, flag_id=flag.id,
                now=now,
            )  # fmt: skip
    return queued


async def _open_flags(
    session: AsyncSession,
    school_id: int,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[tuple[Flag, Chat, ChatMember]]:
    """The school's open flags raised from ``since`` and up to ``until``, oldest first."""
    query = (
        select(Flag, Chat, ChatMember)
        .join(Chat, Chat.id == Flag.chat_id)
        .join(ChatMember, ChatMember.id == Flag.member_id)
        .where(Chat.school_id == school_id, Flag.status == FlagStatus.OPEN)
        .options(selectinload(Flag.reasons))
        .order_by(Flag.id)
    )
    if since is not None:
        query = query.where(Flag.created_at >= since)
    if until is not None:
        query = query.where(Flag.created_at <= until)
    return [(flag, chat, sender) for flag, chat, sender in await session.execute(query)]
