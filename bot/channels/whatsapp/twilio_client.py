"""The Twilio REST client for the WhatsApp channel, and a small typed facade over it.

``twilio_client`` builds the real ``twilio.rest.Client`` on the aiohttp-based async HTTP client.
Given ``api_base_url`` (tests: ``FakeTwilioAPI.base_url``), every request the client makes to
``https://<domain>.twilio.com/<path>`` goes to ``<api_base_url>/<domain>/<path>`` instead, so
tests drive the real request building and response parsing of the twilio package. A request for
any host outside twilio.com is refused rather than sent.

``WhatsAppApi`` is the only place that touches twilio's untyped objects: each operation returns a
small frozen dataclass and every failure is one ``TwilioApiError(status, code, message)``; branch
on ``code`` (constants below), not on the HTTP status, which Twilio does not document per code.

Twilio facts this relies on (docs as of 2026):
- Conversation-scoped webhooks only deliver post-event webhooks, so they cannot hold a message
  back (twilio.com/docs/conversations/api/conversation-scoped-webhook-resource). The pre-event
  hook (``onMessageAdd``) is configured per Conversation Service, and a service's webhooks
  override the account-wide ones for that service
  (twilio.com/docs/conversations/api/per-service-webhook-resource): ``configure_webhooks``.
- Actions taken through the REST API (our own messages, adding or removing participants) fire no
  webhooks unless the request carries ``X-Twilio-Webhook-Enabled: true``
  (help article "Troubleshooting Webhook Delivery for Conversations or Chat"); the facade never
  sets it, so our own messages are not moderated and our own changes are not echoed back.
- Outside WhatsApp's 24-hour customer service window a free-form message fails (asynchronously,
  in the status callback) with 63016; use an approved template (``content_sid``).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import aiohttp
from twilio.base.exceptions import (  # type: ignore[import-untyped]
    TwilioException,
    TwilioRestException,
    TwilioServiceException,
)
from twilio.http.async_http_client import AsyncTwilioHttpClient  # type: ignore[import-untyped]
from twilio.rest import Client  # type: ignore[import-untyped]

T = TypeVar("T")

DEFAULT_TIMEOUT = 10.0
"""Seconds per request. twilio's async client would otherwise wait for ever: it passes only the
per-call timeout (never set by the generated resources) to aiohttp."""

SCHOOLGATE_AUTHOR = "Schoolgate"
WHATSAPP_PREFIX = "whatsapp:"

# Twilio error codes worth telling apart (twilio.com/docs/api/errors/<code>).
AUTHENTICATION_FAILED = 20003
NOT_FOUND = 20404
UNIQUE_NAME_TAKEN = 50353
"""A conversation with this unique name already exists."""
CONVERSATION_CLOSED = 50377
"""The conversation is closed: it cannot be changed any more."""
ADDRESS_IN_ANOTHER_CONVERSATION = 50416
"""This address and proxy address pair already belongs to another open conversation."""
PARTICIPANT_LIMIT_REACHED = 50418
"""Too many SMS/WhatsApp ("non-Chat") participants: 50 at most. 50422 is documented likewise."""
ALREADY_A_PARTICIPANT = 50437
"""The same address and proxy address pair is already in this conversation."""
OUTSIDE_WHATSAPP_WINDOW = 63016

PRE_EVENT_FILTERS = ("onMessageAdd",)
POST_EVENT_FILTERS = ("onMessageAdded", "onParticipantAdded", "onParticipantRemoved")


class TwilioApiError(Exception):
    """Twilio refused a request, or did not answer.

    ``status`` is the HTTP status, or None when no answer came (network failure, timeout);
    ``code`` is Twilio's error code when the answer carried one.
    """

    def __init__(self, status: int | None, code: int | None, message: str) -> None:
        super().__init__(f"Twilio error {code} (HTTP {status}): {message}")
        self.status = status
        self.code = code
        self.message = message

    @property
    def retryable(self) -> bool:
        """Whether the same request may succeed later: no answer, 429, or a 5xx."""
        return self.status is None or self.status == 429 or self.status >= 500


@dataclass(frozen=True)
class ConversationInfo:
    sid: str
    unique_name: str | None
    state: str
    """"active", "inactive" or "closed"."""
    chat_service_sid: str | None


@dataclass(frozen=True)
class WebhookConfig:
    chat_service_sid: str
    pre_url: str
    post_url: str
    filters: tuple[str, ...]
    method: str


@dataclass(frozen=True)
class ParticipantInfo:
    sid: str
    conversation_sid: str
    address: str
    proxy_address: str


@dataclass(frozen=True)
class ConversationMessageInfo:
    sid: str
    conversation_sid: str
    index: int


@dataclass(frozen=True)
class MessageInfo:
    """A Programmable Messaging message as Twilio accepted it (status "queued" at first)."""

    sid: str
    status: str


def redirected_url(url: str, api_base_url: str) -> str:
    """``https://<domain>.twilio.com/<path>?<query>`` as ``<api_base>/<domain>/<path>?<query>``."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme != "https" or not host.endswith(".twilio.com"):
        raise ValueError(f"not a Twilio API URL: {url!r}")
    base = urlsplit(api_base_url.rstrip("/"))
    domain = host.removesuffix(".twilio.com")
    return urlunsplit(
        (base.scheme, base.netloc, f"{base.path}/{domain}{parts.path}", parts.query, "")
    )


class _AsyncHttpClient(AsyncTwilioHttpClient):  # type: ignore[misc]
    """twilio's aiohttp client with a default timeout, credentials sent as a header (twilio's own
    way, ``aiohttp.BasicAuth``, is deprecated in aiohttp 3.14) and, for tests, another API host."""

    def __init__(self, api_base_url: str | None, timeout: float) -> None:
        super().__init__(timeout=timeout)
        self._api_base_url = api_base_url

    async def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Any:
        if self._api_base_url is not None:
            url = redirected_url(url, self._api_base_url)
        if auth is not None:
            credentials = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode("ascii")
            headers = {**(headers or {}), "Authorization": f"Basic {credentials}"}
        return await super().request(
            method,
            url,
            params=params,
            data=data,
            headers=headers,
            auth=None,
            timeout=self.timeout if timeout is None else timeout,
            allow_redirects=allow_redirects,
        )


def twilio_client(
    account_sid: str,
    auth_token: str,
    api_base_url: str | None = None,
    *,
    timeout: float = DEFAULT_TIMEOUT,
) -> Client:
    """The real twilio client on an async HTTP client; call from a coroutine (aiohttp needs the
    running loop) and close it with ``await client.http_client.close()``."""
    http_client = _AsyncHttpClient(api_base_url, timeout)
    return Client(account_sid, auth_token, http_client=http_client)


class WhatsAppApi:
    """The Twilio operations Schoolgate needs, typed; every failure is a ``TwilioApiError``."""

    def __init__(self, client: Client) -> None:
        self._client = client

    @classmethod
    def connect(
        cls, account_sid: str, auth_token: str, api_base_url: str | None = None
    ) -> WhatsAppApi:
        """A facade on a new client; call from a coroutine and close it (``aclose`` or
        ``async with``)."""
        return cls(twilio_client(account_sid, auth_token, api_base_url))

    async def aclose(self) -> None:
        await self._client.http_client.close()

    async def __aenter__(self) -> WhatsAppApi:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- Conversations -------------------------------------------------------------------------

    async def create_conversation(
        self, friendly_name: str, unique_name: str | None = None
    ) -> ConversationInfo:
        created = await _answer(
            self._conversations.create_async(
                friendly_name=friendly_name, **_given(unique_name=unique_name)
            )
        )
        return _conversation_info(created)

    async def configure_webhooks(
        self, pre_url: str, post_url: str, *, chat_service_sid: str | None = None
    ) -> WebhookConfig:
        """Send every conversation event of the service to us: ``onMessageAdd`` to ``pre_url``
        (its answer lets a message through or holds it back), the post-events to ``post_url``.

        Without ``chat_service_sid`` this is the account's default Conversation Service, the one
        ``create_conversation`` creates conversations in. Idempotent: run it at start-up.
        """
        if chat_service_sid is None:
            configuration = await _answer(
                self._client.conversations.v1.configuration().fetch_async()
            )
            chat_service_sid = _text(configuration.default_chat_service_sid, "chat service sid")
        webhooks = self._client.conversations.v1.services(chat_service_sid).configuration.webhooks()
        updated = await _answer(
            webhooks.update_async(
                pre_webhook_url=pre_url,
                post_webhook_url=post_url,
                filters=[*PRE_EVENT_FILTERS, *POST_EVENT_FILTERS],
                method="POST",
            )
        )
        return WebhookConfig(
            chat_service_sid=_text(updated.chat_service_sid, "chat service sid"),
            pre_url=_text(updated.pre_webhook_url, "pre-event URL"),
            post_url=_text(updated.post_webhook_url, "post-event URL"),
            filters=tuple(str(name) for name in updated.filters or ()),
            method=_text(updated.method, "method"),
        )

    async def add_whatsapp_participant(
        self, conversation_sid: str, address: str, proxy_address: str, friendly_name: str
    ) -> ParticipantInfo:
        """Add ``whatsapp:+44...`` to the conversation, relayed through ``proxy_address`` (the
        school's WhatsApp number). Participants have no name in Twilio: ``friendly_name`` is
        kept in the participant's attributes."""
        for value in (address, proxy_address):
            if not value.startswith(WHATSAPP_PREFIX):
                raise ValueError(
                    f"a WhatsApp address looks like 'whatsapp:+447700900123': {value!r}"
                )
        participant = await _answer(
            self._conversations(conversation_sid).participants.create_async(
                messaging_binding_address=address,
                messaging_binding_proxy_address=proxy_address,
                attributes=json.dumps({"friendly_name": friendly_name}),
            )
        )
        binding: Mapping[str, Any] = participant.messaging_binding or {}
        return ParticipantInfo(
            sid=_text(participant.sid, "participant sid"),
            conversation_sid=_text(participant.conversation_sid, "conversation sid"),
            address=_text(binding.get("address"), "participant address"),
            proxy_address=_text(binding.get("proxy_address"), "proxy address"),
        )

    async def remove_participant(self, conversation_sid: str, participant_sid: str) -> None:
        await _answer(
            self._conversations(conversation_sid).participants(participant_sid).delete_async()
        )

    async def count_participants(self, conversation_sid: str) -> int:
        participants = await _answer(
            self._conversations(conversation_sid).participants.list_async()
        )
        return len(participants)

    async def send_conversation_message(
        self, conversation_sid: str, body: str, author: str = SCHOOLGATE_AUTHOR
    ) -> ConversationMessageInfo:
        """Post to every participant; no webhook fires for it (see the module docstring)."""
        message = await _answer(
            self._conversations(conversation_sid).messages.create_async(author=author, body=body)
        )
        return ConversationMessageInfo(
            sid=_text(message.sid, "message sid"),
            conversation_sid=_text(message.conversation_sid, "conversation sid"),
            index=int(message.index),
        )

    async def close_conversation(self, conversation_sid: str) -> ConversationInfo:
        """Close it for good: nothing more can be posted and the participants' address pairs are
        free for other conversations. Closing a closed conversation is CONVERSATION_CLOSED."""
        closed = await _answer(self._conversations(conversation_sid).update_async(state="closed"))
        return _conversation_info(closed)

    # -- Programmable Messaging ----------------------------------------------------------------

    async def send_whatsapp(
        self,
        to: str,
        from_: str,
        body: str | None = None,
        content_sid: str | None = None,
        content_variables: Mapping[str, str] | None = None,
        status_callback: str | None = None,
    ) -> MessageInfo:
        """A free-form ``body`` (inside the 24-hour window) or an approved template
        (``content_sid`` with its ``content_variables``), never both."""
        if (body is None) == (content_sid is None):
            raise ValueError("give either a body or a content_sid (an approved template)")
        if content_variables is not None and content_sid is None:
            raise ValueError("content_variables only go with a content_sid")
        for value in (to, from_):
            if not value.startswith(WHATSAPP_PREFIX):
                raise ValueError(
                    f"a WhatsApp address looks like 'whatsapp:+447700900123': {value!r}"
                )
        variables = None if content_variables is None else json.dumps(dict(content_variables))
        return await self._send(
            to=to,
            from_=from_,
            **_given(
                body=body,
                content_sid=content_sid,
                content_variables=variables,
                status_callback=status_callback,
            ),
        )

    async def send_sms(
        self, to: str, from_: str, body: str, status_callback: str | None = None
    ) -> MessageInfo:
        for value in (to, from_):
            if value.startswith(WHATSAPP_PREFIX):
                raise ValueError(f"an SMS goes to and from a plain number: {value!r}")
        return await self._send(
            to=to, from_=from_, body=body, **_given(status_callback=status_callback)
        )

    async def _send(self, **params: str) -> MessageInfo:
        message = await _answer(self._client.messages.create_async(**params))
        return MessageInfo(
            sid=_text(message.sid, "message sid"), status=_text(message.status, "status")
        )

    @property
    def _conversations(self) -> Any:
        return self._client.conversations.v1.conversations


def _given(**values: str | None) -> dict[str, str]:
    """Only the parameters that have a value: twilio sends ``values.unset`` ones not at all."""
    return {name: value for name, value in values.items() if value is not None}


def _conversation_info(conversation: Any) -> ConversationInfo:
    return ConversationInfo(
        sid=_text(conversation.sid, "conversation sid"),
        unique_name=None if conversation.unique_name is None else str(conversation.unique_name),
        state=_text(conversation.state, "state"),
        chat_service_sid=(
            None if conversation.chat_service_sid is None else str(conversation.chat_service_sid)
        ),
    )


def _text(value: Any, what: str) -> str:
    if value is None:
        raise TwilioApiError(None, None, f"Twilio's answer had no {what}")
    return str(value)


async def _answer(request: Awaitable[T]) -> T:
    """Await a twilio call, turning each way it can fail into a ``TwilioApiError``."""
    try:
        return await request
    except TwilioRestException as exc:
        raise TwilioApiError(exc.status, exc.code, exc.msg) from exc
    except TwilioServiceException as exc:
        raise TwilioApiError(exc.status, exc.code, exc.detail or exc.title) from exc
    except TwilioException as exc:
        raise _page_error(exc) from exc
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise TwilioApiError(None, None, f"no answer from Twilio: {exc!r}") from exc


def _page_error(exc: Any) -> TwilioApiError:
    """A failed list request: twilio raises a bare ``TwilioException(text, response)``."""
    response = exc.args[1] if len(exc.args) > 1 else None
    status = getattr(response, "status_code", None)
    try:
        payload = json.loads(response.text) if response is not None else {}
    except (TypeError, ValueError):
        payload = {}
    if not isinstance(payload, dict):
        payload = {}
    code = payload.get("code")
    message = payload.get("message") or (exc.args[0] if exc.args else "request failed")
    return TwilioApiError(
        status if isinstance(status, int) else None,
        code if isinstance(code, int) else None,
        str(message),
    )
