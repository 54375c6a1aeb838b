"""Twilio's webhooks: signed, size-limited, handled once, answered from what was stored.

Each request must carry Twilio's ``X-Twilio-Signature`` for the URL Twilio requested, rebuilt
from PUBLIC_BASE_URL (behind a TLS-terminating proxy the URL the app sees differs): otherwise
403, and nothing in it is used. A body over the limit is 413. Form fields we do not know are
ignored. The answer is the handler's: TwiML, a relay (200 with JSON) or a hold (403), or 503
when the database cannot be reached.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request, Response

from api.limits import body_within
from bot.channels.whatsapp.answers import JSON, TWIML
from bot.channels.whatsapp.paths import (
    INCOMING_PATH,
    POST_EVENT_PATH,
    PRE_EVENT_PATH,
    STATUS_PATH,
)
from bot.channels.whatsapp.runtime import WhatsAppRuntime
from bot.channels.whatsapp.signature import SIGNATURE_HEADER, is_valid, public_url
from bot.services.receipts import Answer

MAX_FIELDS = 200
"""More form fields than any Twilio webhook sends (an incoming message with ten media has ~40)."""

Handle = Callable[[Mapping[str, str]], Awaitable[Answer]]


def twilio_router(whatsapp: WhatsAppRuntime, max_bytes: int) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    hooks: dict[str, tuple[Handle, str | None]] = {
        INCOMING_PATH: (whatsapp.incoming, TWIML),
        PRE_EVENT_PATH: (whatsapp.pre_event, JSON),
        POST_EVENT_PATH: (whatsapp.post_event, None),
        STATUS_PATH: (whatsapp.status, None),
    }
    for path, (handle, media_type) in hooks.items():
        router.add_api_route(
            path,
            _endpoint(whatsapp, handle, media_type, max_bytes),
            methods=["POST"],
            include_in_schema=False,
        )
    return router


def _endpoint(
    whatsapp: WhatsAppRuntime, handle: Handle, media_type: str | None, max_bytes: int
) -> Callable[[Request], Awaitable[Response]]:
    async def webhook(request: Request) -> Response:
        signature = request.headers.get(SIGNATURE_HEADER)
        base = whatsapp.settings.public_base_url
        if not signature or base is None:
            return Response(status_code=403)
        body = await body_within(request, max_bytes)
        if body is None:
            return Response(status_code=413)
        try:
            pairs = parse_qsl(
                body.decode("utf-8"), keep_blank_values=True, max_num_fields=MAX_FIELDS
            )
        except (UnicodeDecodeError, ValueError):
            return Response(status_code=403)  # not what Twilio signs
        url = public_url(base, request.url.path, request.url.query)
        if not is_valid(whatsapp.settings.auth_token, url, pairs, signature):
            return Response(status_code=403)
        answer = await handle(dict(pairs))
        if not answer.body:
            return Response(status_code=answer.status)
        return Response(answer.body, status_code=answer.status, media_type=media_type)

    return webhook
