"""The FastAPI application: the admin pages and their JSON API, health checks, Telegram's webhook.

Built once at start-up from the settings; every configuration file is loaded before serving.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from api.admin import errors
from api.admin.middleware import SecurityHeaders
from api.admin.routes import ROUTERS
from api.admin.templating import HERE as ADMIN_DIR
from api.telegram_webhook import telegram_router
from api.twilio_webhooks import twilio_router
from bot import __version__
from bot.runtime import Runtime
from bot.services.accounts import Throttle
from bot.settings import Settings

log = logging.getLogger(__name__)


def create_app(
    settings: Settings, *, runtime: Runtime | None = None, throttle: Throttle | None = None
) -> FastAPI:
    """The app. ``runtime`` may be given (tests); else it is built from the settings, which
    loads every configuration file now, before serving."""
    runtime = runtime or Runtime.build(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    app = FastAPI(
        title="Schoolgate",
        version=__version__,
        description=(
            "A consent-first guardian for school parent group chats. The admin API: sign in "
            "with POST /api/auth/login, then send the session cookie, and the CSRF token it "
            "returns in the X-CSRF-Token header with every request that changes something."
        ),
        lifespan=lifespan,
        max_body_size=settings.max_request_bytes,
    )
    app.state.settings = settings
    app.state.runtime = runtime
    app.state.throttle = throttle or Throttle()
    app.add_middleware(SecurityHeaders)
    errors.install(app)
    app.mount("/static", StaticFiles(directory=ADMIN_DIR / "static"), name="static")
    if runtime.telegram is not None and settings.public_base_url:
        app.include_router(telegram_router(runtime.telegram, settings.max_update_bytes))
    if runtime.whatsapp is not None and settings.public_base_url:
        app.include_router(twilio_router(runtime.whatsapp, settings.max_update_bytes))

    @app.get("/healthz", tags=["health"])
    async def health() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"], responses={503: {"description": "Database unavailable"}})
    async def ready() -> JSONResponse:
        """The database answers: the service can take work."""
        if not await runtime.database_ready():
            return JSONResponse({"status": "database unavailable"}, status_code=503)
        return JSONResponse({"status": "ready"})

    for router in ROUTERS:
        app.include_router(router)
    return app
