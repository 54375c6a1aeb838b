"""What the WhatsApp webhook handlers share: their settings, texts and Twilio, and the few things
both sides do (tell someone privately, show the notice, send someone their data, take a report).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from bot.channels.whatsapp.answers import MAX_BODY, pieces
from bot.policy import ChatMessage
from bot.services import consent
from bot.services.alerts import AlertContext, alert_now
from bot.services.moderation import Retention
from bot.services.notices import notice_text, retention_of
from bot.services.outbox import enqueue
from bot.services.registration import CODE_PATTERN
from bot.services.report_line import file_report, named_group, school_for
from bot.services.schools import EngineCache
from bot.services.whatsapp_groups import JOIN_REQUEST_VALID, MAX_PARTICIPANTS, Conversations
from bot.store.models import School
from bot.store.repositories.audit import AuditRepository
from bot.store.repositories.whatsapp import PLATFORM
from bot.texts import TelegramTexts, WhatsAppTexts

CHANNEL = "whatsapp"
"""The outbox channel of a private WhatsApp message to an address (``whatsapp:+44...``)."""

_COMMAND = re.compile(r"^/(?P<name>[A-Za-z]+)(?:@\S*)?(?:\s+(?P<argument>.*))?\Z", re.DOTALL)
# At the school's number a mistyped code still reads as one (and is answered "not valid"); in a
# group only a code's exact shape does, so that "Join us tomorrow!" is relayed, not held.
_JOIN_AT_NUMBER = re.compile(
    r"^join(?:\s+(?P<code>[A-Za-z0-9]{4}[ -]?[A-Za-z0-9]{4}))?[.!]*\Z", re.IGNORECASE
)
_JOIN_IN_GROUP = re.compile(rf"^join(?:\s+(?P<code>{CODE_PATTERN}))?[.!]*\Z", re.IGNORECASE)
_AGREE = re.compile(r"^(?:i\s+)?agree[.!]*\Z", re.IGNORECASE)


@dataclass(frozen=True)
class HandlerSettings:
    proxy_address: str
    """The school's WhatsApp sender (``whatsapp:+44...``): participants are added through it."""
    retention: Retention
    observe_only: bool = False
    """Relay and record, but hold nothing back and remind nobody (a trial)."""
    alert_channels: frozenset[str] = frozenset({"telegram"})
    """The channels staff alerts may go on in this installation (``alert_now``'s)."""
    remind_every: timedelta = timedelta(hours=24)
    max_participants: int = MAX_PARTICIPANTS
    join_request_valid: timedelta = JOIN_REQUEST_VALID
    question_valid: timedelta = timedelta(hours=1)
    """How long a reporter's next message may answer "Which group was it from?"."""


@dataclass(frozen=True)
class Command:
    name: str
    argument: str


def command_of(text: str) -> Command | None:
    found = _COMMAND.match(text)
    if found is None:
        return None
    return Command(found["name"].lower(), (found["argument"] or "").strip())


def join_code_of(text: str, *, in_group: bool = False) -> str | None:
    """ "JOIN ABCD-EFGH": the code; "JOIN" alone: ""; anything else: None."""
    found = (_JOIN_IN_GROUP if in_group else _JOIN_AT_NUMBER).match(text)
    if found is None:
        return None
    return (found["code"] or "").strip()


def is_agree(text: str) -> bool:
    return _AGREE.match(text) is not None


@dataclass(frozen=True)
class Context:
    api: Conversations
    texts: WhatsAppTexts
    bot_texts: TelegramTexts
    """The installation's notice and the alert and reminder words, shared with Telegram."""
    engines: EngineCache
    settings: HandlerSettings

    def notice(self, school: School | None) -> str:
        """The school's notice as members read it, and how agreeing works on WhatsApp."""
        words = notice_text(school, self.bot_texts.notice, self.settings.retention)
        return f"{words}\n\n{self.texts.notice_suffix}"

    async def tell(
        self,
        session: AsyncSession,
        address: str,
        text: str,
        *,
        key: str,
        purpose: str,
        school_id: int | None,
        member_id: int | None = None,
        rule: str | None = None,
        now: datetime | None = None,
    ) -> None:
        """Queue a private WhatsApp message to ``address`` (in parts, if it is long)."""
        for n, piece in enumerate(pieces(text)):
            await enqueue(
                session, key=key if n == 0 else f"{key}:{n}", channel=CHANNEL, recipient=address,
                text=piece, purpose=purpose, school_id=school_id, member_id=member_id, rule=rule,
                now=now,
            )  # fmt: skip

    async def subject_access(
        self, session: AsyncSession, address: str, school: School | None
    ) -> str:
        """Everything held about ``address``, as one message; the sending is audited."""
        report = await consent.subject_access(session, PLATFORM, address)
        await AuditRepository(session).record(
            f"{PLATFORM}:user:{address}", "member.data_sent", f"{PLATFORM}:user:{address}",
            school.id if school else None,
        )  # fmt: skip
        data = json.dumps(report, ensure_ascii=False, indent=1)
        text = self.texts.mydata.format(school=school.name if school else "the school", data=data)
        if len(text) <= MAX_BODY:
            return text
        more = self.texts.mydata_more
        return text[: MAX_BODY - len(more)] + more

    async def report(
        self,
        session: AsyncSession,
        message: ChatMessage,
        *,
        school: School | None,
        now: datetime,
    ) -> str:
        """File ``message`` (from ``message.sender``, the reporter) as a report, alert as for any
        flag, and say what the reporter is told."""
        named = named_group(message.text)
        school = school or await school_for(session, message.sender.id, named.group)
        if school is None:
            return self.texts.which_school
        filed = await file_report(
            session, await self.engines.for_school(session, school), school,
            replace(message, text=named.text),
            reporter_name=message.sender.name, reported_from=named.group,
            retention=retention_of(school, self.settings.retention), now=now,
        )  # fmt: skip
        alert = AlertContext(filed.flag, filed.reasons, filed.chat, filed.reporter, named.text)
        await alert_now(session, self.bot_texts, alert, channels=self.settings.alert_channels)
        return self.texts.report_thanks if named.group else self.texts.which_group
