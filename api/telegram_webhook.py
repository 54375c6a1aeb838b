"""Telegram's webhook: checked, size-limited, stored before it is acknowledged."""

from __future__ import annotations

import hmac
import json
import logging

from fastapi import APIRouter, Request, Response

from api.limits import body_within
from bot.channels.telegram.runtime import WEBHOOK_PATH, DatabaseUnavailableError, TelegramRuntime

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


def telegram_router(telegram: TelegramRuntime, max_bytes: int) -> APIRouter:
    router = APIRouter()

    @router.post(WEBHOOK_PATH, include_in_schema=False)
    async def webhook(request: Request) -> Response:
        given = request.headers.get(SECRET_HEADER, "").encode()
        if not hmac.compare_digest(given, telegram.webhook_secret.encode()):
            return Response(status_code=403)
        body = await body_within(request, max_bytes)
        if body is None:
            return Response(status_code=413)
        try:
            payload = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            # Acknowledge it: Telegram would only send the same broken body again.
            log.warning("ignored a webhook body that is not JSON: %s", error)
            return Response(status_code=200)
        if not isinstance(payload, dict) or not isinstance(payload.get("update_id"), int):
            log.warning("ignored a webhook body with no update_id")
            return Response(status_code=200)
        try:
            await telegram.receive(payload)
        except DatabaseUnavailableError:
            # Not stored: 503 makes Telegram send it again later, so nothing is lost.
            return Response(status_code=503)
        return Response(status_code=200)

    return router
