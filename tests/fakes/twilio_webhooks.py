"""Requests Twilio makes to our app: webhook parameters shaped as Twilio sends them, signed with
the real ``RequestValidator``, and a transport that plays the TLS-terminating proxy in front of us.

    params = incoming_message(PARENT, SCHOOL_WHATSAPP, "Please look at this")
    url = f"{PUBLIC_BASE_URL}/twilio/messages"
    await client.post(url, data=params, headers=signed(url, params, AUTH_TOKEN))

Every builder returns the form parameters as ``dict[str, str]`` (Twilio posts
``application/x-www-form-urlencoded``; every value is text). What they rest on:

- Programmable Messaging incoming message (twilio.com/docs/messaging/guides/webhook-request):
  MessageSid (SM..., MM... with media), SmsMessageSid, SmsSid, AccountSid, From, To, Body,
  NumMedia, NumSegments, SmsStatus "received", ApiVersion, MediaUrl{n}/MediaContentType{n};
  WhatsApp adds ProfileName, WaId (the number's digits), MessageType, ReferralNumMedia, and
  Forwarded / FrequentlyForwarded "true" on forwarded messages. SMS geography (FromCity...) and
  Messaging Service fields are left out.
- Conversations pre-event ``onMessageAdd``: a logged real request carried exactly AccountSid,
  Attributes, Author, Body, ConversationSid, EventType, ParticipantSid, RetryCount and Source
  ("SMS"); ChatServiceSid and Media (a JSON array of {Sid, Filename, ContentType, Size}) come from
  a Twilio-written pre-hook example. There is no MessageSid and no Index before the message
  exists: a pre-event cannot be made idempotent on MessageSid.
- Post-event ``onMessageAdded`` adds MessageSid (IM...), Index and DateCreated;
  ``onParticipantAdded`` carries the MessagingBinding.* fields as logged by the same source.
  Service-level hooks carry no WebhookSid; conversation-scoped ones add WebhookSid and
  WebhookType. Source is "WHATSAPP" for WhatsApp (not seen in a logged request: assumed).
- Status callbacks: MessageSid, MessageStatus (queued, sent, delivered, read, undelivered,
  failed...), ErrorCode when it failed, with SmsSid/SmsStatus, AccountSid, From, To, ApiVersion.
"""

from __future__ import annotations

import hashlib
import json
import mimetypes
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
from twilio.request_validator import RequestValidator  # type: ignore[import-untyped]

from bot.channels.whatsapp.signature import SIGNATURE_HEADER

ACCOUNT_SID = "AC0123456789abcdef0123456789abcdef"
AUTH_TOKEN = "f0e1d2c3b4a5968778695a4b3c2d1e0f"
CHAT_SERVICE_SID = "IS0123456789abcdef0123456789abcdef"
MESSAGING_SERVICE_SID = "MG0123456789abcdef0123456789abcdef"
# Ofcom keeps 07700 900000-900999 for drama: never a real person's number.
SCHOOL_NUMBER = "+447700900999"
SCHOOL_WHATSAPP = f"whatsapp:{SCHOOL_NUMBER}"
PUBLIC_BASE_URL = "https://schoolgate.example.sch.uk"
WHATSAPP_PREFIX = "whatsapp:"
TWILIO_IP = "203.0.113.7"
"""Where the fake proxy says requests came from (a documentation address)."""


def new_sid(prefix: str) -> str:
    """A Twilio SID: two letters and 32 hex digits."""
    return prefix + uuid.uuid4().hex


def parent(n: int) -> str:
    """The WhatsApp address of test parent ``n`` (1-899)."""
    if not 1 <= n <= 899:
        raise ValueError("parents are numbered 1 to 899")
    return f"whatsapp:+447700900{n:03d}"


def timestamp(at: datetime | None = None) -> str:
    """DateCreated as Conversations webhooks write it: ``2021-09-29T15:51:18.516Z``."""
    moment = (at or datetime.now(UTC)).astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass(frozen=True)
class MediaFile:
    """A file attached to a conversation message."""

    filename: str
    content_type: str = ""
    size: int = 1024
    sid: str = ""

    def as_webhook(self) -> dict[str, object]:
        content_type = self.content_type or mimetypes.guess_type(self.filename)[0] or ""
        return {
            "Sid": self.sid or new_sid("ME"),
            "Filename": self.filename,
            "ContentType": content_type,
            "Size": self.size,
        }


# -- Programmable Messaging -----------------------------------------------------------------


def incoming_message(
    from_: str,
    to: str,
    body: str,
    media_urls: Sequence[str] = (),
    profile_name: str | None = "Pat Jones",
    *,
    media_types: Sequence[str] = (),
    message_sid: str | None = None,
    account_sid: str = ACCOUNT_SID,
    forwarded: bool = False,
    frequently_forwarded: bool = False,
) -> dict[str, str]:
    """A message to one of our numbers (WhatsApp when ``from_`` starts with ``whatsapp:``).

    ``media_types`` gives each media URL's content type (default image/jpeg).
    """
    if media_types and len(media_types) != len(media_urls):
        raise ValueError("give one media type per media URL, or none")
    sid = message_sid or new_sid("MM" if media_urls else "SM")
    params = {
        "MessageSid": sid,
        "SmsMessageSid": sid,
        "SmsSid": sid,
        "AccountSid": account_sid,
        "From": from_,
        "To": to,
        "Body": body,
        "NumMedia": str(len(media_urls)),
        "NumSegments": "1",
        "SmsStatus": "received",
        "ApiVersion": "2010-04-01",
    }
    types = list(media_types) or ["image/jpeg"] * len(media_urls)
    for n, (url, content_type) in enumerate(zip(media_urls, types, strict=True)):
        params[f"MediaUrl{n}"] = url
        params[f"MediaContentType{n}"] = content_type
    if from_.startswith(WHATSAPP_PREFIX):
        params["WaId"] = from_.removeprefix(WHATSAPP_PREFIX).lstrip("+")
        params["MessageType"] = types[0].split("/")[0] if media_urls else "text"
        params["ReferralNumMedia"] = "0"
        if profile_name is not None:
            params["ProfileName"] = profile_name
        if forwarded or frequently_forwarded:
            params["Forwarded"] = "true"
        if frequently_forwarded:
            params["FrequentlyForwarded"] = "true"
    return params


def media_url(message_sid: str, account_sid: str = ACCOUNT_SID) -> str:
    """Where Twilio serves an incoming message's media (it asks for the account's credentials)."""
    return (
        f"https://api.twilio.com/2010-04-01/Accounts/{account_sid}/Messages/{message_sid}"
        f"/Media/{new_sid('ME')}"
    )


def status_callback(
    message_sid: str,
    status: str,
    *,
    to: str,
    from_: str,
    error_code: int | None = None,
    account_sid: str = ACCOUNT_SID,
) -> dict[str, str]:
    """Twilio telling the message's StatusCallback URL that its status changed."""
    params = {
        "MessageSid": message_sid,
        "SmsSid": message_sid,
        "MessageStatus": status,
        "SmsStatus": status,
        "AccountSid": account_sid,
        "From": from_,
        "To": to,
        "ApiVersion": "2010-04-01",
    }
    if error_code is not None:
        params["ErrorCode"] = str(error_code)
    return params


# -- Conversations --------------------------------------------------------------------------


def message_add(
    conversation_sid: str,
    participant_sid: str,
    author: str,
    body: str,
    *,
    media: Sequence[MediaFile] = (),
    attributes: str = "{}",
    source: str = "WHATSAPP",
    retry_count: int = 0,
    account_sid: str = ACCOUNT_SID,
    chat_service_sid: str = CHAT_SERVICE_SID,
) -> dict[str, str]:
    """The pre-event webhook for a participant's message, before Twilio has stored it."""
    params = {
        "EventType": "onMessageAdd",
        "AccountSid": account_sid,
        "ChatServiceSid": chat_service_sid,
        "ConversationSid": conversation_sid,
        "ParticipantSid": participant_sid,
        "Author": author,
        "Body": body,
        "Attributes": attributes,
        "Source": source,
        "RetryCount": str(retry_count),
    }
    if media:
        params["Media"] = json.dumps([file.as_webhook() for file in media])
    return params


def message_added(
    conversation_sid: str,
    participant_sid: str | None,
    author: str,
    body: str,
    *,
    message_sid: str,
    index: int,
    date_created: str | None = None,
    media: Sequence[MediaFile] = (),
    attributes: str = "{}",
    source: str = "WHATSAPP",
    retry_count: int = 0,
    account_sid: str = ACCOUNT_SID,
    chat_service_sid: str = CHAT_SERVICE_SID,
    webhook_sid: str | None = None,
) -> dict[str, str]:
    """The post-event webhook once the message is stored and sent on. ``webhook_sid`` marks one
    from a conversation-scoped webhook."""
    params = message_add(
        conversation_sid,
        participant_sid or "",
        author,
        body,
        media=media,
        attributes=attributes,
        source=source,
        retry_count=retry_count,
        account_sid=account_sid,
        chat_service_sid=chat_service_sid,
    )
    if participant_sid is None:
        del params["ParticipantSid"]
    params |= {
        "EventType": "onMessageAdded",
        "MessageSid": message_sid,
        "Index": str(index),
        "DateCreated": date_created or timestamp(),
    }
    if webhook_sid is not None:
        params |= {"WebhookSid": webhook_sid, "WebhookType": "webhook"}
    return params


def participant_added(
    conversation_sid: str,
    participant_sid: str,
    address: str,
    proxy_address: str,
    *,
    attributes: str = "{}",
    source: str = "API",
    account_sid: str = ACCOUNT_SID,
    chat_service_sid: str = CHAT_SERVICE_SID,
    role_sid: str = "RL0123456789abcdef0123456789abcdef",
) -> dict[str, str]:
    """The post-event webhook after a participant joined (``onParticipantAdded``)."""
    channel = "whatsapp" if address.startswith(WHATSAPP_PREFIX) else "sms"
    return {
        "EventType": "onParticipantAdded",
        "AccountSid": account_sid,
        "ChatServiceSid": chat_service_sid,
        "ConversationSid": conversation_sid,
        "ParticipantSid": participant_sid,
        "RoleSid": role_sid,
        "Attributes": attributes,
        "DateCreated": timestamp(),
        "MessagingBinding.Type": channel,
        "MessagingBinding.Address": address,
        "MessagingBinding.ProxyAddress": proxy_address,
        "Source": source,
        "RetryCount": "0",
    }


# -- Signing --------------------------------------------------------------------------------


def signed(url: str, params: Mapping[str, str], auth_token: str = AUTH_TOKEN) -> dict[str, str]:
    """The headers Twilio sends with a form post of ``params`` to ``url``."""
    signature = RequestValidator(auth_token).compute_signature(url, dict(params))
    return {SIGNATURE_HEADER: str(signature)}


def signed_json(
    url: str, body: str | bytes, auth_token: str = AUTH_TOKEN
) -> tuple[str, dict[str, str]]:
    """A JSON post as Twilio signs it: the URL gains ``bodySHA256`` and the signature covers only
    that URL. Returns the URL to post to and the headers."""
    raw = body.encode() if isinstance(body, str) else body
    url = f"{url}{'&' if '?' in url else '?'}bodySHA256={hashlib.sha256(raw).hexdigest()}"
    signature = RequestValidator(auth_token).compute_signature(url, {})
    return url, {SIGNATURE_HEADER: str(signature), "Content-Type": "application/json"}


# -- Transport ------------------------------------------------------------------------------


class TlsTerminatingProxy(httpx.AsyncBaseTransport):
    """What stands between Twilio and the app in production: requests for the public https URL
    reach ``upstream`` (e.g. ``http://127.0.0.1:8000``) as plain http, Host rewritten, with
    X-Forwarded-Proto/-Host/-For saying what the client asked for.

    ``inner`` carries the forwarded request: ``httpx.ASGITransport(app)`` for an app in this
    process, or by default a real connection to a live server.
    """

    def __init__(self, upstream: str, inner: httpx.AsyncBaseTransport | None = None) -> None:
        self._upstream = httpx.URL(upstream)
        self._inner = inner or httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        target = request.url.copy_with(
            scheme=self._upstream.scheme, host=self._upstream.host, port=self._upstream.port
        )
        headers = httpx.Headers(request.headers)
        headers["Host"] = target.netloc.decode("ascii")
        headers["X-Forwarded-Proto"] = request.url.scheme
        headers["X-Forwarded-Host"] = request.url.netloc.decode("ascii")
        headers["X-Forwarded-For"] = TWILIO_IP
        forwarded = httpx.Request(
            request.method, target, headers=headers, content=await request.aread()
        )
        return await self._inner.handle_async_request(forwarded)

    async def aclose(self) -> None:
        await self._inner.aclose()
