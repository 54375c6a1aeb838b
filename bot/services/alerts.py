"""Alerts to SLT (and the DSL) about flags, queued in the flag's own transaction.

Each school decides how soon it hears of each rule (at once, in the daily digest, or only in the
flag queue), which rules also go to its DSL, and each member of staff on which channels.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.policy import RuleId, Severity
from bot.services.outbox import enqueue
from bot.services.school_settings import AlertTiming, SchoolSettings, settings_of
from bot.store.models import Chat, ChatMember, Flag, FlagReason, FlagSource, School, StaffMember
from bot.texts import TelegramTexts

# Flags that also go to the Designated Safeguarding Lead, unless the school chooses otherwise.
SAFEGUARDING_RULES = frozenset({RuleId.CONFIDENTIAL_INFO, RuleId.HARASSMENT_CAMPAIGN})
ALERT_DATA = "flag"
TELEGRAM, EMAIL, WHATSAPP, SMS = "telegram", "email", "whatsapp", "sms"
ALERT_CHANNELS = (TELEGRAM, EMAIL, WHATSAPP, SMS)
"""Every channel staff may take alerts on, in the order they are offered."""
UNCHOSEN = (TELEGRAM, EMAIL)
"""The channels of someone who chose none (``alert_channels`` None): WhatsApp and SMS cost the
school per message and ping a phone at any hour, so they are used only when chosen."""
TELEGRAM_ONLY = frozenset({TELEGRAM})
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


def channels_of(member: StaffMember, channels: Collection[str]) -> list[tuple[str, str]]:
    """(channel, address) pairs a member of staff can be reached on and has chosen, among the
    ``channels`` this installation sends on: Telegram once linked, e-mail once listed, WhatsApp
    and SMS to their phone number. Someone who chose nothing gets Telegram and e-mail."""
    found = []
    if TELEGRAM in channels and member.telegram_user_id is not None:
        found.append((TELEGRAM, str(member.telegram_user_id)))
    if EMAIL in channels and member.email:
        found.append((EMAIL, member.email))
    if member.phone:
        if WHATSAPP in channels:
            found.append((WHATSAPP, f"whatsapp:{member.phone}"))
        if SMS in channels:
            found.append((SMS, member.phone))
    chosen = UNCHOSEN if member.alert_channels is None else member.alert_channels
    return [(channel, address) for channel, address in found if channel in chosen]


async def audience(
    session: AsyncSession,
    school_id: int,
    rules: set[str],
    *,
    channels: Collection[str],
    dsl_only: bool = False,
) -> list[Delivery]:
    """Who hears of a flag with ``rules``, on every channel each takes alerts on among the
    ``channels`` this installation sends on: SLT, and the DSL where the school routes one of the
    rules to them (``dsl_only``: the DSL alone)."""
    routed = (await school_settings(session, school_id)).routed_to_dsl(SAFEGUARDING_RULES)
    to_dsl = dsl_only or bool(rules & {str(rule) for rule in routed})
    query = select(StaffMember).where(StaffMember.school_id == school_id)
    return [
        Delivery(member, channel, address)
        for member in await session.scalars(query.order_by(StaffMember.id))
        if (member.dsl and to_dsl) or (member.slt and not dsl_only)
        for channel, address in channels_of(member, channels)
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
            # Telegram takes at most 4,096 characters; an e-mail has room for everything (the
            # WhatsApp and SMS senders cut further, to what those take).
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


def alert_buttons(texts: TelegramTexts, flag: Flag) -> list[tuple[str, str]]:
    """Decide or act from the alert. A report's member is the reporter, not the author, so it
    has no buttons that would remind, ask or meet them."""
    labels, data = texts.alert_buttons, f"{ALERT_DATA}:{flag.id}"
    buttons = [
        (labels.acknowledge, f"{data}:{AlertAction.ACKNOWLEDGE}"),
        (labels.false_positive, f"{data}:{AlertAction.FALSE_POSITIVE}"),
    ]
    if flag.source != FlagSource.REPORT:
        buttons += [
            (labels.remind, f"{data}:{AlertAction.REMIND}"),
            (labels.remove, f"{data}:{AlertAction.REMOVE}"),
            (labels.meet, f"{data}:{AlertAction.MEET}"),
        ]
    return buttons


async def alert_now(
    session: AsyncSession,
    texts: TelegramTexts,
    alert: AlertContext,
    *,
    channels: Collection[str] = TELEGRAM_ONLY,
) -> int:
    """Queue an alert to everyone who hears of a flag at once, on each of their channels among
    the ``channels`` this installation sends on; how many were queued."""
    school_id = alert.chat.school_id
    if school_id is None:
        return 0
    settings = await school_settings(session, school_id)
    if flag_timing(settings, alert.reasons) is not AlertTiming.NOW:
        return 0
    rules = {r.rule for r in alert.reasons}
    return await notify(
        session, await audience(session, school_id, rules, channels=channels),
        key=f"alert:{alert.flag.id}", text=alert_text(texts, alert), purpose="alert",
        buttons=alert_buttons(texts, alert.flag), school_id=school_id, flag_id=alert.flag.id,
    )  # fmt: skip
