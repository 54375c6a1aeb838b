"""The rules: trying a message against the school's policy engine."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Request

from api.admin.deps import DbSession, SignedIn, requires, runtime_of
from bot.channels.jsonl import MessageIn, verdict_json
from bot.errors import NotFoundError
from bot.policy.engine import MessageTooLongError
from bot.services.access import Permission
from bot.store.repositories.schools import SchoolRepository

pages = APIRouter(include_in_schema=False)
api = APIRouter(prefix="/api", tags=["rules"])


@api.post("/classify", responses={413: {"description": "The message is too long"}})
async def classify(
    message: MessageIn,
    request: Request,
    db: DbSession,
    user: Annotated[SignedIn, requires(Permission.VIEW_RULES)],
) -> dict[str, Any]:
    """Check one message (the ``schoolgate classify`` line format) against your school's rules."""
    school = await SchoolRepository(db).get(user.school_id)
    if school is None:
        raise NotFoundError("your school is not in the database")
    engine = runtime_of(request).engines.for_school(school)
    try:
        verdict = engine.classify(message.to_message())
    except MessageTooLongError as error:
        raise HTTPException(413, str(error)) from None
    return verdict_json(message.id, verdict)
