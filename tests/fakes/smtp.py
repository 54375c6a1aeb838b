"""A real SMTP server on loopback (aiosmtpd, in a thread of its own) that keeps what it is sent.

    with smtp_inbox() as inbox:
        sender = EmailSender(inbox.url, "schoolgate@peartree.example.sch.uk")
        ...
        [mail] = inbox.received

It accepts mail for any address except those at ``nowhere.invalid``, which it refuses (550).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterator
from contextlib import contextmanager
from email import message_from_bytes
from email.message import Message

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

REFUSED_DOMAIN = "@nowhere.invalid"
"""Addresses ending so are refused: no such mailbox."""


class Inbox:
    """The server's handler: every message it accepted, and where it listens."""

    def __init__(self) -> None:
        self.received: list[Message] = []
        self.port = 0

    @property
    def url(self) -> str:
        """The server as ``EmailSender`` (and SMTP_URL) names it."""
        return f"smtp://127.0.0.1:{self.port}"

    async def handle_RCPT(  # noqa: N802 (aiosmtpd's hook name)
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address.endswith(REFUSED_DOMAIN):
            return "550 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        self.received.append(message_from_bytes(envelope.original_content or b""))
        return "250 Message accepted"


class _AnyPortController(Controller):
    """aiosmtpd's controller, listening on a port the OS picks when it binds (port 0: no race
    with another test for a port probed free). aiosmtpd connects to ``self.port`` once it listens
    to check the server answers, so the port it got is put there first."""

    def _create_server(self) -> Awaitable[asyncio.AbstractServer]:
        listening = super()._create_server()

        async def bound() -> asyncio.AbstractServer:
            server = await listening
            assert isinstance(server, asyncio.Server)  # what loop.create_server makes
            self.port = int(server.sockets[0].getsockname()[1])
            return server

        return bound()


@contextmanager
def smtp_inbox() -> Iterator[Inbox]:
    """An SMTP server on 127.0.0.1 while in the block: its inbox, which knows its port."""
    inbox = Inbox()
    controller = _AnyPortController(inbox, hostname="127.0.0.1", port=0)
    controller.start()
    inbox.port = controller.port
    try:
        yield inbox
    finally:
        controller.stop()
