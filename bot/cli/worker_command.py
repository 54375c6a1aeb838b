"""``schoolgate worker``: migrate the database, then deliver the outbox (and run the retention
purge) until stopped.

``serve`` delivers the outbox too; a worker is for delivering from another process or machine
(or several: they share the work through the database and never send a row twice at once). It
delivers on every channel configured: Telegram, e-mail, WhatsApp (and its groups) and SMS.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

import click

from bot.cli.common import reports_errors
from bot.errors import ConfigError
from bot.settings import Settings, get_settings


@click.command()
@reports_errors
def worker() -> None:
    """Deliver queued messages (alerts, reminders, notices) and purge what is past its retention
    period, until Ctrl-C; receive nothing."""
    from bot.cli.database import describe_database, migrate

    settings = get_settings()
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(levelname)s %(name)s: %(message)s"
    )
    click.echo(f"==> database: {describe_database(settings.database_url)}; migrating")
    asyncio.run(migrate(settings.database_url, settings.migrations_dir))
    asyncio.run(_deliver_until_stopped(settings))
    click.echo("==> worker stopped")


async def _deliver_until_stopped(settings: Settings) -> None:
    from telegram import Bot
    from telegram.error import InvalidToken, TelegramError

    from bot.channels.telegram.delivery import CHANNEL, TelegramSender, telegram_bot
    from bot.channels.whatsapp.twilio_client import WhatsAppApi
    from bot.jobs import Housekeeping
    from bot.runtime import channel_senders, check_twilio, connect_twilio, retention_defaults
    from bot.services.dispatcher import Dispatcher, Sender
    from bot.store.db import create_engine, session_factory
    from bot.store.repositories.outbox import OutboxRepository

    check_twilio(settings)
    engine = create_engine(settings.database_url)
    senders: dict[str, Sender] = {}
    bot: Bot | None = None
    twilio: WhatsAppApi | None = None
    try:
        if settings.telegram_bot_token is None:
            click.echo(
                "==> Telegram: off (no TELEGRAM_BOT_TOKEN): Telegram messages wait in the "
                "outbox for a process that has the token"
            )
        else:
            bot = telegram_bot(
                settings.telegram_bot_token.get_secret_value(), settings.telegram_api_base_url
            )
            try:
                await bot.initialize()
            except InvalidToken as error:
                raise ConfigError(f"Telegram refused TELEGRAM_BOT_TOKEN: {error}") from None
            except TelegramError as error:
                raise ConfigError(
                    f"cannot reach Telegram at {settings.telegram_api_base_url}: {error}"
                ) from None
            senders[CHANNEL] = TelegramSender(bot)
            click.echo(f"==> Telegram: delivering as @{bot.username}")
        sessions = session_factory(engine)
        twilio = connect_twilio(settings)
        others = channel_senders(settings, sessions, twilio)
        senders.update(others)
        click.echo(
            "==> also delivering on: " + ", ".join(sorted(others))
            if others
            else "==> e-mail, WhatsApp and SMS: off (no SMTP_URL, no TWILIO_* senders)"
        )
        async with sessions() as session:
            counts = await OutboxRepository(session).counts()
        click.echo("==> outbox: " + ", ".join(f"{n} {status}" for status, n in counts.items()))
        dispatcher = Dispatcher(sessions, senders)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        click.echo(
            "==> delivering; Ctrl-C to stop (the batch in hand is finished first)"
            if senders
            else "==> nothing to deliver on; Ctrl-C to stop"
        )
        housekeeping = Housekeeping(
            sessions, retention_defaults(settings), every=settings.purge_every_minutes * 60
        )
        try:
            await asyncio.gather(dispatcher.run_forever(stop), housekeeping.run_forever(stop))
        finally:
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)
    finally:
        if bot is not None:
            with contextlib.suppress(TelegramError):
                await bot.shutdown()
        if twilio is not None:
            await twilio.aclose()
        await engine.dispose()


def register(main: click.Group) -> None:
    main.add_command(worker)
