"""Sending outbox messages by e-mail (SMTP_URL: smtp://user:pass@host:587, or smtps:// for TLS
from the first byte)."""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import make_msgid
from urllib.parse import unquote, urlsplit

import aiosmtplib

from bot.services.dispatcher import PermanentFailure, RetryLater
from bot.store.models import OutboxMessage

CHANNEL = "email"
SUBJECTS = {
    "alert": "Schoolgate alert",
    "digest": "Schoolgate daily summary",
    "closure": "Schoolgate: closing a chat",
}
TIMEOUT = 30


class EmailSender:
    def __init__(self, smtp_url: str, from_address: str) -> None:
        parts = urlsplit(smtp_url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError("SMTP_URL must look like smtp://user:password@host:587")
        self.host = parts.hostname
        self.implicit_tls = parts.scheme == "smtps"
        self.port = parts.port or (465 if self.implicit_tls else 587)
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        self.from_address = from_address

    async def send(self, message: OutboxMessage) -> str | None:
        email = EmailMessage()
        email["From"] = self.from_address
        email["To"] = message.recipient
        email["Subject"] = SUBJECTS.get(message.purpose, "Schoolgate")
        email["Message-ID"] = make_msgid(domain="schoolgate")
        # Buttons belong to Telegram; by e-mail the text says where to act.
        footer = "\n\nTo act on it, use the buttons in Telegram or the Schoolgate admin pages."
        email.set_content(message.text + (footer if message.buttons else ""))
        try:
            await aiosmtplib.send(
                email,
                hostname=self.host,
                port=self.port,
                username=self.username,
                password=self.password,
                use_tls=self.implicit_tls,
                timeout=TIMEOUT,
            )
        except aiosmtplib.SMTPRecipientsRefused as error:
            raise PermanentFailure(f"recipient refused: {error}") from error
        except aiosmtplib.SMTPResponseException as error:
            if 500 <= error.code < 600:
                raise PermanentFailure(f"SMTP {error.code}: {error.message}") from error
            raise RetryLater(None, f"SMTP {error.code}: {error.message}") from error
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
            raise RetryLater(None, f"SMTP: {error}") from error
        return str(email["Message-ID"])
