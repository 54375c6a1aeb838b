"""``schoolgate admin``: accounts for the admin pages, from the command line.

The first account is made here; later ones on the Accounts page. The commands also rescue an
account locked out of two-factor sign-in (a lost phone) when no administrator can.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from bot.cli.admin_commands import _one_school, _run
from bot.cli.common import reports_errors
from bot.errors import NotFoundError

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from bot.store.models import User

ROLES = ("admin", "slt", "dsl", "viewer")


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    value: str = click.prompt(
        "Password (at least 12 characters)", hide_input=True, confirmation_prompt=True
    )
    return value


@click.group()
def admin() -> None:
    """Accounts for the admin pages (staff who sign in)."""


@admin.command("create")
@click.option("--email", required=True, help="The sign-in address.")
@click.option("--role", type=click.Choice(ROLES), required=True, help="What the account may do.")
@click.option("--name", help="The person's name (default: from the e-mail address).")
@click.option("--school", "slug", help="The school (needed when there are several).")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@reports_errors
def admin_create(
    email: str, role: str, name: str | None, slug: str | None, password_stdin: bool
) -> None:
    """Make an account. admin, slt and dsl set up two-factor sign-in the first time they sign in."""
    from bot.services.accounts import create_user
    from bot.store.models import UserRole, utcnow

    password = _password(password_stdin)
    display = name or email.split("@")[0].replace(".", " ").title()

    async def work(session: AsyncSession) -> str:
        school = await _one_school(session, slug)
        user = await create_user(
            session, school, email=email, name=display, role=UserRole(role),
            password=password, actor="cli", now=utcnow(),
        )  # fmt: skip
        return f"created {user.email} ({role}) for {school.name}"

    click.echo(_run(work))
    if role != "viewer":
        click.echo("Two-factor sign-in is set up at the first sign-in: have an authenticator app.")
    click.echo("Sign in at /login (http://127.0.0.1:8000/login with make run).")


@admin.command("list")
@click.option("--school", "slug", help="The school (needed when there are several).")
@reports_errors
def admin_list(slug: str | None) -> None:
    """Every account of the school: e-mail, role, two-factor, active."""
    from bot.store.repositories.accounts import UserRepository

    async def work(session: AsyncSession) -> list[str]:
        school = await _one_school(session, slug)
        return [
            f"{u.email}\t{u.role}\t{'2FA' if u.totp_confirmed_at else 'no 2FA'}\t"
            f"{'active' if u.active else 'disabled'}\t{u.name}"
            for u in await UserRepository(session).for_school(school.id)
        ]

    for line in _run(work):
        click.echo(line)


@admin.command("set-password")
@click.option("--email", required=True)
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@reports_errors
def admin_set_password(email: str, password_stdin: bool) -> None:
    """Set a new password for an account and sign it out everywhere."""
    from bot.services import user_sessions
    from bot.services.accounts import set_password
    from bot.store.models import utcnow

    password = _password(password_stdin)

    async def work(session: AsyncSession) -> None:
        user = await _account(session, email)
        await set_password(session, user, password, actor="cli", now=utcnow())
        await user_sessions.end_all(session, user, utcnow())

    _run(work)
    click.echo(f"the password of {email} is changed; its sessions are signed out")


@admin.command("reset-two-factor")
@click.option("--email", required=True)
@reports_errors
def admin_reset_two_factor(email: str) -> None:
    """Forget an account's authenticator app (a lost phone): it sets up a new one at sign-in."""
    from bot.services import user_sessions
    from bot.services.accounts import reset_two_factor
    from bot.store.models import utcnow

    async def work(session: AsyncSession) -> None:
        user = await _account(session, email)
        await reset_two_factor(session, user, actor="cli")
        await user_sessions.end_all(session, user, utcnow())

    _run(work)
    click.echo(f"two-factor sign-in of {email} is reset; it is set up again at the next sign-in")


async def _account(session: AsyncSession, email: str) -> User:
    from bot.store.repositories.accounts import UserRepository

    user = await UserRepository(session).by_email(email)
    if user is None:
        raise NotFoundError(f"there is no account for {email}")
    return user


def register(main: click.Group) -> None:
    main.add_command(admin)
