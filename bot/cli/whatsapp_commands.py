"""``schoolgate whatsapp``: hosted WhatsApp class groups (making one, inviting a number) and what
to set up in Twilio, worded from the code's own paths, filters and templates."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

import click

from bot.cli.common import reports_errors
from bot.errors import BadInputError, ConfigError
from bot.settings import Settings, get_settings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from bot.channels.whatsapp.runtime import WhatsAppSettings
    from bot.channels.whatsapp.twilio_client import WhatsAppApi
    from bot.services.whatsapp_groups import NewGroup
    from bot.store.models import Chat, JoinRequest, OutboxMessage

# Twilio's client and the services are imported inside the commands, as in the other modules.

T = TypeVar("T")

NOT_SET_UP = (
    "WhatsApp is not set up: set TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and TWILIO_WHATSAPP_FROM "
    "(see the README's WhatsApp section)"
)
CHAT_ID = click.IntRange(1, 2**31 - 1)
"""A record's id (``bot.store.models.MAX_ID``; a larger one must not reach PostgreSQL)."""
EXAMPLE_SCHOOL = "Peartree Spring Primary School"
EXAMPLE_GROUP = "Year 3 Parents"


def _configured(settings: Settings) -> WhatsAppSettings:
    """The WhatsApp settings, or a clear error naming what is missing or wrong."""
    from bot.channels.whatsapp.runtime import WhatsAppSettings
    from bot.runtime import check_twilio

    check_twilio(settings)
    configured = WhatsAppSettings.of(settings)
    if configured is None:
        raise ConfigError(NOT_SET_UP)
    return configured


def _run(work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    from bot.cli.database import in_transaction

    settings = get_settings()
    return asyncio.run(in_transaction(settings.database_url, work, settings.migrations_dir))


def _run_with_twilio(
    configured: WhatsAppSettings, work: Callable[[AsyncSession, WhatsAppApi], Awaitable[T]]
) -> T:
    """One unit of work on the database, with Twilio's API at hand."""
    from bot.channels.whatsapp.twilio_client import WhatsAppApi
    from bot.cli.database import in_transaction

    settings = get_settings()

    async def run() -> T:
        async with WhatsAppApi.connect(
            configured.account_sid, configured.auth_token, configured.api_base_url
        ) as api:

            async def with_api(session: AsyncSession) -> T:
                return await work(session, api)

            return await in_transaction(settings.database_url, with_api, settings.migrations_dir)

    return asyncio.run(run())


@click.group()
def whatsapp() -> None:
    """WhatsApp through Twilio: hosted class groups, and what to set up in Twilio."""


@whatsapp.group()
def group() -> None:
    """Hosted WhatsApp class groups on the school's number."""


@group.command("create")
@click.option("--class", "class_name", required=True, help='The class, e.g. "Year 3".')
@click.option("--school", "slug", help="The school (needed when there are several).")
@reports_errors
def group_create(class_name: str, slug: str | None) -> None:
    """Make a hosted WhatsApp group for a class; parents join with its code (last line)."""
    from bot.cli.admin_commands import _one_school
    from bot.services.chat_admin import create_whatsapp_group, display_number
    from bot.store.models import utcnow
    from bot.texts import load_telegram_texts

    settings = get_settings()
    configured = _configured(settings)
    notice = load_telegram_texts(settings.config_dir).notice

    async def work(session: AsyncSession, api: WhatsAppApi) -> NewGroup:
        school = await _one_school(session, slug)
        return await create_whatsapp_group(
            session, api, school, class_name, actor="cli", notice=notice, now=utcnow()
        )

    made = _run_with_twilio(configured, work)
    number = display_number(configured.whatsapp_from)
    click.echo(
        f"WhatsApp group {made.chat.title!r} made for {made.chat.class_name} (chat {made.chat.id})."
    )
    click.echo(f"Each parent sends JOIN <code> to {number} on WhatsApp, then replies AGREE.")
    click.echo("The code is shown only this once; make a new one on the group's admin page.")
    click.echo(made.code)


@group.command("invite")
@click.argument("chat_id", type=CHAT_ID)
@click.option("--number", required=True, help="The parent's mobile number, e.g. 07700 900123.")
@reports_errors
def group_invite(chat_id: int, number: str) -> None:
    """Invite a parent's number to a hosted group: they reply JOIN, then AGREE."""
    from bot.services.chat_admin import display_number, invite_parent
    from bot.store.models import utcnow
    from bot.store.repositories.chats import ChatRepository
    from bot.store.repositories.schools import SchoolRepository
    from bot.texts import load_whatsapp_texts

    settings = get_settings()
    _configured(settings)
    texts = load_whatsapp_texts(settings.config_dir)

    async def work(session: AsyncSession) -> tuple[Chat, JoinRequest]:
        chat = await ChatRepository(session).get(chat_id)
        school = (
            await SchoolRepository(session).get(chat.school_id) if chat and chat.school_id else None
        )
        if chat is None or school is None:
            raise BadInputError(
                f"there is no chat {chat_id} at a school (see: schoolgate chats list)"
            )
        invited = await invite_parent(
            session, chat, school, number, actor="cli", texts=texts, now=utcnow()
        )
        return chat, invited

    chat, invited = _run(work)
    shown = display_number(invited.address)
    click.echo(
        f"Invited {shown} to {chat.title}: Schoolgate (serve or worker) sends the invitation; "
        "they join by replying JOIN, then AGREE to the notice."
    )


@whatsapp.command("setup")
@reports_errors
def setup() -> None:
    """What to configure in Twilio for this installation (from its settings)."""
    for line in setup_lines(get_settings()):
        click.echo(line)


def setup_lines(settings: Settings) -> list[str]:
    """The Twilio console's side of WhatsApp, as this installation's settings and code need it."""
    from bot.channels.whatsapp.delivery import Templates, status_url, template_for
    from bot.channels.whatsapp.paths import INCOMING_PATH, POST_EVENT_PATH, PRE_EVENT_PATH
    from bot.channels.whatsapp.twilio_client import POST_EVENT_FILTERS, PRE_EVENT_FILTERS
    from bot.services.whatsapp_groups import MAX_PARTICIPANTS

    configured = _configured(settings)
    base = configured.public_base_url
    if base is None:
        raise ConfigError(
            "set PUBLIC_BASE_URL to Schoolgate's public https address (e.g. "
            "https://schoolgate.example.sch.uk): Twilio posts every WhatsApp message there"
        )
    service = configured.conversations_service_sid or (
        "the account's default (TWILIO_CONVERSATIONS_SERVICE_SID chooses another)"
    )
    templates = Templates(
        alert=settings.twilio_template_alert,
        reminder=settings.twilio_template_reminder,
        invite=settings.twilio_template_invite,
    )
    lines = [
        f"Twilio for Schoolgate at {base}, WhatsApp number {configured.whatsapp_from}",
        "",
        "1. The WhatsApp sender (Messaging > Senders > WhatsApp senders):",
        "   - Webhook URL for incoming messages (HTTP POST):",
        f"       {base}{INCOMING_PATH}",
        "   - Fallback URL (HTTP POST): the same URL. A second try is safe: each message is",
        "     handled once, and a repeat gets the first answer.",
        f"       {base}{INCOMING_PATH}",
        "   - Status callback URL (optional: each message Schoolgate sends asks for it):",
        f"       {status_url(base)}",
        "   If the sender belongs to a Messaging Service, set the service's incoming messages to",
        '   "Defer to sender\'s webhook", never "Autocreate a Conversation": messages from people',
        "   not in a group must reach Schoolgate (joining, agreeing and reports).",
        "",
        f"2. The Conversation Service: {service}.",
        "   Schoolgate sets its webhooks itself each time it starts (method POST):",
        f"   - Pre-event URL ({', '.join(PRE_EVENT_FILTERS)}: each group message is checked",
        "     there before anyone gets it):",
        f"       {base}{PRE_EVENT_PATH}",
        f"   - Post-event URL ({', '.join(POST_EVENT_FILTERS)}):",
        f"       {base}{POST_EVENT_PATH}",
        f"   A group holds at most {MAX_PARTICIPANTS} WhatsApp participants (Twilio's limit).",
        "",
        "3. Approved WhatsApp templates (Content Template Builder), for messages outside",
        "   WhatsApp's 24-hour window; set each one's Content SID (HX...):",
    ]
    for what, message in _template_examples(settings):
        setting, sid, variables = template_for(message, EXAMPLE_SCHOOL, templates, base)
        lines.append(f"   - {setting} = {sid or '(not set)'}")
        lines.append(f"     for {what}; its variables, e.g.:")
        lines.extend(f"       {{{{{name}}}}} = {value}" for name, value in variables.items())
    lines += [
        "",
        "4. The settings: TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_WHATSAPP_FROM,",
        "   PUBLIC_BASE_URL, and optionally TWILIO_CONVERSATIONS_SERVICE_SID, TWILIO_SMS_FROM",
        "   and the three TWILIO_TEMPLATE_* above. Restart Schoolgate after changing them.",
    ]
    return lines


def _template_examples(settings: Settings) -> list[tuple[str, OutboxMessage]]:
    """A message of each kind that goes as a template outside the window."""
    from bot.store.models import OutboxMessage
    from bot.texts import load_whatsapp_texts

    invitation = load_whatsapp_texts(settings.config_dir).invite.format(
        school=EXAMPLE_SCHOOL, group=EXAMPLE_GROUP
    )

    def row(text: str, purpose: str, flag_id: int | None = None) -> OutboxMessage:
        return OutboxMessage(
            idempotency_key="example", channel="whatsapp", recipient="whatsapp:+447700900123",
            text=text, purpose=purpose, flag_id=flag_id,
        )  # fmt: skip

    return [
        ("alerts and digests to staff", row(f"High concern in {EXAMPLE_GROUP}\n...", "alert", 123)),
        (
            "reminders, removal and meeting requests and notices to parents",
            row("Hello Pat, please contact staff through the school office.", "reminder"),
        ),
        ("an invitation to a group by number", row(invitation, "invite")),
    ]


def register(main: click.Group) -> None:
    main.add_command(whatsapp)
