"""Deleting what has been kept long enough: message records, flags, the audit log, and the
short-lived rows behind delivery and signing in. Each purge is itself recorded in the audit log.

A stored row carries its own ``keep_until``, set from the retention periods in force when it was
stored; a school that later shortens its periods (admin Settings page) has its older rows
deleted by age as well, so the shorter period applies to everything it holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Delete, Update, delete, exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.services.school_settings import settings_of
from bot.store.models import (
    AuditEvent,
    Chat,
    Flag,
    InboxItem,
    InboxStatus,
    JoinRequest,
    LoginAttempt,
    MessagingWindow,
    OutboxMessage,
    OutboxStatus,
    School,
    StoredMessage,
    UserSession,
    WebhookReceipt,
)
from bot.store.repositories.audit import AuditRepository

# A processed update's row holds no content, only its id (to spot replays): Telegram stops
# re-sending an update within a day, so a week is ample.
INBOX_KEEP = timedelta(days=7)
# A delivered alert quotes the flagged words; once delivered (or given up on) it is kept only
# long enough to see that it went, and the flag itself keeps the record.
OUTBOX_KEEP = timedelta(days=7)
# Sign-in attempts only matter for throttling (minutes); ended sessions for the account page.
LOGIN_ATTEMPTS_KEEP = timedelta(days=1)
ENDED_SESSIONS_KEEP = timedelta(days=30)
# An answered Twilio webhook is kept to answer a replay the same way: a week, as the inbox. A
# messaging window only matters for 24 hours after someone last wrote. A join request that ran
# out holds a number nobody agreed to keep.
WEBHOOK_RECEIPTS_KEEP = timedelta(days=7)
# Its answer, though, may quote what was written (a relayed message, with the sender's name) or
# a member's own data (/mydata): kept only while Twilio may still retry, then blanked, so a
# late replay is answered with its status alone.
WEBHOOK_ANSWERS_KEEP = timedelta(minutes=15)
MESSAGING_WINDOWS_KEEP = timedelta(days=2)


@dataclass(frozen=True)
class RetentionDefaults:
    """The installation's periods (settings), for schools that have not set their own."""

    metadata: timedelta
    flags: timedelta
    audit: timedelta


@dataclass(frozen=True)
class Purged:
    messages: int = 0
    flags: int = 0
    audit_events: int = 0
    updates: int = 0
    """Processed updates, delivered outbox messages, sign-in attempts, ended sessions, answered
    webhooks, WhatsApp messaging windows and join requests that ran out."""

    @property
    def anything(self) -> bool:
        return bool(self.messages or self.flags or self.audit_events or self.updates)

    def __add__(self, other: Purged) -> Purged:
        return Purged(
            self.messages + other.messages,
            self.flags + other.flags,
            self.audit_events + other.audit_events,
            self.updates + other.updates,
        )


async def purge_expired(
    session: AsyncSession, now: datetime, defaults: RetentionDefaults
) -> Purged:
    """Delete everything past its time; what was deleted, in total."""
    total = Purged()
    for school in await session.scalars(select(School).order_by(School.id)):
        purged = await _purge_school(session, school, now, defaults)
        if purged.anything:
            await _record(session, purged, school.id)
        total += purged
    installation = Purged(
        messages=await _count(session, delete(StoredMessage).where(StoredMessage.keep_until < now)),
        flags=await _count(session, delete(Flag).where(Flag.keep_until < now)),
        audit_events=await _count(
            session,
            delete(AuditEvent).where(
                AuditEvent.school_id.is_(None), AuditEvent.created_at < now - defaults.audit
            ),
        ),
        updates=await _purge_transient(session, now),
    )
    if installation.anything:
        await _record(session, installation, None)
    return total + installation


async def _purge_school(
    session: AsyncSession, school: School, now: datetime, defaults: RetentionDefaults
) -> Purged:
    chosen = settings_of(school).retention
    metadata = _days(chosen.metadata_days, defaults.metadata)
    flags = _days(chosen.flag_days, defaults.flags)
    audit = _days(chosen.audit_days, defaults.audit)
    in_school = select(Chat.id).where(Chat.school_id == school.id).scalar_subquery()
    old_flags = await _count(
        session,
        delete(Flag).where(
            Flag.chat_id.in_(in_school), (Flag.keep_until < now) | (Flag.created_at < now - flags)
        ),
    )
    unflagged = ~exists(select(Flag.id).where(Flag.message_id == StoredMessage.id))
    old_messages = await _count(
        session,
        delete(StoredMessage).where(
            StoredMessage.chat_id.in_(in_school),
            (StoredMessage.keep_until < now)
            | (StoredMessage.created_at < now - flags)
            | ((StoredMessage.created_at < now - metadata) & unflagged),
        ),
    )
    old_events = await _count(
        session,
        delete(AuditEvent).where(
            AuditEvent.school_id == school.id, AuditEvent.created_at < now - audit
        ),
    )
    return Purged(messages=old_messages, flags=old_flags, audit_events=old_events)


async def _purge_transient(session: AsyncSession, now: datetime) -> int:
    return sum(
        [
            await _count(
                session,
                delete(InboxItem).where(
                    InboxItem.status != InboxStatus.PENDING,
                    InboxItem.received_at < now - INBOX_KEEP,
                ),
            ),
            await _count(
                session,
                delete(OutboxMessage).where(
                    OutboxMessage.status.in_([OutboxStatus.SENT, OutboxStatus.FAILED]),
                    OutboxMessage.created_at < now - OUTBOX_KEEP,
                ),
            ),
            await _count(
                session, delete(LoginAttempt).where(LoginAttempt.at < now - LOGIN_ATTEMPTS_KEEP)
            ),
            await _count(
                session,
                delete(WebhookReceipt).where(
                    WebhookReceipt.received_at < now - WEBHOOK_RECEIPTS_KEEP
                ),
            ),
            await _count(
                session,
                update(WebhookReceipt)
                .where(
                    WebhookReceipt.received_at < now - WEBHOOK_ANSWERS_KEEP,
                    WebhookReceipt.body != "",
                )
                .values(body=""),
            ),
            await _count(
                session,
                delete(MessagingWindow).where(
                    MessagingWindow.last_inbound_at < now - MESSAGING_WINDOWS_KEEP
                ),
            ),
            await _count(session, delete(JoinRequest).where(JoinRequest.expires_at <= now)),
            await _count(
                session,
                delete(UserSession).where(
                    (UserSession.expires_at < now - ENDED_SESSIONS_KEEP)
                    | (UserSession.revoked_at < now - ENDED_SESSIONS_KEEP)
                ),
            ),
        ]
    )


async def _record(session: AsyncSession, purged: Purged, school_id: int | None) -> None:
    await AuditRepository(session).record(
        "system", "retention.purged", f"school:{school_id}" if school_id else "", school_id,
        messages=purged.messages, flags=purged.flags, audit_events=purged.audit_events,
        updates=purged.updates,
    )  # fmt: skip


def _days(chosen: int | None, default: timedelta) -> timedelta:
    return timedelta(days=chosen) if chosen is not None else default


async def _count(session: AsyncSession, statement: Delete | Update) -> int:
    result: Any = await session.execute(statement)
    return int(getattr(result, "rowcount", 0) or 0)
