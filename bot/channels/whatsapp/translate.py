"""Twilio's webhook parameters as the policy engine's neutral ChatMessage.

Two shapes reach us: a Programmable Messaging incoming message (someone writing to the school's
number: MessageSid, From, Body, ProfileName, NumMedia with MediaContentType{n}, Forwarded) and
a Conversations ``onMessageAdd`` pre-event (a participant writing in a hosted group: Author,
Body and Media, a JSON list of {Sid, Filename, ContentType, Size}; no MessageSid yet). Unknown
parameters are ignored.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime

from bot.policy import ChatMessage, Media, Person, Role

MAX_MEDIA = 10
"""Twilio delivers at most 10 media files with a message."""


def media_kind(content_type: str) -> str:
    """The engine's word for a file of this content type (``images-consent`` reads photos and
    videos)."""
    kind = content_type.strip().lower()
    if kind == "image/webp":
        return "sticker"  # WhatsApp sends stickers as WebP images
    if kind.startswith("image/"):
        return "photo"
    if kind.startswith("video/"):
        return "video"
    if kind.startswith("audio/"):
        return "audio"
    return "document"


def incoming_media(params: Mapping[str, str]) -> tuple[str, ...]:
    """The kinds of an incoming message's media (MediaContentType0, 1, ...)."""
    try:
        count = min(max(int(params.get("NumMedia", "0")), 0), MAX_MEDIA)
    except ValueError:
        count = 0
    return tuple(media_kind(params.get(f"MediaContentType{n}", "")) for n in range(count))


def conversation_media(params: Mapping[str, str]) -> tuple[str, ...]:
    """The kinds of a conversation message's media (the ``Media`` JSON list). A list that
    cannot be read still counts as one file, of a kind unknown."""
    raw = params.get("Media", "")
    if not raw:
        return ()
    try:
        files = json.loads(raw)
    except ValueError:
        return ("document",)
    if not isinstance(files, list):
        return ("document",)
    return tuple(
        media_kind(str(file.get("ContentType", ""))) if isinstance(file, dict) else "document"
        for file in files[:MAX_MEDIA]
    )


def is_forwarded(params: Mapping[str, str]) -> bool:
    flags = (params.get("Forwarded", ""), params.get("FrequentlyForwarded", ""))
    return any(flag.lower() == "true" for flag in flags)


def incoming_message(params: Mapping[str, str], now: datetime) -> ChatMessage:
    """A message to the school's number (for the report line)."""
    text = params.get("Body", "")
    return ChatMessage(
        id=params.get("MessageSid", ""),
        text=text,
        sent_at=now,
        sender=Person(
            id=params.get("From", ""), name=params.get("ProfileName", ""), role=Role.UNKNOWN
        ),
        media=tuple(Media(kind, text) for kind in incoming_media(params)),
        forwarded=is_forwarded(params),
    )


def conversation_message(
    params: Mapping[str, str],
    *,
    message_id: str,
    sender_name: str,
    chat_title: str,
    now: datetime,
) -> ChatMessage:
    """A participant's message in a hosted group, before Twilio has stored it."""
    text = params.get("Body", "")
    return ChatMessage(
        id=message_id,
        text=text,
        sent_at=now,
        sender=Person(id=params.get("Author", ""), name=sender_name, role=Role.UNKNOWN),
        chat_id=params.get("ConversationSid", ""),
        chat_title=chat_title,
        # WhatsApp's caption is the message's body: as on Telegram, each file carries it.
        media=tuple(Media(kind, text) for kind in conversation_media(params)),
    )
