"""The platform-neutral message every channel translates its updates into."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class Role(StrEnum):
    PARENT = "parent"
    STAFF = "staff"
    UNKNOWN = "unknown"

    @classmethod
    def parse(cls, value: str | None) -> Role:
        """Any role we do not know (``carer``, ``grandparent`` ...) is read as a parent/carer."""
        if value is None:
            return cls.UNKNOWN
        cleaned = value.strip().lower()
        if cleaned in (cls.STAFF, cls.UNKNOWN):
            return cls(cleaned)
        return cls.PARENT


@dataclass(frozen=True, slots=True)
class Person:
    id: str = ""
    name: str = ""
    role: Role = Role.UNKNOWN
    handle: str = ""


@dataclass(frozen=True, slots=True)
class ReplyTo:
    sender: Person
    text: str = ""


@dataclass(frozen=True, slots=True)
class Media:
    """An attachment. ``caption`` is what the sender wrote or a description of what it shows."""

    kind: str
    caption: str = ""


@dataclass(frozen=True, slots=True)
class ChatMessage:
    id: str
    text: str
    sent_at: datetime
    sender: Person = field(default_factory=Person)
    chat_id: str = ""
    chat_title: str = ""
    mentions: tuple[str, ...] = ()
    reply_to: ReplyTo | None = None
    media: tuple[Media, ...] = ()
    forwarded: bool = False
    edited: bool = False

    @property
    def all_text(self) -> str:
        """The text and every caption, which is what a reader of the chat sees."""
        captions = [m.caption for m in self.media if m.caption]
        return "\n".join([self.text, *captions]) if captions else self.text
