"""Short, kind reminders to senders, at most one per member per rule per period."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.policy import PolicyEngine, RuleId, Verdict
from bot.policy.calendar import WorkingCalendar
from bot.services.outbox import enqueue
from bot.services.school_settings import SchoolSettings, settings_of
from bot.store.models import Chat, ChatMember, OutboxMessage, School
from bot.texts import TelegramTexts

TELEGRAM, WHATSAPP = "telegram", "whatsapp"
"""Platforms, and the outbox channels that reach one person there."""

# In the order a reminder about several is best chosen: the most specific first.
REMINDED_RULES = (
    RuleId.OUT_OF_HOURS,
    RuleId.IMAGES_CONSENT,
    RuleId.FREQUENT_CONTACT,
    RuleId.STAFF_CONTACT,
)


async def recently_reminded(
    session: AsyncSession, member_id: int, rule: str, since: datetime
) -> bool:
    query = (
        select(func.count())
        .select_from(OutboxMessage)
        .where(
            OutboxMessage.purpose == "reminder",
            OutboxMessage.member_id == member_id,
            OutboxMessage.rule == rule,
            OutboxMessage.created_at >= since,
        )
    )
    return bool(await session.scalar(query))


def when_back(calendar: WorkingCalendar, after: datetime) -> str:
    """ "on Monday at 8:00", "tomorrow at 8:00", "at 13:00"."""
    back = calendar.next_working_time(after)
    if back is None:
        return "when school reopens"
    local = calendar.local(after)
    clock = f"{back.hour}:{back.minute:02d}"
    if back.date() == local.date():
        return f"at {clock}"
    if (back.date() - local.date()).days == 1:
        return f"tomorrow at {clock}"
    if (back.date() - local.date()).days < 7:
        return f"on {back:%A} at {clock}"
    return f"on {back:%A} {back.day} {back:%B} at {clock}"


async def remind_sender(
    session: AsyncSession,
    texts: TelegramTexts,
    engine: PolicyEngine,
    chat: Chat,
    member: ChatMember,
    message_id: str,
    verdict: Verdict,
    *,
    school: School,
    sent_at: datetime,
    every: timedelta,
    now: datetime,
) -> OutboxMessage | None:
    """``remind`` for a message just checked by ``engine``: "out of hours" by the working
    hours of the staff member it names (the school's, if it names none), and the school's
    permitted platforms as the way to reach staff."""
    contacted = [engine.school.directory.by_name(name) for name in verdict.contacted_staff]
    calendar = engine.school.calendar_for(next((c for c in contacted if c), None))
    return await remind(
        session, texts, chat, member, message_id, verdict,
        calendar=calendar, platforms=list(engine.school.config.permitted_platforms),
        sent_at=sent_at, every=every, now=now, school=settings_of(school),
    )  # fmt: skip


async def remind(
    session: AsyncSession,
    texts: TelegramTexts,
    chat: Chat,
    member: ChatMember,
    message_id: str,
    verdict: Verdict,
    *,
    calendar: WorkingCalendar,
    platforms: list[str],
    sent_at: datetime,
    every: timedelta,
    now: datetime,
    school: SchoolSettings | None = None,
) -> OutboxMessage | None:
    """Queue one reminder for the most specific rule this message breaks that the school
    reminds senders of (in its own words where it has reworded it), unless the member had a
    reminder about it within ``every``."""
    chosen = school or SchoolSettings()
    broken = set(verdict.rules)
    rule = next(
        (
            r
            for r in REMINDED_RULES
            if r in broken
            and chosen.rule(r).remind
            and (r in chosen.reminders or r in texts.reminders)
        ),
        None,
    )
    if rule is None or await recently_reminded(session, member.id, str(rule), now - every):
        return None
    who = " and ".join(verdict.contacted_staff) or "Staff"
    template = chosen.reminders.get(rule) or texts.reminders[str(rule)]
    text = template.format(
        name=member.display_name.split()[0] if member.display_name else "there",
        platforms=" or ".join(platforms),
        who=who,
        when=when_back(calendar, sent_at),
    )
    return await to_sender(
        session, chat, member, message_id, key=f"reminder:{chat.id}:{message_id}:{rule}",
        text=text, purpose="reminder", rule=str(rule), now=now,
    )  # fmt: skip


async def to_sender(
    session: AsyncSession,
    chat: Chat,
    member: ChatMember,
    message_id: str | None,
    *,
    key: str,
    text: str,
    purpose: str,
    rule: str | None = None,
    now: datetime | None = None,
) -> OutboxMessage:
    """Queue a message to the sender of ``message_id``, never for the whole chat to read.

    On Telegram: privately where they have started a private chat with the bot, otherwise as
    a reply to their message in the chat. On WhatsApp: a direct message to their number (their
    ``platform_user_id``, ``whatsapp:+44...``), outside the group.
    """
    if chat.platform == WHATSAPP:
        channel, recipient, reply_to = WHATSAPP, member.platform_user_id, None
    else:
        private = member.private_chat_id
        channel, recipient = TELEGRAM, private or chat.platform_chat_id
        reply_to = None if private else message_id
    return await enqueue(
        session,
        key=key,
        channel=channel,
        recipient=recipient,
        reply_to=reply_to,
        text=text,
        purpose=purpose,
        school_id=chat.school_id,
        member_id=member.id,
        rule=rule,
        now=now,
    )
