"""Reading what a participant typed: a join code, AGREE, a command."""

from __future__ import annotations

import pytest

from bot.channels.whatsapp.context import command_of, is_agree, join_code_of
from bot.services.registration import new_code


@pytest.mark.parametrize("in_group", [False, True])
def test_a_join_code_is_read_however_it_is_typed(in_group: bool) -> None:
    code = new_code()
    assert join_code_of(f"JOIN {code}", in_group=in_group) == code
    assert join_code_of(f"join {code.lower()}.", in_group=in_group) == code.lower()
    assert join_code_of(f"Join {code.replace('-', ' ')}", in_group=in_group) == code.replace(
        "-", " "
    )
    assert join_code_of(f"JOIN {code.replace('-', '')}!", in_group=in_group) == code.replace(
        "-", ""
    )
    assert join_code_of("JOIN", in_group=in_group) == ""


@pytest.mark.parametrize(
    "text", ["Join us tomorrow!", "join the PTA at 3", "Join everyone!", "joining in"]
)
def test_words_after_join_are_no_code_in_a_group(text: str) -> None:
    assert join_code_of(text, in_group=True) is None


def test_at_the_schools_number_a_mistyped_code_still_reads_as_one() -> None:
    """So the parent hears the code is not valid, rather than having it filed as a report."""
    assert join_code_of("JOIN ABC0-1234") == "ABC0-1234"
    assert join_code_of("JOIN ABC0-1234", in_group=True) is None
    assert join_code_of("Join us tomorrow!") is None


def test_agree_and_commands() -> None:
    assert is_agree("I agree.")
    assert is_agree("AGREE")
    assert not is_agree("I agree with Sam")
    command = command_of("/report@schoolgate_bot he said this")
    assert command is not None
    assert (command.name, command.argument) == ("report", "he said this")
    assert command_of("no command") is None
