"""The ``schoolgate`` command group; each family of commands lives in its own module."""

from __future__ import annotations

import click

from bot import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="schoolgate")
def main() -> None:
    """Schoolgate: a consent-first guardian for school parent group chats."""


def _register_commands() -> None:
    from bot.cli import (
        account_commands,
        admin_commands,
        learning_commands,
        policy_commands,
        serve_command,
        whatsapp_commands,
        worker_command,
    )

    for module in (
        policy_commands,
        learning_commands,
        admin_commands,
        account_commands,
        serve_command,
        worker_command,
        whatsapp_commands,
    ):
        module.register(main)


_register_commands()
