"""Errors, rendered once per transport: JSON under /api/, a page or a sign-in redirect elsewhere."""

from __future__ import annotations

import logging
from urllib.parse import quote, urlsplit

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException

from api.admin.templating import render, safe_next
from bot.errors import SchoolgateError, SignInRequiredError

log = logging.getLogger(__name__)

TITLES = {
    400: "That did not work",
    401: "Please sign in",
    403: "Not allowed",
    404: "Not found",
    405: "Not allowed",
    409: "That cannot be done now",
    413: "Too large",
    422: "Please check the form",
    429: "Please wait",
    503: "Unavailable",
}


def wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/") or request.url.path.startswith("/telegram/")


def _page(request: Request, status: int, message: str) -> Response:
    return render(
        request,
        "error.html",
        {
            "title": TITLES.get(status, "Something went wrong"),
            "message": message,
            "back": _came_from(request),
        },
        status_code=status,
    )


def _came_from(request: Request) -> str | None:
    """The page on this site the person came from (a form's page), to offer the way back."""
    referer = urlsplit(request.headers.get("referer", ""))
    if referer.netloc != request.url.netloc:
        return None
    # The host matches, yet a path like //evil.com/x would still be a link off the site.
    back = safe_next(referer.path + (f"?{referer.query}" if referer.query else ""), default="")
    return back if back and back != request.url.path else None


def install(app: FastAPI) -> None:
    @app.exception_handler(SchoolgateError)
    async def schoolgate_error(request: Request, error: SchoolgateError) -> Response:
        if wants_json(request):
            return JSONResponse({"detail": str(error)}, status_code=error.http_status)
        if isinstance(error, SignInRequiredError) and request.method == "GET":
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"/login?next={quote(target)}", status_code=303)
        return _page(request, error.http_status, str(error))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> Response:
        if wants_json(request) or request.url.path.startswith(("/docs", "/redoc", "/openapi")):
            return JSONResponse(
                {"detail": error.detail}, status_code=error.status_code, headers=error.headers
            )
        message = (
            error.detail if isinstance(error.detail, str) else TITLES.get(error.status_code, "")
        )
        if error.status_code == 404:
            message = "There is no such page, or it is not one you can see."
        return _page(request, error.status_code, message)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> Response:
        if wants_json(request):
            return JSONResponse({"detail": _jsonable(error)}, status_code=422)
        problems = "; ".join(
            f"{'.'.join(str(p) for p in problem['loc'][1:]) or 'the form'}: {problem['msg']}"
            for problem in error.errors()
        )
        return _page(request, 422, problems)


def _jsonable(error: RequestValidationError) -> list[dict[str, object]]:
    return [
        {"loc": list(problem["loc"]), "msg": problem["msg"], "type": problem["type"]}
        for problem in error.errors()
    ]
