"""``schoolgate whatsapp``: a hosted group and an invitation from the command line, against the
fake Twilio API, and ``setup``, which says what to configure in Twilio (or what is missing)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select

from bot.channels.whatsapp.paths import INCOMING_PATH, POST_EVENT_PATH, PRE_EVENT_PATH, STATUS_PATH
from bot.cli import main
from bot.services.registration import code_hash
from bot.store.db import create_engine, session_factory
from bot.store.models import Chat, JoinRequest, OutboxMessage
from tests.conftest import SCHOOL_FILE
from tests.fakes.twilio_api import FakeTwilioAPI
from tests.fakes.twilio_webhooks import ACCOUNT_SID, AUTH_TOKEN, PUBLIC_BASE_URL, SCHOOL_WHATSAPP

pytestmark = pytest.mark.anyio

TWILIO = {
    "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
    "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
    "TWILIO_WHATSAPP_FROM": SCHOOL_WHATSAPP,
    "PUBLIC_BASE_URL": PUBLIC_BASE_URL,
}


@pytest.fixture
async def twilio() -> AsyncIterator[FakeTwilioAPI]:
    async with FakeTwilioAPI() as fake:
        yield fake


@pytest.fixture
def database(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}"


@pytest.fixture
def cli(
    database: str, twilio: FakeTwilioAPI, monkeypatch: pytest.MonkeyPatch
) -> Iterator[CliRunner]:
    """The command with WhatsApp configured against the fake Twilio, and the test school."""
    from bot.settings import get_settings

    monkeypatch.setenv("DATABASE_URL", database)
    for name, value in {**TWILIO, "TWILIO_API_BASE_URL": twilio.base_url}.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    runner = CliRunner()
    assert runner.invoke(main, ["school", "load", str(SCHOOL_FILE)]).exit_code == 0
    yield runner
    get_settings.cache_clear()


async def run(runner: CliRunner, *args: str) -> Result:
    """The command in a thread: it runs its own event loop, while the fake serves on this one."""
    return await asyncio.to_thread(runner.invoke, main, list(args))


async def rows(database: str, model: type[object]) -> list[object]:
    engine = create_engine(database)
    try:
        async with session_factory(engine)() as session:
            return list(await session.scalars(select(model)))
    finally:
        await engine.dispose()


async def test_a_group_is_made_and_its_join_code_printed_alone_on_the_last_line(
    cli: CliRunner, twilio: FakeTwilioAPI, database: str
) -> None:
    made = await run(cli, "whatsapp", "group", "create", "--class", "Year 3")

    assert made.exit_code == 0, made.output
    *told, code = made.stdout.splitlines()
    assert len(code) == 9
    assert "JOIN <code> to +44 7700 900999" in "\n".join(told)
    [chat] = await rows(database, Chat)
    assert isinstance(chat, Chat)
    assert (chat.platform, chat.title, chat.class_name) == ("whatsapp", "Year 3 Parents", "Year 3")
    assert chat.join_code_hash == code_hash(code)
    [conversation] = twilio.conversations()
    assert conversation.sid == chat.platform_chat_id


async def test_when_twilio_does_not_answer_nothing_is_made(
    cli: CliRunner, twilio: FakeTwilioAPI, database: str
) -> None:
    twilio.fail_next("conversation.create", 503)

    failed = await run(cli, "whatsapp", "group", "create", "--class", "Year 3")

    assert failed.exit_code == 1
    assert "Twilio did not answer" in failed.stderr
    assert "Traceback" not in failed.output
    assert await rows(database, Chat) == []


async def test_a_number_is_invited_to_a_group(cli: CliRunner, database: str) -> None:
    made = await run(cli, "whatsapp", "group", "create", "--class", "Year 3")
    [chat] = await rows(database, Chat)
    assert isinstance(chat, Chat)

    invited = await run(cli, "whatsapp", "group", "invite", str(chat.id), "--number", "07700900123")

    assert invited.exit_code == 0, invited.output
    assert "Invited +44 7700 900123 to Year 3 Parents" in invited.stdout
    [request] = await rows(database, JoinRequest)
    assert isinstance(request, JoinRequest)
    assert (request.address, request.invited_by) == ("whatsapp:+447700900123", "cli")
    [invitation] = await rows(database, OutboxMessage)
    assert isinstance(invitation, OutboxMessage)
    assert (invitation.purpose, invitation.recipient) == ("invite", "whatsapp:+447700900123")
    assert made.exit_code == 0

    bad = await run(cli, "whatsapp", "group", "invite", str(chat.id), "--number", "not a number")
    assert bad.exit_code == 1
    assert "is not a phone number" in bad.stderr
    missing = await run(cli, "whatsapp", "group", "invite", "999", "--number", "07700900123")
    assert missing.exit_code == 1
    assert "there is no chat 999" in missing.stderr


async def test_setup_says_what_to_configure_in_twilio_from_the_code(cli: CliRunner) -> None:
    shown = await run(cli, "whatsapp", "setup")

    assert shown.exit_code == 0, shown.output
    text = shown.stdout
    for path in (INCOMING_PATH, PRE_EVENT_PATH, POST_EVENT_PATH, STATUS_PATH):
        assert f"{PUBLIC_BASE_URL}{path}" in text
    assert "onMessageAdd:" in text
    assert "onMessageAdded, onParticipantAdded, onParticipantRemoved" in text
    for setting in ("TWILIO_TEMPLATE_ALERT", "TWILIO_TEMPLATE_REMINDER", "TWILIO_TEMPLATE_INVITE"):
        assert f"- {setting} = (not set)" in text
    assert f"{{{{3}}}} = {PUBLIC_BASE_URL}/flags/123" in text
    assert "Defer to sender's webhook" in text


async def test_without_twilio_every_command_says_what_to_set(
    database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.settings import get_settings

    monkeypatch.setenv("DATABASE_URL", database)
    for name in (*TWILIO, "TWILIO_API_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    runner = CliRunner()
    try:
        for args in (
            ["whatsapp", "setup"],
            ["whatsapp", "group", "create", "--class", "Year 3"],
            ["whatsapp", "group", "invite", "1", "--number", "07700900123"],
        ):
            refused = runner.invoke(main, args)
            assert refused.exit_code == 2, args
            assert "WhatsApp is not set up: set TWILIO_ACCOUNT_SID" in refused.stderr

        monkeypatch.setenv("TWILIO_ACCOUNT_SID", ACCOUNT_SID)
        monkeypatch.setenv("TWILIO_AUTH_TOKEN", AUTH_TOKEN)
        monkeypatch.setenv("TWILIO_WHATSAPP_FROM", SCHOOL_WHATSAPP)
        get_settings.cache_clear()
        no_address = runner.invoke(main, ["whatsapp", "setup"])
        assert no_address.exit_code == 2
        assert "set PUBLIC_BASE_URL" in no_address.stderr

        monkeypatch.setenv("TWILIO_WHATSAPP_FROM", "+441632960000")
        get_settings.cache_clear()
        wrong = runner.invoke(main, ["whatsapp", "setup"])
        assert wrong.exit_code == 2
        assert "TWILIO_WHATSAPP_FROM is a WhatsApp address like whatsapp:+44" in wrong.stderr
    finally:
        get_settings.cache_clear()
