"""Delivering outbox rows through Twilio: the dispatcher's senders for three channels.

- "whatsapp": a direct WhatsApp message to one person (``recipient`` = ``whatsapp:+44...``), from
  TWILIO_WHATSAPP_FROM: alerts to staff who chose WhatsApp, reminders and requests to parents.
- "sms": a text message to an E.164 number from TWILIO_SMS_FROM: alerts to staff who chose SMS,
  kept to a summary and a link (two SMS at most).
- "whatsapp-group": a post in a hosted class group (``recipient`` = its Conversation SID),
  written by "Schoolgate": notices to the whole group.

WhatsApp allows a free-form message only within 24 hours of the person's last message to the
school's number (``messaging_windows``). Outside it only an approved template may be sent; the
row's audience picks which (Content SIDs, created in Twilio's Content Template Builder):

- TWILIO_TEMPLATE_ALERT, for staff (a row to a member of staff, or an alert or digest):
    {{1}} the school's name
    {{2}} the summary: the message's first line, e.g. "High concern in Year 3 Parents"
    {{3}} where to act: the flag's admin page (PUBLIC_BASE_URL/flags/<id>) when the row is about
          a flag, otherwise the rest of the message
  e.g. "Schoolgate, {{1}}: {{2}}. Details: {{3}}"
- TWILIO_TEMPLATE_REMINDER, for parents (reminders, meeting and removal requests, notices):
    {{1}} the school's name
    {{2}} the whole message
  e.g. "A message from {{1}}: {{2}}"
- TWILIO_TEMPLATE_INVITE, inviting a parent's number to a hosted group (an admin's invitation):
    {{1}} the school's name
    {{2}} the invitation, naming the group and saying to reply JOIN
  e.g. "{{1}}: {{2}}"

Every variable is one line (WhatsApp refuses line breaks and tabs in a variable) and cut to a
length that keeps the template under WhatsApp's 1,024 characters.

Buttons (Telegram's callback data) have no equivalent here: a row with buttons gets a line with
the flag's admin page instead, where the same actions are.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.channels.whatsapp.answers import MAX_BODY, pieces
from bot.channels.whatsapp.paths import STATUS_PATH
from bot.channels.whatsapp.twilio_client import (
    AUTHENTICATION_FAILED,
    CONVERSATION_CLOSED,
    NOT_FOUND,
    OUTSIDE_WHATSAPP_WINDOW,
    SCHOOLGATE_AUTHOR,
    WHATSAPP_PREFIX,
    TwilioApiError,
    WhatsAppApi,
)
from bot.services.dispatcher import PermanentFailure, RetryLater, Sender
from bot.services.windows import in_window
from bot.store.models import OutboxMessage, School, utcnow
from bot.store.repositories.outbox import OutboxRepository

WHATSAPP, SMS, WHATSAPP_GROUP = "whatsapp", "sms", "whatsapp-group"
DELETE = "delete"
"""The purpose of an outbox row that deletes a message: nothing Twilio can do on WhatsApp."""
INVITE = "invite"
"""The purpose of an invitation to a hosted group (its own template outside the window)."""

WINDOW_MARGIN = timedelta(minutes=5)
"""A message sent this close to the window's end may arrive after it: the template instead."""
MAX_SMS = 306
"""Two concatenated SMS of plain (GSM-7) text: an alert's summary and its link fit."""
MAX_NAME, MAX_SUMMARY, MAX_DETAIL, MAX_MESSAGE = 100, 200, 600, 800
"""Template variables, cut so that the template stays under WhatsApp's 1,024 characters."""
STAFF_PURPOSES = frozenset({"alert", "digest"})

# Twilio's error codes (twilio.com/docs/api/errors/<code>) a sender sees, and what they mean to
# the person reading the outbox.
REASONS = {
    21211: "not a valid phone number",
    21408: "Twilio may not send to this country (see Messaging Geographic Permissions)",
    21610: "the recipient has opted out of messages from this number (they replied STOP)",
    21614: "not a mobile number that can receive text messages",
    21606: "TWILIO_SMS_FROM is not an SMS-capable number of this Twilio account",
    21617: "the message is too long",
    63007: "TWILIO_WHATSAPP_FROM is not a WhatsApp sender of this Twilio account",
    OUTSIDE_WHATSAPP_WINDOW: "outside WhatsApp's 24-hour window: only a template may be sent",
    CONVERSATION_CLOSED: "the group's conversation is closed",
    NOT_FOUND: "not found on Twilio (the group's conversation no longer exists)",
}
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class Templates:
    """Content SIDs of the approved templates for messages outside the 24-hour window."""

    alert: str | None = None
    """TWILIO_TEMPLATE_ALERT: for staff."""
    reminder: str | None = None
    """TWILIO_TEMPLATE_REMINDER: for parents."""
    invite: str | None = None
    """TWILIO_TEMPLATE_INVITE: inviting a parent to a group by number."""


def status_url(public_base_url: str | None) -> str | None:
    """Where Twilio reports what became of a message (delivered, or failed after it was
    accepted, e.g. outside the 24-hour window); none without a public address."""
    return f"{public_base_url.rstrip('/')}{STATUS_PATH}" if public_base_url else None


def flag_url(public_base_url: str | None, flag_id: int) -> str:
    """The flag's page in the admin pages, or where to find it without a public address."""
    if public_base_url:
        return f"{public_base_url.rstrip('/')}/flags/{flag_id}"
    return f"flag {flag_id} in the Schoolgate admin pages"


def cut(text: str, limit: int) -> str:
    """``text`` in at most ``limit`` characters, ended at a word with "…" when cut."""
    if len(text) <= limit:
        return text
    head = text[: limit - 1]
    space = head.rfind(" ")
    if space > limit // 2:
        head = head[:space]
    return head.rstrip() + "…"


def one_line(text: str) -> str:
    """Line breaks, tabs and runs of spaces as single spaces: a template variable is one line."""
    return _SPACES.sub(" ", text).strip()


def _summary_and_rest(text: str) -> tuple[str, str]:
    first, _, rest = text.strip().partition("\n")
    return first.strip(), rest.strip()


def _with_link(message: OutboxMessage, public_base_url: str | None, limit: int) -> str:
    """The text in ``limit`` characters, with a line saying where to act instead of
    Telegram's buttons (the text is cut, never the line)."""
    if not message.buttons:
        return cut(message.text, limit)
    if message.flag_id is None:
        line = "\n\nTo act on it, use the Schoolgate admin pages."
    else:
        line = f"\n\nTo act on it: {flag_url(public_base_url, message.flag_id)}"
    return cut(message.text, limit - len(line)) + line


def for_staff(message: OutboxMessage) -> bool:
    return message.staff_id is not None or message.purpose in STAFF_PURPOSES


def failure(error: TwilioApiError, what: str) -> RetryLater | PermanentFailure:
    """Twilio's refusal as the dispatcher's outcome: try again later, or give up saying why."""
    if error.retryable:
        return RetryLater(None, f"{what}: {error}")
    if error.code == AUTHENTICATION_FAILED:
        # Wrong credentials fail every row alike: keep them until someone fixes the settings.
        return RetryLater(None, f"{what}: Twilio refused TWILIO_ACCOUNT_SID/TWILIO_AUTH_TOKEN")
    reason = REASONS.get(error.code or 0)
    detail = f"{reason} (Twilio error {error.code})" if reason else str(error)
    return PermanentFailure(f"{what}: {detail}")


class _TwilioSender:
    def __init__(self, api: WhatsAppApi) -> None:
        self.api = api

    @staticmethod
    def _refuse_deletion(message: OutboxMessage) -> None:
        if message.purpose == DELETE:
            raise PermanentFailure(
                "a message delivered by WhatsApp or SMS cannot be deleted from people's phones"
            )


class WhatsAppSender(_TwilioSender):
    """Channel "whatsapp": free-form within the 24-hour window, else the approved template."""

    def __init__(
        self,
        api: WhatsAppApi,
        sessions: async_sessionmaker[AsyncSession],
        from_: str,
        templates: Templates,
        public_base_url: str | None,
    ) -> None:
        super().__init__(api)
        if not from_.startswith(WHATSAPP_PREFIX):
            raise ValueError(f"TWILIO_WHATSAPP_FROM looks like whatsapp:+441632960000: {from_!r}")
        self.sessions = sessions
        self.from_ = from_
        self.templates = templates
        self.public_base_url = public_base_url
        self.status_callback = status_url(public_base_url)

    async def send(self, message: OutboxMessage) -> str | None:
        self._refuse_deletion(message)
        async with self.sessions() as session:
            open_ = await in_window(session, message.recipient, utcnow() + WINDOW_MARGIN)
            school = await session.get(School, message.school_id) if message.school_id else None
        try:
            if open_:
                text = _with_link(message, self.public_base_url, MAX_BODY)
                sent = await self.api.send_whatsapp(
                    message.recipient, self.from_, body=text, status_callback=self.status_callback
                )
            else:
                content_sid, variables = self.template(message, school.name if school else "")
                sent = await self.api.send_whatsapp(
                    message.recipient, self.from_, content_sid=content_sid,
                    content_variables=variables, status_callback=self.status_callback,
                )  # fmt: skip
        except TwilioApiError as error:
            raise failure(error, "WhatsApp") from error
        except ValueError as error:  # an address that is not a WhatsApp one
            raise PermanentFailure(f"WhatsApp: {error}") from error
        return sent.sid

    def template(self, message: OutboxMessage, school: str) -> tuple[str, Mapping[str, str]]:
        """The template for ``message`` outside the window, and its variables."""
        setting, sid, variables = template_for(
            message, school, self.templates, self.public_base_url
        )
        if sid is None:
            raise PermanentFailure(
                f"outside WhatsApp's 24-hour window and no approved template is set ({setting})"
            )
        return sid, variables


def template_for(
    message: OutboxMessage, school: str, templates: Templates, public_base_url: str | None
) -> tuple[str, str | None, dict[str, str]]:
    """Which template carries ``message`` outside the window: its setting's name, its Content
    SID (None: not set) and its variables (``schoolgate whatsapp setup`` shows them too)."""
    school = cut(one_line(school), MAX_NAME) or "Schoolgate"
    if for_staff(message):
        summary, rest = _summary_and_rest(message.text)
        detail = flag_url(public_base_url, message.flag_id) if message.flag_id else rest
        return "TWILIO_TEMPLATE_ALERT", templates.alert, {
            "1": school,
            "2": cut(one_line(summary), MAX_SUMMARY) or "a new alert",
            "3": cut(one_line(detail), MAX_DETAIL) or "see the Schoolgate admin pages",
        }  # fmt: skip
    variables = {"1": school, "2": cut(one_line(message.text), MAX_MESSAGE)}
    if message.purpose == INVITE:
        return "TWILIO_TEMPLATE_INVITE", templates.invite, variables
    return "TWILIO_TEMPLATE_REMINDER", templates.reminder, variables


class SmsSender(_TwilioSender):
    """Channel "sms": the summary and where to act, from TWILIO_SMS_FROM."""

    def __init__(self, api: WhatsAppApi, from_: str, public_base_url: str | None) -> None:
        super().__init__(api)
        self.from_ = from_
        self.public_base_url = public_base_url
        self.status_callback = status_url(public_base_url)

    def body(self, message: OutboxMessage) -> str:
        """An alert's first line and its flag's page; anything else cut to two SMS."""
        if message.flag_id is None:
            return cut(message.text.strip(), MAX_SMS)
        summary, _ = _summary_and_rest(message.text)
        link = flag_url(self.public_base_url, message.flag_id)
        return f"{cut(summary, MAX_SMS - len(link) - 1)}\n{link}"

    async def send(self, message: OutboxMessage) -> str | None:
        self._refuse_deletion(message)
        try:
            sent = await self.api.send_sms(
                message.recipient, self.from_, self.body(message),
                status_callback=self.status_callback,
            )  # fmt: skip
        except TwilioApiError as error:
            raise failure(error, "SMS") from error
        except ValueError as error:  # a WhatsApp address given as a phone number
            raise PermanentFailure(f"SMS: {error}") from error
        return sent.sid


class GroupSender(_TwilioSender):
    """Channel "whatsapp-group": a post to every member of a hosted group, by "Schoolgate"."""

    async def send(self, message: OutboxMessage) -> str | None:
        self._refuse_deletion(message)
        # A school's own notice may be longer than one message: it goes in parts, in order, so
        # members read all of it (and how to agree, at its end). Should a part fail, the row is
        # sent again from the start: a repeated part beats a notice with its end missing.
        sid = None
        for part in pieces(message.text, MAX_BODY):
            try:
                posted = await self.api.send_conversation_message(
                    message.recipient, part, author=SCHOOLGATE_AUTHOR
                )
            except TwilioApiError as error:
                raise failure(error, "WhatsApp group") from error
            sid = posted.sid
        return sid


def twilio_senders(
    api: WhatsAppApi,
    sessions: async_sessionmaker[AsyncSession],
    *,
    whatsapp_from: str | None,
    sms_from: str | None,
    templates: Templates,
    public_base_url: str | None,
) -> dict[str, Sender]:
    """The senders of the channels configured: WhatsApp and its groups with a WhatsApp sender,
    SMS with an SMS number."""
    senders: dict[str, Sender] = {}
    if whatsapp_from:
        senders[WHATSAPP] = WhatsAppSender(api, sessions, whatsapp_from, templates, public_base_url)
        senders[WHATSAPP_GROUP] = GroupSender(api)
    if sms_from:
        senders[SMS] = SmsSender(api, sms_from, public_base_url)
    return senders


@dataclass(frozen=True)
class StatusReport:
    """A status callback: what became of a message we sent."""

    message_sid: str
    status: str
    error_code: int | None
    to: str


UNDELIVERED = frozenset({"failed", "undelivered"})


async def record_status(session: AsyncSession, report: StatusReport, now: datetime) -> None:
    """A status callback: a message Twilio took but could not deliver (outside the 24-hour
    window, a number that is not on WhatsApp ...) is marked failed on its outbox row, with
    the reason, so the admin pages never say it went."""
    if report.status not in UNDELIVERED:
        return
    reason = REASONS.get(report.error_code or 0, "")
    code = f"Twilio error {report.error_code}" if report.error_code else "no reason given"
    what = f"{reason} ({code})" if reason else code
    await OutboxRepository(session).mark_undelivered(
        report.message_sid, f"{report.status} after it was sent: {what}"
    )
