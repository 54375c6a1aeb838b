"""The FastAPI application. Built once at start-up with the settings and the policy engine."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse

from api.telegram_webhook import telegram_router
from bot import __version__
from bot.channels.jsonl import MessageIn, verdict_json
from bot.errors import SchoolgateError
from bot.policy import PolicyEngine
from bot.policy.engine import MessageTooLongError
from bot.policy_files import build_engine
from bot.runtime import Runtime
from bot.settings import Settings

log = logging.getLogger(__name__)


def get_engine(request: Request) -> PolicyEngine:
    engine: PolicyEngine = request.app.state.engine
    return engine


EngineDep = Annotated[PolicyEngine, Depends(get_engine)]


def create_app(
    settings: Settings, *, runtime: Runtime | None = None, engine: PolicyEngine | None = None
) -> FastAPI:
    """The app. ``runtime`` and ``engine`` may be given (tests); else they are built from the
    settings, which loads every configuration file now, before serving."""
    runtime = runtime or Runtime.build(settings)
    if engine is None:
        engine = build_engine(settings.school_path, settings.config_dir, settings.policy_file)

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
        description="A consent-first guardian for school parent group chats.",
        lifespan=lifespan,
    )
    app.state.engine = engine
    app.state.settings = settings
    app.state.runtime = runtime
    if runtime.telegram is not None and settings.public_base_url:
        app.include_router(telegram_router(runtime.telegram, settings.max_update_bytes))
    school_name = engine.school.config.school.name

    @app.exception_handler(SchoolgateError)
    async def _render_error(_: Request, error: SchoolgateError) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=error.http_status)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def home() -> str:
        return (
            "<!doctype html><html lang=en><head><meta charset=utf-8><title>Schoolgate</title>"
            "</head><body><h1>Schoolgate</h1>"
            f"<p>Running for {_escape(school_name)}. The admin pages are not built yet; try a "
            "message through the API at <a href=/docs>/docs</a>.</p></body></html>"
        )

    @app.get("/healthz", tags=["health"])
    async def health() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"])
    async def ready(engine: EngineDep) -> JSONResponse:
        """The database answers and the policy engine is loaded: the service can take work."""
        if not await runtime.database_ready():
            return JSONResponse({"status": "database unavailable"}, status_code=503)
        return JSONResponse({"status": "ready", "school": engine.school.config.school.name})

    @app.post("/api/classify", tags=["policy"])
    async def classify(message: MessageIn, engine: EngineDep) -> dict[str, Any]:
        """Check one message (the ``schoolgate classify`` line format) and return the verdict."""
        try:
            verdict = engine.classify(message.to_message())
        except MessageTooLongError as error:
            raise HTTPException(413, str(error)) from None
        return verdict_json(message.id, verdict)

    return app


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
