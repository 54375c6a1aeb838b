"""Alerts to SLT (and the DSL) about flags, queued in the flag's own transaction."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.policy import RuleId
from bot.services.outbox import enqueue
from bot.store.models import Chat, ChatMember, Flag, FlagReason, StaffMember
from bot.texts import TelegramTexts

# Flags that also go to the Designated Safeguarding Lead.
SAFEGUARDING_RULES = frozenset({RuleId.CONFIDENTIAL_INFO, RuleId.HARASSMENT_CAMPAIGN})
ALERT_DATA = "flag"


class AlertAction(StrEnum):
    ACKNOWLEDGE = "acknowledge"
    FALSE_POSITIVE = "false_positive"
    REMIND = "remind"
    REMOVE = "remove"
    MEET = "meet"


@dataclass(frozen=True)
class AlertContext:
    flag: Flag
    reasons: list[FlagReason]
    chat: Chat
    sender: ChatMember
    text: str


async def recipients(
    session: AsyncSession, school_id: int, rules: set[str], *, by_email: bool = False
) -> list[StaffMember]:
    """SLT, and the DSL for safeguarding matters, who can be reached: in Telegram (a linked
    account) or, with ``by_email``, by e-mail (an address in the school file)."""
    reachable = StaffMember.email if by_email else StaffMember.telegram_user_id
    query = select(StaffMember).where(StaffMember.school_id == school_id, reachable.is_not(None))
    safeguarding = bool(rules & {str(rule) for rule in SAFEGUARDING_RULES})
    return [
        member
        for member in await session.scalars(query.order_by(StaffMember.id))
        if member.slt or (safeguarding and member.dsl)
    ]


def alert_text(texts: TelegramTexts, alert: AlertContext) -> str:
    reasons = "\n".join(
        texts.alert_reason.format(rule=r.rule, clause=r.clause, evidence=r.evidence)
        for r in alert.reasons
    )
    return texts.alert.format(
        severity=alert.flag.severity.capitalize(),
        chat=alert.chat.title or alert.chat.class_name or "a chat",
        sender=alert.sender.display_name,
        message=alert.text,
        reasons=reasons,
    )


def alert_buttons(texts: TelegramTexts, flag_id: int) -> list[tuple[str, str]]:
    labels = texts.alert_buttons
    return [
        (labels.acknowledge, f"{ALERT_DATA}:{flag_id}:{AlertAction.ACKNOWLEDGE}"),
        (labels.false_positive, f"{ALERT_DATA}:{flag_id}:{AlertAction.FALSE_POSITIVE}"),
        (labels.remind, f"{ALERT_DATA}:{flag_id}:{AlertAction.REMIND}"),
        (labels.remove, f"{ALERT_DATA}:{flag_id}:{AlertAction.REMOVE}"),
        (labels.meet, f"{ALERT_DATA}:{flag_id}:{AlertAction.MEET}"),
    ]


async def alert_now(
    session: AsyncSession, texts: TelegramTexts, alert: AlertContext, *, email: bool = False
) -> int:
    """Queue an alert to each recipient of a high-severity flag (in Telegram where they have
    linked it, and by e-mail too when ``email`` is on); how many were queued."""
    if alert.flag.severity != "high" or alert.chat.school_id is None:
        return 0
    rules = {r.rule for r in alert.reasons}
    school_id = alert.chat.school_id
    deliveries = [
        ("telegram", member, str(member.telegram_user_id))
        for member in await recipients(session, school_id, rules)
    ]
    if email:
        deliveries += [
            ("email", member, str(member.email))
            for member in await recipients(session, school_id, rules, by_email=True)
        ]
    for channel, member, address in deliveries:
        await enqueue(
            session,
            key=f"alert:{channel}:{alert.flag.id}:{member.id}",
            channel=channel,
            recipient=address,
            text=alert_text(texts, alert),
            purpose="alert",
            buttons=alert_buttons(texts, alert.flag.id),
            school_id=school_id,
            flag_id=alert.flag.id,
            staff_id=member.id,
        )
    return len(deliveries)
