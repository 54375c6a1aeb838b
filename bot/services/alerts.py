"""Alerts to SLT (and the DSL) about flags, queued in the flag's own transaction.

Each school decides how soon it hears of each rule (at once, in the daily digest, or only in the
flag queue), which rules also go to its DSL, and each member of staff on which channels.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.policy import RuleId, Severity
from bot.services.outbox import enqueue
from bot.services.school_settings import AlertTiming, SchoolSettings, settings_of
from bot.store.models import Chat, ChatMember, Flag, FlagReason, School, StaffMember
from bot.texts import TelegramTexts

# Flags that also go to the Designated Safeguarding Lead, unless the school chooses otherwise.
SAFEGUARDING_RULES = frozenset({RuleId.CONFIDENTIAL_INFO, RuleId.HARASSMENT_CAMPAIGN})
ALERT_DATA = "flag"
TELEGRAM, EMAIL = "telegram", "email"


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


async def school_settings(session: AsyncSession, school_id: int) -> SchoolSettings:
    school = await session.get(School, school_id)
    return settings_of(school) if school is not None else SchoolSettings()


def flag_timing(settings: SchoolSettings, reasons: Iterable[FlagReason]) -> AlertTiming:
    """How soon SLT hear of a flag: at once if any of its rules says so, else in the digest if
    any rule says so, else only in the flag queue."""
    timings = set()
    for reason in reasons:
        try:
            rule, severity = RuleId(reason.rule), Severity.parse(reason.severity)
        except ValueError:  # a rule retired since the flag was raised
            continue
        timings.add(settings.alert_timing(rule, severity))
    return next(
        (timing for timing in (AlertTiming.NOW, AlertTiming.DIGEST) if timing in timings),
        AlertTiming.NONE,
    )


async def recipients(
    session: AsyncSession, school_id: int, rules: set[str], *, by_email: bool = False
) -> list[StaffMember]:
    """SLT, and the DSL where the school routes one of ``rules`` to them, who take alerts on
    this channel and can be reached on it: in Telegram (a linked account) or, with
    ``by_email``, by e-mail (an address in the school file)."""
    channel, reachable = (
        (EMAIL, StaffMember.email) if by_email else (TELEGRAM, StaffMember.telegram_user_id)
    )
    routed = (await school_settings(session, school_id)).routed_to_dsl(SAFEGUARDING_RULES)
    to_dsl = bool(rules & {str(rule) for rule in routed})
    query = select(StaffMember).where(StaffMember.school_id == school_id, reachable.is_not(None))
    return [
        member
        for member in await session.scalars(query.order_by(StaffMember.id))
        if (member.slt or (to_dsl and member.dsl))
        and (member.alert_channels is None or channel in member.alert_channels)
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
    """Queue an alert to each recipient of a flag the school hears of at once (in Telegram where
    they have linked it, and by e-mail too when ``email`` is on); how many were queued."""
    school_id = alert.chat.school_id
    if school_id is None:
        return 0
    settings = await school_settings(session, school_id)
    if flag_timing(settings, alert.reasons) is not AlertTiming.NOW:
        return 0
    rules = {r.rule for r in alert.reasons}
    deliveries = [
        (TELEGRAM, member, str(member.telegram_user_id))
        for member in await recipients(session, school_id, rules)
    ]
    if email:
        deliveries += [
            (EMAIL, member, str(member.email))
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
