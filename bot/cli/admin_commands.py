"""Commands for the school's administrators: the database, schools, chats and flags."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from bot.cli.common import FILE, reports_errors
from bot.errors import BadInputError
from bot.settings import get_settings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from bot.store.models import Chat, School

# Database and service modules are imported inside the commands: `schoolgate classify` should
# not pay for loading SQLAlchemy and Alembic at start-up.

T = TypeVar("T")


def _run(work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """One unit of work on the configured (and migrated) database."""
    from bot.cli.database import in_transaction

    settings = get_settings()
    return asyncio.run(in_transaction(settings.database_url, work, settings.migrations_dir))


@click.group()
def db() -> None:
    """The database."""


@db.command("upgrade")
@reports_errors
def db_upgrade() -> None:
    """Bring the database to the newest schema (Alembic)."""
    from bot.cli.database import describe_database, migrate

    settings = get_settings()
    url = settings.database_url
    asyncio.run(migrate(url, settings.migrations_dir))
    click.echo(f"{describe_database(url)} is up to date")


@click.group()
def school() -> None:
    """Work with school files."""


@school.command("load")
@click.argument("school_file", type=FILE)
@reports_errors
def school_load(school_file: Path) -> None:
    """Seed or update the database from a school file (its staff included)."""
    from bot.policy_files import load_school
    from bot.services.schools import load_school as seed_school

    config = load_school(school_file)

    async def work(session: AsyncSession) -> School:
        return await seed_school(session, config, "cli", school_file)

    loaded = _run(work)
    click.echo(f"loaded {loaded.name} ({len(config.staff)} staff) as school '{loaded.slug}'")


async def _one_school(session: AsyncSession, slug: str | None) -> School:
    from bot.store.repositories.schools import SchoolRepository

    schools = await SchoolRepository(session).all()
    if slug is not None:
        chosen = [s for s in schools if s.slug == slug]
        if not chosen:
            raise BadInputError(
                f"there is no school '{slug}' (load one with: schoolgate school load)"
            )
        return chosen[0]
    if len(schools) != 1:
        names = ", ".join(s.slug for s in schools) or "none yet: run schoolgate school load FILE"
        raise BadInputError(f"say which school with --school ({names})")
    return schools[0]


@click.group()
def chats() -> None:
    """Chats the bot is in: registration codes and consent."""


@chats.command("invite")
@click.option("--class", "class_name", required=True, help='The class, e.g. "Year 3".')
@click.option("--school", "slug", help="The school (needed when there are several).")
@click.option("--hours", type=float, help="How long the code works (default: the setting).")
@reports_errors
def chats_invite(class_name: str, slug: str | None, hours: float | None) -> None:
    """Make a single-use registration code; a group admin sends /register CODE in the chat."""
    from bot.services.registration import create_code
    from bot.store.models import utcnow

    settings = get_settings()
    valid_for = timedelta(hours=hours or settings.registration_code_hours)

    async def work(session: AsyncSession) -> str:
        school = await _one_school(session, slug)
        return await create_code(session, school, class_name, "cli", valid_for, utcnow())

    code = _run(work)
    click.echo(
        f"Registration code for {class_name}, valid for {valid_for.total_seconds() / 3600:g} hours."
    )
    click.echo("A group admin sends this in the chat: /register <code>")
    click.echo(code)


@chats.command("list")
@reports_errors
def chats_list() -> None:
    """Every chat with its school, status and consent coverage."""
    from bot.services import consent
    from bot.store.repositories.chats import ChatRepository
    from bot.store.repositories.schools import SchoolRepository

    async def work(session: AsyncSession) -> list[str]:
        lines = []
        for school in await SchoolRepository(session).all():
            for chat in await ChatRepository(session).for_school(school.id):
                cover = await consent.coverage(session, chat)
                warning = (
                    ""
                    if chat.bot_can_read_all
                    else ("\tTHE BOT CANNOT SEE MESSAGES: make it a group admin")
                )
                lines.append(
                    f"{chat.id}\t{chat.title}\t{chat.class_name or '-'}\t{chat.status}\t"
                    f"{cover.consented} of {cover.members} consented{warning}"
                )
        return lines

    for line in _run(work):
        click.echo(line)


async def _chat(session: AsyncSession, chat_id: int) -> Chat:
    from bot.store.repositories.chats import ChatRepository

    chat = await ChatRepository(session).get(chat_id)
    if chat is None:
        raise BadInputError(f"there is no chat {chat_id} (see: schoolgate chats list)")
    return chat


@chats.command("close")
@click.argument("chat_id", type=int)
@click.option("--reason", required=True, help="Why; the chat's members are told it.")
@click.option("--by", "by", required=True, help="The member of SLT asking, e.g. Mrs Anita Patel.")
@click.option("--grace-hours", type=float, default=24, show_default=True)
@reports_errors
def chats_close(chat_id: int, reason: str, by: str, grace_hours: float) -> None:
    """Ask for a chat to be closed: a notice, read-only after the grace period, the bot leaves."""
    from bot.services.closure import request_closure
    from bot.store.models import utcnow

    async def work(session: AsyncSession) -> str:
        chat = await _chat(session, chat_id)
        closure = await request_closure(
            session, chat, reason, by, timedelta(hours=grace_hours), utcnow()
        )
        until = f"{closure.grace_until:%Y-%m-%d %H:%M} UTC"
        return f"closing {chat.title}: the notice goes now, read-only from {until}"

    click.echo(_run(work))


@chats.command("cancel-close")
@click.argument("chat_id", type=int)
@click.option("--by", "by", required=True, help="The member of SLT cancelling it.")
@reports_errors
def chats_cancel_close(chat_id: int, by: str) -> None:
    """Stop a closure under way (and tell the chat, if it was told of the closure)."""
    from bot.services.closure import cancel_closure
    from bot.store.models import utcnow
    from bot.texts import load_telegram_texts

    texts = load_telegram_texts(get_settings().config_dir)

    async def work(session: AsyncSession) -> str:
        chat = await _chat(session, chat_id)
        await cancel_closure(session, chat, by, utcnow(), texts=texts)
        return f"the closure of {chat.title} is cancelled"

    click.echo(_run(work))


@click.group()
def staff() -> None:
    """Staff accounts: linking Telegram to receive alerts."""


@staff.command("link-code")
@click.option(
    "--name", required=True, help='The staff member, as in the school file, e.g. "Mrs Anita Patel".'
)
@click.option("--school", "slug", help="The school (needed when there are several).")
@click.option("--hours", type=float, default=72, show_default=True, help="How long the code works.")
@reports_errors
def staff_link_code(name: str, slug: str | None, hours: float) -> None:
    """A one-time code the staff member sends the bot privately (/link CODE) to get alerts."""
    from bot.services.staff_links import create_link_code
    from bot.store.models import utcnow
    from bot.store.repositories.schools import SchoolRepository

    async def work(session: AsyncSession) -> str:
        school = await _one_school(session, slug)
        members = await SchoolRepository(session).staff(school.id)
        member = next((m for m in members if m.name.lower() == name.strip().lower()), None)
        if member is None:
            known = ", ".join(m.name for m in members)
            raise BadInputError(f"there is no staff member '{name}' at {school.name} ({known})")
        return await create_link_code(session, member, timedelta(hours=hours), utcnow())

    code = _run(work)
    click.echo(f"Link code for {name}, valid for {hours:g} hours.")
    click.echo("In Telegram, open a private chat with the bot and send: /link <code>")
    click.echo(code)


@click.group()
def flags() -> None:
    """Flagged messages."""


@flags.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per flag.")
@reports_errors
def flags_list(as_json: bool) -> None:
    """Every flag: id, chat, sender, rules, severity, status, created_at."""
    from bot.store.repositories.chats import ChatRepository
    from bot.store.repositories.flags import FlagRepository
    from bot.store.repositories.members import MemberRepository

    async def work(session: AsyncSession) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        chats_repo, members = ChatRepository(session), MemberRepository(session)
        for flag in await FlagRepository(session).listing():
            chat = await chats_repo.get(flag.chat_id)
            sender = await members.get(flag.member_id)
            found.append(
                {
                    "id": flag.id,
                    "chat": chat.title if chat else None,
                    "sender": sender.display_name if sender else None,
                    "rules": [r.rule for r in flag.reasons],
                    "severity": flag.severity,
                    "status": str(flag.status),
                    "created_at": flag.created_at.isoformat(),
                }
            )
        return found

    for flag in _run(work):
        if as_json:
            click.echo(json.dumps(flag, ensure_ascii=False))
        else:
            rules = ", ".join(flag["rules"])
            click.echo(
                f"{flag['id']}\t{flag['severity']}\t{flag['status']}\t{flag['chat']}\t{rules}"
            )


def register(main: click.Group) -> None:
    for group in (db, chats, staff, flags):
        main.add_command(group)
    existing = main.commands.get("school")
    if isinstance(existing, click.Group):
        existing.add_command(school_load)
    else:
        main.add_command(school)
