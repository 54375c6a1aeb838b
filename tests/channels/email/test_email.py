"""E-mail alerts: queued for SLT with an address, delivered to a real (local) SMTP server."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.channels.email.delivery import EmailSender
from bot.policy import PolicyEngine
from bot.services import consent
from bot.services.alerts import AlertContext, alert_now
from bot.services.dispatcher import Dispatcher, PermanentFailure
from bot.services.moderation import Retention, check_message
from bot.store.db import transaction
from bot.store.models import OutboxMessage, OutboxStatus
from bot.texts import load_telegram_texts
from tests.conftest import CONFIG_DIR, message
from tests.factories import NOW, a_chat, a_member
from tests.fakes.smtp import Inbox, smtp_inbox

pytestmark = pytest.mark.anyio
MAIL = frozenset({"telegram", "email"})  # the channels of an installation with e-mail
RETENTION = Retention(metadata=timedelta(days=30), flags=timedelta(days=365))
DEAD_SERVER = "smtp://127.0.0.1:1"  # nothing listens on port 1


@pytest.fixture
def inbox() -> Iterator[Inbox]:
    """A real SMTP server on loopback for the test: what it has received."""
    with smtp_inbox() as received:
        yield received


async def test_a_high_severity_flag_is_emailed_to_slt_with_an_address(
    sessions: async_sessionmaker[AsyncSession], engine: PolicyEngine, inbox: Inbox
) -> None:
    texts = load_telegram_texts(CONFIG_DIR)
    async with transaction(sessions) as session:
        chat = await a_chat(session)
        member = await a_member(session, chat)
        await consent.give(session, chat, member, "button", NOW)
        rude = message("you absolute idiot", id="9", reply_to="Kerry Marsh")
        checked = await check_message(session, engine, chat, member, rude, RETENTION, NOW)
        assert checked.flag is not None
        alert = AlertContext(checked.flag, list(checked.flag.reasons), chat, member, rude.text)
        assert await alert_now(session, texts, alert, channels=MAIL) == 1  # nobody linked Telegram
    sender = EmailSender(inbox.url, "schoolgate@peartree.example.sch.uk")
    dispatcher = Dispatcher(sessions, {"email": sender})
    assert await dispatcher.deliver_due() == 1
    [mail] = inbox.received
    assert mail["To"] == "head@peartree.example.sch.uk"
    assert mail["Subject"] == "Schoolgate alert"
    body = mail.get_payload(decode=True)
    assert isinstance(body, bytes)
    assert "you absolute idiot" in body.decode()
    assert "abusive-to-parent" in body.decode()
    async with sessions() as session:
        row = await session.scalar(select(OutboxMessage))
        assert row is not None
        assert row.status == OutboxStatus.SENT


async def test_a_refused_address_fails_for_good_and_a_dead_server_is_retried(
    inbox: Inbox,
) -> None:
    refused = OutboxMessage(
        idempotency_key="x", channel="email", recipient="someone@nowhere.invalid",
        purpose="alert", text="hello", buttons=[],
    )  # fmt: skip
    with pytest.raises(PermanentFailure, match="refused"):
        await EmailSender(inbox.url, "a@b.example").send(refused)
    from bot.services.dispatcher import RetryLater

    with pytest.raises(RetryLater):
        await EmailSender(DEAD_SERVER, "a@b.example").send(refused)


def test_a_bad_smtp_url_is_refused_clearly() -> None:
    with pytest.raises(ValueError, match="smtp://user:password@host:587"):
        EmailSender("http://example.test", "a@b.example")
