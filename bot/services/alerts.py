"""Alerts to SLT (and the DSL) about flags, queued in the flag's own transaction.

Each school decides how soon it hears of each rule (at once, in the daily digest, or only in the
flag queue), which rules also go to its DSL, and each member of staff on which channels.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
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
TELEGRAM_LIMIT = 4000


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


@dataclass(frozen=True)
class Delivery:
    """One member of staff, on one channel they take alerts on, at its address."""

    member: StaffMember
    channel: str
    address: str


def channels_of(member: StaffMember, *, email: bool) -> list[tuple[str, str]]:
    """(channel, address) pairs a member of staff can be reached on and has chosen: Telegram
    once linked, e-mail once listed and when this installation sends e-mail (``email``)."""
    found = []
    if member.telegram_user_id is not None:
        found.append((TELEGRAM, str(member.telegram_user_id)))
    if email and member.email:
        found.append((EMAIL, member.email))
    chosen = member.alert_channels
    return [(channel, address) for channel, address in found if chosen is None or channel in chosen]


async def audience(
    session: AsyncSession,
    school_id: int,
    rules: set[str],
    *,
    email: bool,
    dsl_only: bool = False,
) -> list[Delivery]:
    """Who hears of a flag with ``rules``, on every channel each takes alerts on: SLT, and the
    DSL where the school routes one of the rules to them (``dsl_only``: the DSL alone)."""
    routed = (await school_settings(session, school_id)).routed_to_dsl(SAFEGUARDING_RULES)
    to_dsl = dsl_only or bool(rules & {str(rule) for rule in routed})
    query = select(StaffMember).where(StaffMember.school_id == school_id)
    return [
        Delivery(member, channel, address)
        for member in await session.scalars(query.order_by(StaffMember.id))
        if (member.dsl and to_dsl) or (member.slt and not dsl_only)
        for channel, address in channels_of(member, email=email)
    ]


async def notify(
    session: AsyncSession,
    deliveries: Iterable[Delivery],
    *,
    key: str,
    text: str,
    purpose: str,
    school_id: int,
    buttons: Iterable[tuple[str, str]] = (),
    flag_id: int | None = None,
    now: datetime | None = None,
) -> int:
    """Queue ``text`` to each delivery (the outbox key is ``key`` made unique per person and
    channel, so queueing again changes nothing); how many were queued."""
    queued = 0
    for delivery in deliveries:
        await enqueue(
            session,
            key=f"{key}:{delivery.channel}:{delivery.member.id}",
            channel=delivery.channel,
            recipient=delivery.address,
            # Telegram takes at most 4,096 characters; an e-mail has room for everything.
            text=text if delivery.channel == EMAIL else text[:TELEGRAM_LIMIT],
            purpose=purpose,
            buttons=list(buttons),
            school_id=school_id,
            flag_id=flag_id,
            staff_id=delivery.member.id,
            now=now,
        )
        queued += 1
    return queued


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
    """Queue an alert to everyone who hears of a flag at once, on each of their channels (e-mail
    only when ``email`` is on); how many were queued."""
    school_id = alert.chat.school_id
    if school_id is None:
        return 0
    settings = await school_settings(session, school_id)
    if flag_timing(settings, alert.reasons) is not AlertTiming.NOW:
        return 0
    rules = {r.rule for r in alert.reasons}
    return await notify(
        session, await audience(session, school_id, rules, email=email),
        key=f"alert:{alert.flag.id}", text=alert_text(texts, alert), purpose="alert",
        buttons=alert_buttons(texts, alert.flag.id), school_id=school_id, flag_id=alert.flag.id,
    )  # fmt: skip
