"""A fake Twilio REST API on loopback, for tests that drive the real twilio client, and the
Twilio side of the webhooks it sends to our app.

    async with FakeTwilioAPI() as api:
        client = twilio_client(ACCOUNT_SID, AUTH_TOKEN, api_base_url=api.base_url)
        ...  # or WhatsAppApi(client); then assert on api.calls, api.sent_messages(to=...)
        api.webhook_transport = httpx.ASGITransport(app=our_app)
        outcome = await api.send_from_participant(conversation_sid, parent(1), "hello")

``twilio_client(..., api_base_url=api.base_url)`` sends ``https://<domain>.twilio.com/<path>``
to ``<base_url>/<domain>/<path>``: Conversations v1 under ``/conversations/v1/...``, Messaging
under ``/api/2010-04-01/Accounts/{AccountSid}/Messages.json``. Answers are the JSON the twilio
package parses; errors are Twilio's ``{"code", "message", "more_info", "status"}``.

What it imitates (Twilio's docs, twilio.com/docs/...):
- HTTP basic auth with the account SID and auth token; anything else is 401, code 20003.
- Conversations: create (unique names unique: 50353; never created closed: 50384), fetch by SID
  or unique name, update, delete; states active/inactive/closed, closed is final (50377 for any
  later change or post). A message from a participant reactivates an inactive conversation.
- Participants with a messaging binding (WhatsApp ``whatsapp:+E164`` or SMS ``+E164``): address
  and proxy on the same channel (50414) and not equal (50409); one address/proxy pair once per
  conversation (50437) and in one open conversation at a time (50416; closing or deleting a
  conversation frees its pairs); at most 50 SMS/WhatsApp participants (50418).
- Messages posted over REST are relayed to every participant; no webhook fires for a REST
  action (Twilio needs X-Twilio-Webhook-Enabled for that, which is recorded but not imitated).
- Webhooks: account-wide (/Configuration/Webhooks) and per service
  (/Services/{IS}/Configuration/Webhooks); a service's hooks replace the account's for it;
  only events named in Filters fire. Conversation-scoped webhooks (at most 5: 50361) only ever
  get post-events, as documented.
- ``send_from_participant`` plays a participant's message the way Twilio does: the signed
  ``onMessageAdd`` pre-event goes to the pre-event URL; only a 200 lets the message through (a
  JSON ``{"body": ...}`` answer replaces the body); then it is stored, relayed to every other
  participant, and ``onMessageAdded`` goes to the post-event URL(s).
- WhatsApp's 24-hour window: a user opens it by writing to a number (``deliver_incoming`` or
  ``send_from_participant``); a free-form WhatsApp message or relayed conversation message to a
  user whose window is shut fails with 63016 (the REST call still answers 201 "queued"), a
  template (ContentSid) does not. ``advance_time`` moves the clock; ``whatsapp_window_enforced``
  turns the rule off.
- Messages.create: To/From required (21604/21603), a body, media or template required (21602),
  body at most 1600 characters (21617), numbers in E.164 (21211), both on one channel (21910),
  From one of ``senders`` (WhatsApp 63007, SMS 21606), ContentVariables a JSON object only with a
  ContentSid (21656, 21654).
- ``deliver_incoming`` posts a signed incoming-message webhook to ``incoming_url``; a user who is
  a participant of an open conversation on that number cannot reach it: Twilio routes the pair
  into the conversation, so the fake refuses to pretend otherwise.

What it does not imitate: chat (Identity) participants, media upload, message edits and
deletes, timers, Messaging Services, delivery receipts, status callbacks by itself (call
``report_status``), GET-method webhooks, Twilio's retries of failed webhooks, and webhooks for
REST actions. The HTTP status Twilio gives each Conversations error is not documented; the fake
uses 409 for the uniqueness conflicts and 400 for the rest, so branch on the code. A request the
fake does not model is refused with 400 and no Twilio code. What Twilio does when the pre-event
hook times out or cannot be reached is not documented in the sources found; the fake holds the
message back, which is not a guarantee that Twilio does.
"""

from __future__ import annotations

import asyncio
import base64
import email.utils
import json
import re
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes import twilio_webhooks as tw
from tests.fakes.loopback import LoopbackServer
from tests.fakes.twilio_webhooks import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    CHAT_SERVICE_SID,
    MESSAGING_SERVICE_SID,
    SCHOOL_NUMBER,
    SCHOOL_WHATSAPP,
    WHATSAPP_PREFIX,
    MediaFile,
)

JSON = dict[str, Any]
Handler = Callable[[Mapping[str, str], "Call"], Awaitable[tuple[int, JSON | None]]]

CONVERSATIONS = "https://conversations.twilio.com/v1"
MAX_NON_CHAT_PARTICIPANTS = 50
MAX_SCOPED_WEBHOOKS = 5
MAX_BODY = 1600
WHATSAPP_WINDOW_SECONDS = 24 * 3600
WEBHOOK_TIMEOUT = 5.0
"""Conversations webhooks have a maximum timeout of 5 seconds."""
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
"""Where the fake posts webhooks over a real connection (with no ``webhook_transport``)."""

_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_CONVERSATION_SID = re.compile(r"^CH[0-9a-f]{32}$")
_STATES = ("active", "inactive", "closed")
# Every event a Conversations webhook filter may name (the configuration resources' docs).
_EVENTS = frozenset(
    {
        "onMessageAdd",
        "onMessageAdded",
        "onMessageUpdate",
        "onMessageUpdated",
        "onMessageRemove",
        "onMessageRemoved",
        "onConversationAdd",
        "onConversationAdded",
        "onConversationUpdate",
        "onConversationUpdated",
        "onConversationRemove",
        "onConversationRemoved",
        "onConversationStateUpdated",
        "onParticipantAdd",
        "onParticipantAdded",
        "onParticipantUpdate",
        "onParticipantUpdated",
        "onParticipantRemove",
        "onParticipantRemoved",
        "onDeliveryUpdated",
        "onUserAdded",
        "onUserUpdate",
        "onUserUpdated",
    }
)


class TwilioAPIError(Exception):
    """A refusal answered as Twilio does: HTTP status and ``{"code", "message", ...}``."""

    def __init__(self, status: int, code: int | None, message: str) -> None:
        super().__init__(f"{status} {code} {message}")
        self.status = status
        self.code = code
        self.message = message

    def response(self) -> JSONResponse:
        body: JSON = {"message": self.message, "status": self.status}
        if self.code is not None:
            body |= {
                "code": self.code,
                "more_info": f"https://www.twilio.com/docs/errors/{self.code}",
            }
        return JSONResponse(body, status_code=self.status)


def _bad(code: int, message: str) -> TwilioAPIError:
    return TwilioAPIError(400, code, message)


def _conflict(code: int, message: str) -> TwilioAPIError:
    return TwilioAPIError(409, code, message)


def _not_modelled(message: str) -> TwilioAPIError:
    return TwilioAPIError(400, None, f"not modelled by FakeTwilioAPI: {message}")


def _not_found(path: str) -> TwilioAPIError:
    # Twilio names the resource by its path on its own host: /Conversations/CH..., /2010-04-01/...
    for prefix in ("/conversations/v1", "/api"):
        if path.startswith(prefix + "/"):
            path = path.removeprefix(prefix)
            break
    return TwilioAPIError(404, 20404, f"The requested resource {path} was not found")


@dataclass(frozen=True)
class Call:
    """One authenticated request: its operation (e.g. "participant.create"), and the form or
    query parameters as sent, repeated names included."""

    operation: str
    method: str
    path: str
    pairs: tuple[tuple[str, str], ...]
    headers: Mapping[str, str] = field(default_factory=dict)
    at: float = field(default_factory=time.monotonic, compare=False)

    @property
    def params(self) -> dict[str, str]:
        """Each parameter's last value."""
        return dict(self.pairs)

    def values(self, name: str) -> list[str]:
        return [value for key, value in self.pairs if key == name]


@dataclass(frozen=True)
class SentMessage:
    """A Programmable Messaging message we sent, as it now stands."""

    sid: str
    to: str
    from_: str
    body: str | None
    content_sid: str | None
    content_variables: Mapping[str, str] | None
    media_urls: tuple[str, ...]
    status_callback: str | None
    status: str
    error_code: int | None
    created: datetime


@dataclass(frozen=True)
class ConversationMessage:
    sid: str
    conversation_sid: str
    index: int
    author: str
    body: str | None
    participant_sid: str | None
    attributes: str
    media: tuple[MediaFile, ...]
    content_sid: str | None
    created: datetime


@dataclass(frozen=True)
class Delivery:
    """A conversation message relayed to one participant's phone, or failing to be."""

    conversation_sid: str
    message_sid: str
    address: str
    proxy_address: str
    author: str
    body: str | None
    error_code: int | None = None

    @property
    def delivered(self) -> bool:
        return self.error_code is None


@dataclass(frozen=True)
class WebhookCall:
    """A webhook request the fake made to our app, and how it was answered (``status`` None:
    no answer, see ``error``)."""

    url: str
    params: Mapping[str, str]
    status: int | None
    body: str
    error: str | None = None

    @property
    def event_type(self) -> str | None:
        return self.params.get("EventType")


@dataclass(frozen=True)
class ConversationDelivery:
    """What became of a participant's message: let through (``message`` as stored and relayed)
    or held back by the pre-event answer."""

    accepted: bool
    message: ConversationMessage | None
    pre_event: WebhookCall | None
    post_events: tuple[WebhookCall, ...]


@dataclass(frozen=True)
class ParticipantView:
    sid: str
    conversation_sid: str
    address: str | None
    proxy_address: str | None
    attributes: str


@dataclass(frozen=True)
class ConversationView:
    sid: str
    friendly_name: str | None
    unique_name: str | None
    state: str
    attributes: str


@dataclass(frozen=True)
class HookConfig:
    """Webhook targets as configured account-wide or for a service."""

    pre_url: str | None = None
    post_url: str | None = None
    filters: tuple[str, ...] = ()
    method: str = "POST"

    @property
    def configured(self) -> bool:
        return bool(self.pre_url or self.post_url)


@dataclass
class _Participant:
    sid: str
    conversation_sid: str
    address: str
    proxy_address: str
    channel: str
    attributes: str
    created: datetime

    def view(self) -> ParticipantView:
        return ParticipantView(
            self.sid, self.conversation_sid, self.address, self.proxy_address, self.attributes
        )


@dataclass
class _ScopedWebhook:
    sid: str
    url: str
    method: str
    filters: tuple[str, ...]
    created: datetime


@dataclass
class _Conversation:
    sid: str
    friendly_name: str | None
    unique_name: str | None
    attributes: str
    state: str
    created: datetime
    updated: datetime
    participants: dict[str, _Participant] = field(default_factory=dict)
    messages: list[ConversationMessage] = field(default_factory=list)
    webhooks: dict[str, _ScopedWebhook] = field(default_factory=dict)

    def view(self) -> ConversationView:
        return ConversationView(
            self.sid, self.friendly_name, self.unique_name, self.state, self.attributes
        )


class FakeTwilioAPI:
    """One Twilio account's REST API, served by uvicorn on 127.0.0.1 while used as a context
    manager, and the Twilio end of the webhooks to our app.

    ``webhook_transport`` carries the webhooks: ``httpx.ASGITransport(app)`` to call an app in
    this process, ``TlsTerminatingProxy(...)`` to go through a proxy, None for real connections,
    which it makes only to loopback (127.0.0.1 or localhost): any other URL is refused.
    """

    def __init__(
        self,
        account_sid: str = ACCOUNT_SID,
        auth_token: str = AUTH_TOKEN,
        *,
        senders: Sequence[str] = (SCHOOL_WHATSAPP, SCHOOL_NUMBER),
        incoming_url: str | None = None,
        webhook_transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.chat_service_sid = CHAT_SERVICE_SID
        self.senders = set(senders)
        """Numbers and WhatsApp senders Messages.create may send from."""
        self.incoming_url = incoming_url
        """Where the numbers' incoming messages go (set in Twilio's console, not by the API)."""
        self.webhook_transport = webhook_transport
        self.port = 0
        self._call_arrived = asyncio.Event()
        self._loopback: LoopbackServer | None = None
        self.reset()

    def reset(self) -> None:
        """Forget every call, resource and setting made through the API; put the clock and the
        WhatsApp window rule back.

        The port, credentials, senders, incoming URL and webhook transport stay: they are the
        test's set-up, not the account's state.
        """
        self.whatsapp_window_enforced = True
        self._calls: list[Call] = []
        self._failures: dict[str, list[TwilioAPIError]] = defaultdict(list)
        self._conversations: dict[str, _Conversation] = {}
        self._account_hooks = HookConfig()
        self._service_hooks = HookConfig()
        self._sent: dict[str, SentMessage] = {}
        self._deliveries: list[Delivery] = []
        self._webhook_calls: list[WebhookCall] = []
        self._last_inbound: dict[tuple[str, str], float] = {}
        self._clock_offset = 0.0

    # -- Lifecycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> FakeTwilioAPI:
        self._loopback = LoopbackServer(self._app())
        self.port = await self._loopback.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._loopback is not None:
            await self._loopback.stop()

    @property
    def base_url(self) -> str:
        """For ``twilio_client(..., api_base_url=...)``."""
        return f"http://127.0.0.1:{self.port}"

    # -- What the app did --------------------------------------------------------------------

    @property
    def calls(self) -> list[Call]:
        """Every authenticated request, in order, failed ones included."""
        return list(self._calls)

    def calls_to(self, operation: str) -> list[Call]:
        return [call for call in self._calls if call.operation == operation]

    async def wait_for_call(self, operation: str, count: int = 1, timeout: float = 5) -> list[Call]:
        """Wait until ``count`` calls to ``operation`` have arrived; return all calls to it."""
        try:
            async with asyncio.timeout(timeout):
                while len(self.calls_to(operation)) < count:
                    await self._call_arrived.wait()
        except TimeoutError:
            seen = [call.operation for call in self._calls]
            raise AssertionError(
                f"expected {count} call(s) to {operation} within {timeout}s, "
                f"got {len(self.calls_to(operation))}; calls seen: {seen}"
            ) from None
        return self.calls_to(operation)

    def sent_messages(self, to: str | None = None) -> list[SentMessage]:
        """Programmable Messaging messages sent (to ``to``), oldest first."""
        return [m for m in self._sent.values() if to is None or m.to == to]

    def conversation(self, sid_or_unique_name: str) -> ConversationView:
        return self._find_conversation(sid_or_unique_name).view()

    def conversations(self) -> list[ConversationView]:
        return [conversation.view() for conversation in self._conversations.values()]

    def participants(self, conversation_sid: str) -> list[ParticipantView]:
        conversation = self._find_conversation(conversation_sid)
        return [participant.view() for participant in conversation.participants.values()]

    def messages(self, conversation_sid: str) -> list[ConversationMessage]:
        return list(self._find_conversation(conversation_sid).messages)

    def delivered_to(self, address: str) -> list[Delivery]:
        """Conversation messages that reached this participant's phone, oldest first."""
        return [d for d in self._deliveries if d.address == address and d.delivered]

    def undelivered_to(self, address: str) -> list[Delivery]:
        """Conversation messages relayed to this participant that failed (``error_code``)."""
        return [d for d in self._deliveries if d.address == address and not d.delivered]

    def webhook_calls(self, event_type: str | None = None) -> list[WebhookCall]:
        """Webhook requests made to our app (of one EventType), in order."""
        return [c for c in self._webhook_calls if event_type is None or c.event_type == event_type]

    def account_webhooks(self) -> HookConfig:
        return self._account_hooks

    def service_webhooks(self) -> HookConfig:
        return self._service_hooks

    # -- What the test arranges --------------------------------------------------------------

    def fail_next(
        self,
        operation: str,
        status: int = 503,
        code: int | None = None,
        message: str | None = None,
        *,
        times: int = 1,
    ) -> None:
        """Make the next ``times`` calls to ``operation`` fail with Twilio's error body.

        The code defaults to Twilio's for the status (20000 + status: 20429, 20500, 20503...).
        """
        error = TwilioAPIError(
            status, 20000 + status if code is None else code, message or HTTPStatus(status).phrase
        )
        self._failures[operation].extend([error] * times)

    def advance_time(self, seconds: float) -> None:
        """Move the fake's clock on (WhatsApp's 24-hour windows close)."""
        self._clock_offset += seconds

    def open_whatsapp_window(self, user: str, business: str = SCHOOL_WHATSAPP) -> None:
        """As if ``user`` had just written to ``business``."""
        self._last_inbound[(user, business)] = self._now()

    async def send_from_participant(
        self,
        conversation_sid: str,
        address: str,
        body: str,
        *,
        media: Sequence[MediaFile] = (),
    ) -> ConversationDelivery:
        """A participant's phone sends ``body`` into the conversation: the pre-event first, and
        only if our app answers 200, the message stored (with the body it asked for, if any),
        relayed to every other participant, and the post-events sent."""
        conversation = self._find_conversation(conversation_sid)
        if conversation.state == "closed":
            raise ValueError(f"{conversation.sid} is closed: Twilio no longer routes into it")
        participant = next(
            (p for p in conversation.participants.values() if p.address == address), None
        )
        if participant is None:
            raise ValueError(f"{address} is not a participant of {conversation.sid}")
        self._last_inbound[(address, participant.proxy_address)] = self._now()
        conversation.state = "active"
        hooks = self._hooks()
        source = participant.channel.upper()

        pre_event = None
        if hooks.pre_url and "onMessageAdd" in hooks.filters:
            params = tw.message_add(
                conversation.sid,
                participant.sid,
                address,
                body,
                media=media,
                source=source,
                account_sid=self.account_sid,
                chat_service_sid=self.chat_service_sid,
            )
            pre_event = await self._post_webhook(hooks.pre_url, params, hooks.method)
            if pre_event.status != 200:
                return ConversationDelivery(False, None, pre_event, ())
            modified = _modified_body(pre_event)
            body = body if modified is None else modified

        message = self._add_message(
            conversation,
            author=address,
            body=body,
            participant_sid=participant.sid,
            media=tuple(media),
        )
        post_events = []
        targets = [(hooks.post_url, hooks.filters, hooks.method, None)] + [
            (hook.url, hook.filters, hook.method, hook.sid)
            for hook in conversation.webhooks.values()
        ]
        for url, filters, method, webhook_sid in targets:
            if url and "onMessageAdded" in filters:
                params = tw.message_added(
                    conversation.sid,
                    participant.sid,
                    address,
                    body,
                    message_sid=message.sid,
                    index=message.index,
                    date_created=tw.timestamp(message.created),
                    media=media,
                    source=source,
                    account_sid=self.account_sid,
                    chat_service_sid=self.chat_service_sid,
                    webhook_sid=webhook_sid,
                )
                post_events.append(await self._post_webhook(url, params, method))
        return ConversationDelivery(True, message, pre_event, tuple(post_events))

    async def deliver_incoming(
        self,
        from_: str,
        to: str,
        body: str,
        *,
        media_urls: Sequence[str] = (),
        media_types: Sequence[str] = (),
        profile_name: str | None = "Pat Jones",
        forwarded: bool = False,
        frequently_forwarded: bool = False,
    ) -> httpx.Response:
        """Someone writes to one of our numbers: the signed incoming-message webhook to
        ``incoming_url``. Returns our app's answer (TwiML or empty)."""
        if self.incoming_url is None:
            raise RuntimeError("set incoming_url: where Twilio posts this number's messages")
        for conversation in self._open_conversations():
            for participant in conversation.participants.values():
                if (participant.address, participant.proxy_address) == (from_, to):
                    raise ValueError(
                        f"{from_} writing to {to} reaches conversation {conversation.sid}, not "
                        "the incoming-message webhook: use send_from_participant"
                    )
        if from_.startswith(WHATSAPP_PREFIX):
            self._last_inbound[(from_, to)] = self._now()
        params = tw.incoming_message(
            from_,
            to,
            body,
            media_urls,
            profile_name,
            media_types=media_types,
            account_sid=self.account_sid,
            forwarded=forwarded,
            frequently_forwarded=frequently_forwarded,
        )
        headers = tw.signed(self.incoming_url, params, self.auth_token)
        response = await self._post(self.incoming_url, params, headers)
        self._webhook_calls.append(
            WebhookCall(self.incoming_url, params, response.status_code, response.text)
        )
        return response

    async def report_status(
        self, message_sid: str, status: str | None = None, *, error_code: int | None = None
    ) -> WebhookCall:
        """Post the message's status (its current one, or ``status``) to its StatusCallback."""
        sent = self._sent[message_sid]
        callback = sent.status_callback
        if callback is None:
            raise ValueError(f"{message_sid} was sent without a status callback")
        if status is not None:
            sent = self._sent[message_sid] = replace(sent, status=status, error_code=error_code)
        params = tw.status_callback(
            sent.sid,
            sent.status,
            to=sent.to,
            from_=sent.from_,
            error_code=sent.error_code,
            account_sid=self.account_sid,
        )
        return await self._post_webhook(callback, params, "POST")

    # -- HTTP --------------------------------------------------------------------------------

    def _app(self) -> Starlette:
        conversation = "/conversations/v1/Conversations/{conversation}"
        routes: list[tuple[str, dict[str, tuple[str, Handler]]]] = [
            (
                "/conversations/v1/Configuration",
                {"GET": ("configuration.fetch", self._configuration)},
            ),
            (
                "/conversations/v1/Configuration/Webhooks",
                {
                    "GET": ("account_webhooks.fetch", self._fetch_account_hooks),
                    "POST": ("account_webhooks.update", self._update_account_hooks),
                },
            ),
            (
                "/conversations/v1/Services/{service}/Configuration/Webhooks",
                {
                    "GET": ("service_webhooks.fetch", self._fetch_service_hooks),
                    "POST": ("service_webhooks.update", self._update_service_hooks),
                },
            ),
            (
                "/conversations/v1/Conversations",
                {
                    "GET": ("conversation.list", self._list_conversations),
                    "POST": ("conversation.create", self._create_conversation),
                },
            ),
            (
                conversation,
                {
                    "GET": ("conversation.fetch", self._fetch_conversation),
                    "POST": ("conversation.update", self._update_conversation),
                    "DELETE": ("conversation.delete", self._delete_conversation),
                },
            ),
            (
                conversation + "/Participants",
                {
                    "GET": ("participant.list", self._list_participants),
                    "POST": ("participant.create", self._create_participant),
                },
            ),
            (
                conversation + "/Participants/{participant}",
                {
                    "GET": ("participant.fetch", self._fetch_participant),
                    "DELETE": ("participant.delete", self._delete_participant),
                },
            ),
            (
                conversation + "/Messages",
                {
                    "GET": ("conversation_message.list", self._list_messages),
                    "POST": ("conversation_message.create", self._create_conversation_message),
                },
            ),
            (
                conversation + "/Webhooks",
                {
                    "GET": ("conversation_webhook.list", self._list_scoped_hooks),
                    "POST": ("conversation_webhook.create", self._create_scoped_hook),
                },
            ),
            (
                "/api/2010-04-01/Accounts/{account}/Messages.json",
                {"POST": ("message.create", self._create_message)},
            ),
            (
                "/api/2010-04-01/Accounts/{account}/Messages/{message}.json",
                {"GET": ("message.fetch", self._fetch_message)},
            ),
        ]
        return Starlette(
            routes=[
                Route(path, self._endpoint(operations), methods=list(operations))
                for path, operations in routes
            ]
            + [Route("/{path:path}", _unknown_path, methods=["GET", "POST", "DELETE"])]
        )

    def _endpoint(
        self, operations: dict[str, tuple[str, Handler]]
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            if not self._authorised(request):
                return TwilioAPIError(401, 20003, "Authenticate").response()
            account = request.path_params.get("account")
            if account is not None and account != self.account_sid:
                return _not_found(request.url.path).response()
            operation, handler = operations[request.method]
            body = (await request.body()).decode()
            pairs = tuple(parse_qsl(request.url.query, keep_blank_values=True))
            pairs += tuple(parse_qsl(body, keep_blank_values=True))
            headers = {
                name: request.headers[name]
                for name in ("x-twilio-webhook-enabled", "content-type")
                if name in request.headers
            }
            call = Call(operation, request.method, request.url.path, pairs, headers)
            self._calls.append(call)
            self._call_arrived.set()
            self._call_arrived = asyncio.Event()
            try:
                if self._failures[operation]:
                    raise self._failures[operation].pop(0)
                status, payload = await handler(request.path_params, call)
            except TwilioAPIError as error:
                return error.response()
            if payload is None:
                return Response(status_code=status)
            return JSONResponse(payload, status_code=status)

        return endpoint

    def _authorised(self, request: Request) -> bool:
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(encoded).decode().partition(":")
        except ValueError:
            return False
        return (user, password) == (self.account_sid, self.auth_token)

    # -- Configuration -----------------------------------------------------------------------

    async def _configuration(self, path: Mapping[str, str], call: Call) -> tuple[int, JSON]:
        return 200, {
            "account_sid": self.account_sid,
            "default_chat_service_sid": self.chat_service_sid,
            "default_messaging_service_sid": MESSAGING_SERVICE_SID,
            "default_inactive_timer": None,
            "default_closed_timer": None,
            "url": f"{CONVERSATIONS}/Configuration",
            "links": {
                "service": f"{CONVERSATIONS}/Services/{self.chat_service_sid}",
                "webhooks": f"{CONVERSATIONS}/Configuration/Webhooks",
            },
        }

    async def _fetch_account_hooks(self, path: Mapping[str, str], call: Call) -> tuple[int, JSON]:
        return 200, self._account_hooks_json()

    async def _update_account_hooks(self, path: Mapping[str, str], call: Call) -> tuple[int, JSON]:
        target = call.params.get("Target", "webhook")
        if target != "webhook":
            raise _not_modelled(f"webhook target {target!r}")
        self._account_hooks = _updated_hooks(self._account_hooks, call)
        return 200, self._account_hooks_json()

    async def _fetch_service_hooks(self, path: Mapping[str, str], call: Call) -> tuple[int, JSON]:
        self._check_service(path, call)
        return 200, self._service_hooks_json()

    async def _update_service_hooks(self, path: Mapping[str, str], call: Call) -> tuple[int, JSON]:
        self._check_service(path, call)
        self._service_hooks = _updated_hooks(self._service_hooks, call)
        return 200, self._service_hooks_json()

    def _check_service(self, path: Mapping[str, str], call: Call) -> None:
        if path["service"] != self.chat_service_sid:
            raise _not_found(call.path)

    def _account_hooks_json(self) -> JSON:
        hooks = self._account_hooks
        return {
            "account_sid": self.account_sid,
            "method": hooks.method,
            "filters": list(hooks.filters),
            "pre_webhook_url": hooks.pre_url,
            "post_webhook_url": hooks.post_url,
            "target": "webhook",
            "url": f"{CONVERSATIONS}/Configuration/Webhooks",
        }

    def _service_hooks_json(self) -> JSON:
        hooks = self._service_hooks
        return {
            "account_sid": self.account_sid,
            "chat_service_sid": self.chat_service_sid,
            "pre_webhook_url": hooks.pre_url,
            "post_webhook_url": hooks.post_url,
            "filters": list(hooks.filters),
            "method": hooks.method,
            "url": f"{CONVERSATIONS}/Services/{self.chat_service_sid}/Configuration/Webhooks",
        }

    # -- Conversations -----------------------------------------------------------------------

    async def _list_conversations(self, path: Mapping[str, str], call: Call) -> tuple[int, JSON]:
        records = [self._conversation_json(c) for c in self._conversations.values()]
        return 200, _page(call, records, "conversations", f"{CONVERSATIONS}/Conversations")

    async def _create_conversation(self, path: Mapping[str, str], call: Call) -> tuple[int, JSON]:
        params = call.params
        state = params.get("State", "active")
        if state == "closed":
            raise _bad(50384, "Initial state can't be 'closed'")
        if state not in _STATES:
            raise _not_modelled(f"state {state!r}")
        unique_name = params.get("UniqueName") or None
        self._check_unique_name(unique_name)
        now = self._datetime()
        conversation = _Conversation(
            sid=tw.new_sid("CH"),
            friendly_name=params.get("FriendlyName"),
            unique_name=unique_name,
            attributes=_attributes(params.get("Attributes")),
            state=state,
            created=now,
            updated=now,
        )
        self._conversations[conversation.sid] = conversation
        return 201, self._conversation_json(conversation)

    async def _fetch_conversation(self, path: Mapping[str, str], call: Call) -> tuple[int, JSON]:
        return 200, self._conversation_json(self._conversation_at(path, call))

    async def _update_conversation(self, path: Mapping[str, str], call: Call) -> tuple[int, JSON]:
        conversation = self._open_conversation_at(path, call)
        params = call.params
        state = params.get("State", conversation.state)
        if state not in _STATES:
            raise _not_modelled(f"state {state!r}")
        if "UniqueName" in params and params["UniqueName"] != conversation.unique_name:
            self._check_unique_name(params["UniqueName"] or None)
            conversation.unique_name = params["UniqueName"] or None
        if "FriendlyName" in params:
            conversation.friendly_name = params["FriendlyName"]
        if "Attributes" in params:
            conversation.attributes = _attributes(params["Attributes"])
        conversation.state = state
        conversation.updated = self._datetime()
        return 200, self._conversation_json(conversation)

    async def _delete_conversation(self, path: Mapping[str, str], call: Call) -> tuple[int, None]:
        del self._conversations[self._conversation_at(path, call).sid]
        return 204, None

    def _check_unique_name(self, unique_name: str | None) -> None:
        if unique_name is None:
            return
        if _CONVERSATION_SID.match(unique_name):
            raise _bad(50390, "Unique name should not match conversation sid pattern")
        if any(c.unique_name == unique_name for c in self._conversations.values()):
            raise _conflict(50353, "Conversation with provided unique name already exists")

    def _conversation_json(self, conversation: _Conversation) -> JSON:
        url = f"{CONVERSATIONS}/Conversations/{conversation.sid}"
        return {
            "account_sid": self.account_sid,
            "chat_service_sid": self.chat_service_sid,
            "messaging_service_sid": MESSAGING_SERVICE_SID,
            "sid": conversation.sid,
            "friendly_name": conversation.friendly_name,
            "unique_name": conversation.unique_name,
            "attributes": conversation.attributes,
            "state": conversation.state,
            "date_created": _iso(conversation.created),
            "date_updated": _iso(conversation.updated),
            "timers": {},
            "url": url,
            "links": {
                "participants": f"{url}/Participants",
                "messages": f"{url}/Messages",
                "webhooks": f"{url}/Webhooks",
            },
            "bindings": None,
        }

    # -- Participants ------------------------------------------------------------------------

    async def _list_participants(self, path: Mapping[str, str], call: Call) -> tuple[int, JSON]:
        conversation = self._conversation_at(path, call)
        records = [self._participant_json(p) for p in conversation.participants.values()]
        url = f"{CONVERSATIONS}/Conversations/{conversation.sid}/Participants"
        return 200, _page(call, records, "participants", url)

    async def _create_participant(self, path: Mapping[str, str], call: Call) -> tuple[int, JSON]:
        conversation = self._open_conversation_at(path, call)
        params = call.params
        if "Identity" in params:
            raise _not_modelled("chat (Identity) participants")
        address = params.get("MessagingBinding.Address", "")
        proxy = params.get("MessagingBinding.ProxyAddress", "")
        channel, proxy_channel = _channel(address), _channel(proxy)
        if channel is None or proxy_channel is None:
            raise _not_modelled(f"binding {address!r} through {proxy!r}")
        if channel != proxy_channel:
            raise _bad(50414, "Participant address type does not match proxy address type")
        if address == proxy:
            raise _bad(50409, "Participant address equals proxy address")
        if any(
            (p.address, p.proxy_address) == (address, proxy)
            for p in conversation.participants.values()
        ):
            raise _conflict(50437, "Group Participant already exists")
        for other in self._open_conversations():
            if any(
                (p.address, p.proxy_address) == (address, proxy)
                for p in other.participants.values()
            ):
                raise _conflict(50416, "Participant and proxy address pair is already in use")
        if len(conversation.participants) >= MAX_NON_CHAT_PARTICIPANTS:
            raise _bad(50418, "Non-Chat participants limit exceeded")
        participant = _Participant(
            sid=tw.new_sid("MB"),
            conversation_sid=conversation.sid,
            address=address,
            proxy_address=proxy,
            channel=channel,
            attributes=_attributes(params.get("Attributes")),
            created=self._datetime(),
        )
        conversation.participants[participant.sid] = participant
        return 201, self._participant_json(participant)

    async def _fetch_participant(self, path: Mapping[str, str], call: Call) -> tuple[int, JSON]:
        return 200, self._participant_json(self._participant_at(path, call))

    async def _delete_participant(self, path: Mapping[str, str], call: Call) -> tuple[int, None]:
        participant = self._participant_at(path, call)
        conversation = self._open_conversation_at(path, call)
        del conversation.participants[participant.sid]
        return 204, None

    def _participant_at(self, path: Mapping[str, str], call: Call) -> _Participant:
        conversation = self._conversation_at(path, call)
        participant = conversation.participants.get(path["participant"])
        if participant is None:
            raise _not_found(call.path)
        return participant

    def _participant_json(self, participant: _Participant) -> JSON:
        conversation_url = f"{CONVERSATIONS}/Conversations/{participant.conversation_sid}"
        created = _iso(participant.created)
        return {
            "account_sid": self.account_sid,
            "conversation_sid": participant.conversation_sid,
            "sid": participant.sid,
            "identity": None,
            "attributes": participant.attributes,
            "messaging_binding": {
                "type": participant.channel,
                "address": participant.address,
                "proxy_address": participant.proxy_address,
            },
            "role_sid": "RL0123456789abcdef0123456789abcdef",
            "date_created": created,
            "date_updated": created,
            "url": f"{conversation_url}/Participants/{participant.sid}",
            "last_read_message_index": None,
            "last_read_timestamp": None,
        }

    # -- Conversation messages and webhooks --------------------------------------------------

    async def _list_messages(self, path: Mapping[str, str], call: Call) -> tuple[int, JSON]:
        conversation = self._conversation_at(path, call)
        records = [self._conversation_message_json(m) for m in conversation.messages]
        url = f"{CONVERSATIONS}/Conversations/{conversation.sid}/Messages"
        return 200, _page(call, records, "messages", url)

    async def _create_conversation_message(
        self, path: Mapping[str, str], call: Call
    ) -> tuple[int, JSON]:
        conversation = self._open_conversation_at(path, call)
        params = call.params
        if "MediaSid" in params:
            raise _not_modelled("media")
        if not params.get("Body") and not params.get("ContentSid"):
            raise _not_modelled("a message with neither Body nor ContentSid")
        message = self._add_message(
            conversation,
            author=params.get("Author", "system"),
            body=params.get("Body"),
            participant_sid=None,
            attributes=_attributes(params.get("Attributes")),
            content_sid=params.get("ContentSid"),
        )
        return 201, self._conversation_message_json(message)

    def _add_message(
        self,
        conversation: _Conversation,
        *,
        author: str,
        body: str | None,
        participant_sid: str | None,
        attributes: str = "{}",
        media: tuple[MediaFile, ...] = (),
        content_sid: str | None = None,
    ) -> ConversationMessage:
        message = ConversationMessage(
            sid=tw.new_sid("IM"),
            conversation_sid=conversation.sid,
            index=len(conversation.messages),
            author=author,
            body=body,
            participant_sid=participant_sid,
            attributes=attributes,
            media=media,
            content_sid=content_sid,
            created=self._datetime(),
        )
        conversation.messages.append(message)
        for participant in conversation.participants.values():
            if participant.sid == participant_sid:
                continue
            shut = (
                participant.channel == "whatsapp"
                and content_sid is None
                and not self._window_open(participant.address, participant.proxy_address)
            )
            self._deliveries.append(
                Delivery(
                    conversation.sid,
                    message.sid,
                    participant.address,
                    participant.proxy_address,
                    author,
                    body,
                    63016 if shut else None,
                )
            )
        return message

    def _conversation_message_json(self, message: ConversationMessage) -> JSON:
        url = f"{CONVERSATIONS}/Conversations/{message.conversation_sid}/Messages/{message.sid}"
        media = [file.as_webhook() for file in message.media] or None
        return {
            "account_sid": self.account_sid,
            "conversation_sid": message.conversation_sid,
            "sid": message.sid,
            "index": message.index,
            "author": message.author,
            "body": message.body,
            "media": media,
            "attributes": message.attributes,
            "participant_sid": message.participant_sid,
            "date_created": _iso(message.created),
            "date_updated": None,
            "url": url,
            "delivery": None,
            "links": {
                "delivery_receipts": f"{url}/Receipts",
                "channel_metadata": f"{url}/ChannelMetadata",
            },
            "content_sid": message.content_sid,
        }

    async def _list_scoped_hooks(self, path: Mapping[str, str], call: Call) -> tuple[int, JSON]:
        conversation = self._conversation_at(path, call)
        records = [self._scoped_hook_json(conversation, h) for h in conversation.webhooks.values()]
        url = f"{CONVERSATIONS}/Conversations/{conversation.sid}/Webhooks"
        return 200, _page(call, records, "webhooks", url)

    async def _create_scoped_hook(self, path: Mapping[str, str], call: Call) -> tuple[int, JSON]:
        conversation = self._open_conversation_at(path, call)
        params = call.params
        if params.get("Target") != "webhook":
            raise _not_modelled(f"webhook target {params.get('Target')!r}")
        if len(conversation.webhooks) >= MAX_SCOPED_WEBHOOKS:
            raise _bad(50361, "Too many conversation webhooks")
        filters = tuple(call.values("Configuration.Filters"))
        _check_filters(filters)
        hook = _ScopedWebhook(
            sid=tw.new_sid("WH"),
            url=params.get("Configuration.Url", ""),
            method=params.get("Configuration.Method", "POST").upper(),
            filters=filters,
            created=self._datetime(),
        )
        conversation.webhooks[hook.sid] = hook
        return 201, self._scoped_hook_json(conversation, hook)

    def _scoped_hook_json(self, conversation: _Conversation, hook: _ScopedWebhook) -> JSON:
        return {
            "account_sid": self.account_sid,
            "conversation_sid": conversation.sid,
            "sid": hook.sid,
            "target": "webhook",
            "url": f"{CONVERSATIONS}/Conversations/{conversation.sid}/Webhooks/{hook.sid}",
            "configuration": {
                "url": hook.url,
                "method": hook.method,
                "filters": list(hook.filters),
            },
            "date_created": _iso(hook.created),
            "date_updated": _iso(hook.created),
        }

    # -- Programmable Messaging --------------------------------------------------------------

    async def _create_message(self, path: Mapping[str, str], call: Call) -> tuple[int, JSON]:
        params = call.params
        to, from_ = params.get("To", ""), params.get("From", "")
        body = params.get("Body")
        content_sid = params.get("ContentSid")
        media_urls = tuple(call.values("MediaUrl"))
        if not to:
            raise _bad(21604, "A 'To' phone number is required.")
        if not from_:
            if "MessagingServiceSid" in params:
                raise _not_modelled("Messaging Services")
            raise _bad(21603, "A 'From' phone number is required.")
        if not body and not media_urls and not content_sid:
            raise _bad(21602, "Message body is required.")
        if body is not None and len(body) > MAX_BODY:
            raise _bad(21617, "The concatenated message body exceeds the 1600 character limit.")
        if _channel(to) is None:
            raise _bad(21211, f"Invalid 'To' Phone Number: {to}")
        if _channel(to) != _channel(from_):
            raise _bad(
                21910, "Invalid 'From' and 'To' pair. 'From' and 'To' should be of the same channel"
            )
        if from_ not in self.senders:
            if from_.startswith(WHATSAPP_PREFIX):
                raise _bad(63007, "Twilio could not find a Channel with the specified From address")
            raise _bad(
                21606,
                f"The From phone number {from_} is not a valid, SMS-capable inbound phone "
                "number or short code for your account.",
            )
        variables = _content_variables(params.get("ContentVariables"), content_sid)
        shut = (
            to.startswith(WHATSAPP_PREFIX)
            and content_sid is None
            and not self._window_open(to, from_)
        )
        sent = SentMessage(
            sid=tw.new_sid("MM" if media_urls else "SM"),
            to=to,
            from_=from_,
            body=body,
            content_sid=content_sid,
            content_variables=variables,
            media_urls=media_urls,
            status_callback=params.get("StatusCallback"),
            status="failed" if shut else "queued",
            error_code=63016 if shut else None,
            created=self._datetime(),
        )
        self._sent[sent.sid] = sent
        # Twilio accepts the request and fails the message afterwards: the answer says queued.
        return 201, self._message_json(replace(sent, status="queued", error_code=None))

    async def _fetch_message(self, path: Mapping[str, str], call: Call) -> tuple[int, JSON]:
        sent = self._sent.get(path["message"])
        if sent is None:
            raise _not_found(call.path)
        return 200, self._message_json(sent)

    def _message_json(self, sent: SentMessage) -> JSON:
        created = email.utils.format_datetime(sent.created)
        uri = f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sent.sid}"
        return {
            "account_sid": self.account_sid,
            "api_version": "2010-04-01",
            "body": sent.body or "",
            "date_created": created,
            "date_sent": None,
            "date_updated": created,
            "direction": "outbound-api",
            "error_code": sent.error_code,
            "error_message": None,
            "from": sent.from_,
            "messaging_service_sid": None,
            "num_media": str(len(sent.media_urls)),
            "num_segments": "1",
            "price": None,
            "price_unit": "GBP",
            "sid": sent.sid,
            "status": sent.status,
            "subresource_uris": {"media": f"{uri}/Media.json"},
            "to": sent.to,
            "uri": f"{uri}.json",
        }

    # -- State -------------------------------------------------------------------------------

    def _now(self) -> float:
        return time.time() + self._clock_offset

    def _datetime(self) -> datetime:
        return datetime.fromtimestamp(self._now(), UTC)

    def _window_open(self, user: str, business: str) -> bool:
        if not self.whatsapp_window_enforced:
            return True
        last = self._last_inbound.get((user, business))
        return last is not None and self._now() - last < WHATSAPP_WINDOW_SECONDS

    def _hooks(self) -> HookConfig:
        """The webhooks that fire: the service's if it has any, else the account's."""
        return self._service_hooks if self._service_hooks.configured else self._account_hooks

    def _open_conversations(self) -> list[_Conversation]:
        return [c for c in self._conversations.values() if c.state != "closed"]

    def _find_conversation(self, sid_or_unique_name: str) -> _Conversation:
        for conversation in self._conversations.values():
            if sid_or_unique_name in (conversation.sid, conversation.unique_name):
                return conversation
        raise ValueError(f"no conversation {sid_or_unique_name!r}")

    def _conversation_at(self, path: Mapping[str, str], call: Call) -> _Conversation:
        try:
            return self._find_conversation(path["conversation"])
        except ValueError:
            raise _not_found(call.path) from None

    def _open_conversation_at(self, path: Mapping[str, str], call: Call) -> _Conversation:
        conversation = self._conversation_at(path, call)
        if conversation.state == "closed":
            raise _bad(50377, "Can't update conversation as it's in final closed state")
        return conversation

    async def _post(
        self, url: str, params: Mapping[str, str], headers: Mapping[str, str]
    ) -> httpx.Response:
        if self.webhook_transport is None:
            host = httpx.URL(url).host
            if host not in LOOPBACK_HOSTS:
                raise RuntimeError(
                    f"FakeTwilioAPI will not post a webhook to {url}: with no webhook_transport "
                    "it connects only to loopback (127.0.0.1 or localhost), so that no test "
                    "reaches the network; set webhook_transport (e.g. httpx.ASGITransport(app))"
                )
            async with httpx.AsyncClient(timeout=WEBHOOK_TIMEOUT) as client:
                return await client.post(url, data=dict(params), headers=dict(headers))
        # Not closed: closing the client would close the test's transport with it.
        client = httpx.AsyncClient(transport=self.webhook_transport, timeout=WEBHOOK_TIMEOUT)
        return await client.post(url, data=dict(params), headers=dict(headers))

    async def _post_webhook(self, url: str, params: Mapping[str, str], method: str) -> WebhookCall:
        if method != "POST":
            raise NotImplementedError("FakeTwilioAPI only sends webhooks with POST")
        headers = tw.signed(url, params, self.auth_token) | {
            "User-Agent": "TwilioProxy/1.1",
            "I-Twilio-Idempotency-Token": str(uuid.uuid4()),
        }
        try:
            response = await self._post(url, params, headers)
        except httpx.HTTPError as exc:
            record = WebhookCall(url, dict(params), None, "", repr(exc))
        else:
            record = WebhookCall(url, dict(params), response.status_code, response.text)
        self._webhook_calls.append(record)
        return record


async def _unknown_path(request: Request) -> Response:
    return _not_found(request.url.path).response()


def _channel(address: str) -> str | None:
    """ "whatsapp" or "sms" for a well-formed address, else None."""
    if address.startswith(WHATSAPP_PREFIX):
        return "whatsapp" if _E164.match(address.removeprefix(WHATSAPP_PREFIX)) else None
    return "sms" if _E164.match(address) else None


def _attributes(value: str | None) -> str:
    if value is None:
        return "{}"
    try:
        json.loads(value)
    except ValueError:
        raise _not_modelled(f"Attributes that are not JSON: {value!r}") from None
    return value


def _content_variables(value: str | None, content_sid: str | None) -> dict[str, str] | None:
    if value is None:
        return None
    if content_sid is None:
        raise _bad(21654, "A ContentSid must be specified if ContentVariables are provided.")
    try:
        variables = json.loads(value)
    except ValueError:
        variables = None
    if not isinstance(variables, dict) or not all(
        isinstance(v, str) and v for v in variables.values()
    ):
        raise _bad(21656, "The ContentVariables Parameter is invalid")
    return {str(name): str(text) for name, text in variables.items()}


def _check_filters(filters: Sequence[str]) -> None:
    unknown = [name for name in filters if name not in _EVENTS]
    if unknown:
        raise _not_modelled(f"webhook filters {unknown}")


def _updated_hooks(hooks: HookConfig, call: Call) -> HookConfig:
    """The configuration after an update: only the parameters sent change."""
    params = call.params
    filters = tuple(call.values("Filters")) if "Filters" in params else hooks.filters
    _check_filters(filters)
    method = params.get("Method", hooks.method).upper()
    if method not in ("GET", "POST"):
        raise _not_modelled(f"method {method!r}")
    return HookConfig(
        pre_url=params.get("PreWebhookUrl", hooks.pre_url) or None,
        post_url=params.get("PostWebhookUrl", hooks.post_url) or None,
        filters=filters,
        method=method,
    )


def _modified_body(answer: WebhookCall) -> str | None:
    """The body a 200 answer to a pre-event asks for instead (``{"body": "..."}``), if any."""
    try:
        payload = json.loads(answer.body)
    except ValueError:
        return None
    body = payload.get("body") if isinstance(payload, dict) else None
    return body if isinstance(body, str) else None


def _page(call: Call, records: list[JSON], key: str, url: str) -> JSON:
    """One page of a Conversations v1 list, with the ``meta`` the twilio client follows."""
    try:
        size = min(max(int(call.params.get("PageSize") or 50), 1), 1000)
        number = max(int(call.params.get("Page") or 0), 0)
    except ValueError:
        raise _not_modelled("a PageSize or Page that is not a number") from None

    def page_url(n: int) -> str:
        return f"{url}?PageSize={size}&Page={n}"

    more = (number + 1) * size < len(records)
    return {
        key: records[number * size : (number + 1) * size],
        "meta": {
            "page": number,
            "page_size": size,
            "first_page_url": page_url(0),
            "previous_page_url": page_url(number - 1) if number else None,
            "url": page_url(number),
            "next_page_url": page_url(number + 1) if more else None,
            "key": key,
        },
    }


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
