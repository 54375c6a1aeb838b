"""``schoolgate serve``: migrate the database, then run the backend and the bots."""

from __future__ import annotations

import asyncio
import logging

import click

from bot.cli.common import reports_errors
from bot.settings import get_settings


@click.command()
@click.option("--host", help="Address to listen on (default from HOST, 127.0.0.1).")
@click.option("--port", type=int, help="Port to listen on (default from PORT, 8000).")
@reports_errors
def serve(host: str | None, port: int | None) -> None:
    """Run Schoolgate: the backend and API on one port, and the bots whose tokens are set."""
    import uvicorn

    from api.app import create_app
    from bot.cli.database import describe_database, migrate

    settings = get_settings()
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(levelname)s %(name)s: %(message)s"
    )
    click.echo(f"==> database: {describe_database(settings.database_url)}; migrating")
    asyncio.run(migrate(settings.database_url, settings.migrations_dir))
    if settings.telegram_bot_token is None:
        click.echo(
            "==> Telegram: off. To turn it on, create a bot with @BotFather and set "
            "TELEGRAM_BOT_TOKEN (in the environment or .env)."
        )
    else:
        mode = (
            f"webhook at {settings.public_base_url}" if settings.public_base_url else "long polling"
        )
        click.echo(f"==> Telegram: on ({mode})")
    if settings.observe_only:
        click.echo("==> observe-only: recording everything, saying nothing in chats")
    app = create_app(settings)
    bind_host, bind_port = host or settings.host, port or settings.port
    click.echo(f"==> serving on http://{bind_host}:{bind_port} (API docs at /docs)")
    uvicorn.run(
        app,
        host=bind_host,
        port=bind_port,
        log_level=settings.log_level.lower(),
        # Behind a TLS-terminating proxy the request's scheme and client come from its
        # X-Forwarded-* headers, believed only from FORWARDED_ALLOW_IPS (secure cookies, HSTS).
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
    )


def register(main: click.Group) -> None:
    main.add_command(serve)
