"""Answers to Twilio's webhooks: TwiML for a message to the school's number, a relay (200, with
the body the others will see) or a hold (403) for a message in a hosted group."""

from __future__ import annotations

import json
import re
from xml.sax.saxutils import escape

from bot.services.receipts import Answer

MAX_BODY = 1600
"""Twilio's limit on a message body (Programmable Messaging and Conversations alike)."""
TWIML = "text/xml"
JSON = "application/json"

ACCEPTED = Answer(200)
HELD = Answer(403)
"""Any answer but 200 to a pre-event stops the message: 403 says "not allowed"."""
UNAVAILABLE = Answer(503)

# Characters XML 1.0 cannot carry at all (a WhatsApp profile name may hold anything).
_NOT_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def fitted(text: str, limit: int = MAX_BODY) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def pieces(text: str, limit: int = MAX_BODY) -> list[str]:
    """``text`` as messages of at most ``limit`` characters, split between paragraphs, else
    between lines, else where it must (a school's own notice may be longer than one message)."""
    if len(text) <= limit:
        return [text] if text else []
    for separator in ("\n\n", "\n", " "):
        head, found, _ = text[: limit + len(separator)].rpartition(separator)
        if found and head.strip():
            return [head.rstrip(), *pieces(text[len(head) + len(separator) :].lstrip(), limit)]
    return [text[:limit], *pieces(text[limit:], limit)]


def twiml(*messages: str) -> Answer:
    """Reply to an incoming message with ``messages``, in order (none: say nothing)."""
    parts = "".join(
        f"<Message>{escape(piece)}</Message>"
        for text in messages
        for piece in pieces(_NOT_XML.sub("", text))
    )
    return Answer(200, f'<?xml version="1.0" encoding="UTF-8"?><Response>{parts}</Response>')


def relay(body: str) -> Answer:
    """Let a group message through, shown to the others as ``body``."""
    return Answer(200, json.dumps({"body": fitted(body)}, ensure_ascii=False))
