"""The JSON Lines channel behind ``schoolgate classify``: one message per line in, one verdict out.

The contract is in docs (architecture.md): unknown fields are ignored; a line that is not valid
JSON, or lacks ``text``/``sent_at``, gets ``{"id": ..., "error": ...}`` and the run goes on.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bot.policy import ChatMessage, Media, Person, ReplyTo, Role, Verdict


class _Loose(BaseModel):
    model_config = ConfigDict(extra="ignore")


class PersonIn(_Loose):
    id: str = ""
    name: str = ""
    role: str | None = None
    handle: str = ""

    @field_validator("id", mode="before")
    @classmethod
    def _id_as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) else value

    def to_person(self) -> Person:
        return Person(self.id, self.name, Role.parse(self.role), self.handle)


class ChatIn(_Loose):
    id: str = ""
    title: str = ""


class ReplyIn(_Loose):
    sender: PersonIn = Field(default_factory=PersonIn)
    text: str = ""


class MediaIn(_Loose):
    kind: str
    caption: str | None = ""


class MessageIn(_Loose):
    id: str | int | None = None
    text: str
    sent_at: datetime
    sender: PersonIn = Field(default_factory=PersonIn)
    chat: ChatIn = Field(default_factory=ChatIn)
    mentions: list[str] | None = None
    reply_to: ReplyIn | None = None
    media: list[MediaIn] | None = None

    def to_message(self) -> ChatMessage:
        return ChatMessage(
            id="" if self.id is None else str(self.id),
            text=self.text,
            sent_at=self.sent_at,
            sender=self.sender.to_person(),
            chat_id=self.chat.id,
            chat_title=self.chat.title,
            mentions=tuple(self.mentions or ()),
            reply_to=ReplyTo(self.reply_to.sender.to_person(), self.reply_to.text)
            if self.reply_to
            else None,
            media=tuple(Media(m.kind, m.caption or "") for m in self.media or ()),
        )


class LineError(ValueError):
    """A line that cannot be classified; ``message_id`` is echoed back when it could be read."""

    def __init__(self, message_id: Any, reason: str) -> None:
        super().__init__(reason)
        self.message_id = message_id
        self.reason = reason


def parse_line(line: str | bytes) -> tuple[Any, ChatMessage]:
    """The line's own ``id`` (echoed back as it was written) and the message."""
    try:
        data = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise LineError(None, f"not valid JSON: {error}") from None
    if not isinstance(data, dict):
        raise LineError(None, "each line must be a JSON object")
    message_id = data.get("id")
    try:
        return message_id, MessageIn.model_validate(data).to_message()
    except ValidationError as error:
        problems = []
        for problem in error.errors():
            where = ".".join(str(p) for p in problem["loc"])
            what = "is missing" if problem["type"] == "missing" else problem["msg"].lower()
            problems.append(f"{where} {what}")
        raise LineError(message_id, "; ".join(problems)) from None


def verdict_json(message_id: Any, verdict: Verdict) -> dict[str, Any]:
    severity = verdict.severity
    return {
        "id": message_id,
        "flagged": verdict.flagged,
        "rules": [str(rule) for rule in verdict.rules],
        "severity": severity.label if severity is not None else None,
        "explanations": [
            {"rule": str(e.rule), "clause": e.clause, "evidence": e.evidence}
            for e in verdict.explanations
        ],
    }


def error_json(message_id: Any, reason: str) -> dict[str, Any]:
    return {"id": message_id, "error": reason}
