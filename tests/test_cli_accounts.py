"""``schoolgate admin``: the first account, and rescuing one locked out of two-factor."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.cli import main
from tests.conftest import SCHOOL_FILE

PASSWORD = "a long enough passphrase"


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    from bot.settings import get_settings

    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
    get_settings.cache_clear()
    runner = CliRunner()
    assert runner.invoke(main, ["school", "load", str(SCHOOL_FILE)]).exit_code == 0
    yield runner
    get_settings.cache_clear()


def test_the_first_account_is_made_from_the_command_line(cli: CliRunner) -> None:
    made = cli.invoke(
        main,
        ["admin", "create", "--email", "Head@Peartree.example.sch.uk", "--role", "admin"],
        input=f"{PASSWORD}\n{PASSWORD}\n",
    )
    assert made.exit_code == 0, made.output
    assert "created head@peartree.example.sch.uk (admin)" in made.stdout
    assert "two-factor" in made.stdout.lower()
    listed = cli.invoke(main, ["admin", "list"])
    assert listed.stdout.split("\t")[:4] == [
        "head@peartree.example.sch.uk", "admin", "no 2FA", "active"
    ]  # fmt: skip


def test_a_short_password_or_a_second_account_for_one_address_is_refused(
    cli: CliRunner,
) -> None:
    short = cli.invoke(
        main,
        ["admin", "create", "--email", "a@example.sch.uk", "--role", "slt", "--password-stdin"],
        input="short\n",
    )
    assert short.exit_code == 1
    assert "at least 12 characters" in short.stderr
    args = ["admin", "create", "--email", "a@example.sch.uk", "--role", "slt", "--password-stdin"]
    assert cli.invoke(main, args, input=f"{PASSWORD}\n").exit_code == 0
    again = cli.invoke(main, args, input=f"{PASSWORD}\n")
    assert again.exit_code == 1
    assert "already an account" in again.stderr


def test_an_unknown_role_is_refused_by_name(cli: CliRunner) -> None:
    wrong = cli.invoke(main, ["admin", "create", "--email", "a@example.sch.uk", "--role", "head"])
    assert wrong.exit_code == 2
    assert "'head' is not one of 'admin', 'slt', 'dsl', 'viewer'" in wrong.output


def test_a_lost_phone_and_a_forgotten_password_are_rescued(cli: CliRunner) -> None:
    args = ["admin", "create", "--email", "dsl@example.sch.uk", "--role", "dsl", "--password-stdin"]
    assert cli.invoke(main, args, input=f"{PASSWORD}\n").exit_code == 0
    reset = cli.invoke(main, ["admin", "reset-two-factor", "--email", "dsl@example.sch.uk"])
    assert reset.exit_code == 0, reset.output
    new = cli.invoke(
        main,
        ["admin", "set-password", "--email", "dsl@example.sch.uk", "--password-stdin"],
        input="another long passphrase\n",
    )
    assert new.exit_code == 0, new.output
    nobody = cli.invoke(main, ["admin", "reset-two-factor", "--email", "nobody@example.sch.uk"])
    assert nobody.exit_code == 1
    assert "there is no account for nobody@example.sch.uk" in nobody.stderr
