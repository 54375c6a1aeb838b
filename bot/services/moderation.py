"""Checking a consenting member's message and turning a breach into a flag, in one transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from bot.policy import ChatMessage, PolicyEngine, RuleId, Verdict
from bot.services.checking import verdict_of
from bot.services.school_settings import RetentionSettings
from bot.store.models import Chat, ChatMember, Flag, FlagReason, FlagStatus, StoredMessage
from bot.store.repositories.audit import AuditRepository
from bot.store.repositories.flags import FlagRepository
from bot.store.repositories.messages import MessageRepository


@dataclass(frozen=True)
class Retention:
    metadata: timedelta
    flags: timedelta

    def for_school(self, school: RetentionSettings) -> Retention:
        """These (the installation's) periods, with the school's own where it has set them."""
        return Retention(
            metadata=timedelta(days=school.metadata_days)
            if school.metadata_days
            else self.metadata,
            flags=timedelta(days=school.flag_days) if school.flag_days else self.flags,
        )


async def _with_frequent_contact(
    messages: MessageRepository,
    engine: PolicyEngine,
    member: ChatMember,
    message: ChatMessage,
    verdict: Verdict,
) -> Verdict:
    """``frequent-contact`` needs the sender's history, which only the live pipeline has."""
    window = engine.policy.frequent_contact.limit.window
    await messages.session.flush()  # this message is part of the history it is judged on
    times = await messages.staff_contact_times(member.id, message.sent_at - window)
    explanation = engine.frequent_contact(times, message.sent_at)
    return verdict.with_explanation(explanation) if explanation else verdict


@dataclass(frozen=True)
class Checked:
    verdict: Verdict
    flag: Flag | None


async def check_message(
    session: AsyncSession,
    engine: PolicyEngine,
    chat: Chat,
    member: ChatMember,
    message: ChatMessage,
    retention: Retention,
    now: datetime,
) -> Checked:
    """Run the engine on a consented message; record it, and flag it if it breaks the code.

    Only a flagged message's words are kept. An edited message is checked again: its flag is
    brought up to date, or created if the edit is what breaks the code.
    """
    verdict = await verdict_of(engine, message)
    messages = MessageRepository(session)
    stored = await messages.find(chat.id, message.id)
    if stored is None:
        stored = await messages.add(
            StoredMessage(
                chat_id=chat.id,
                member_id=member.id,
                platform_message_id=message.id,
                sent_at=message.sent_at,
                media_kinds=[m.kind for m in message.media],
                keep_until=now + retention.metadata,
            )
        )
    if message.edited:
        stored.edited_at = now
    stored.contacted_staff = RuleId.STAFF_CONTACT in verdict.rules
    if stored.contacted_staff and not message.edited:
        verdict = await _with_frequent_contact(messages, engine, member, message, verdict)
    if not verdict.flagged:
        return Checked(verdict, None)

    stored.text = message.text
    stored.keep_until = max(stored.keep_until, now + retention.flags)
    flags = FlagRepository(session)
    flag = await flags.for_message(stored.id)
    reasons = [
        FlagReason(
            rule=str(e.rule),
            severity=e.severity.label,
            clause=e.clause,
            evidence=e.evidence,
            source=e.source,
        )
        for e in verdict.explanations
    ]
    severity = verdict.severity.label if verdict.severity else "low"
    if flag is None:
        flag = await flags.add(
            Flag(message_id=stored.id, chat_id=chat.id, member_id=member.id, severity=severity,
                 status=FlagStatus.OPEN, created_at=now, keep_until=now + retention.flags,
                 reasons=reasons)
        )  # fmt: skip
    else:
        flag.reasons = reasons
        flag.severity = severity
    await AuditRepository(session).record(
        "system", "flag.raised" if not message.edited else "flag.rechecked",
        f"flag:{flag.id}", chat.school_id, rules=[str(r) for r in verdict.rules], chat=chat.id,
    )  # fmt: skip
    return Checked(verdict, flag)
