"""Every message costs work linear in its length, whatever its shape.

Work is counted, not timed (this machine is shared and noisy): the number of Python lines the
engine executes to check one message, traced with ``sys.settrace``. A linear engine does about
eight times the work for eight times the characters; one that searched substrings or walked
back over the message for every word would do sixty-four times as much. Regular expressions run
in C, out of the tracer's sight: ``test_regexes_cannot_backtrack_quadratically`` keeps them to
shapes that scan each character a bounded number of times.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import UTC, datetime
from types import FrameType
from typing import Any

import pytest

from bench.adversarial import FAMILIES
from bot.policy import PolicyEngine
from bot.policy.message import ChatMessage, Person, ReplyTo, Role
from bot.policy_files import build_engine, load_lexicons
from tests.conftest import CONFIG_DIR, SCHOOL_FILE

SHORT, LONG = 512, 4096
# Linear work scales by LONG / SHORT = 8; allow for fixed costs and caches that favour neither.
MAX_GROWTH = 12.0


@pytest.fixture(scope="module")
def engine() -> PolicyEngine:
    return build_engine(SCHOOL_FILE, CONFIG_DIR)


def _message(text: str) -> ChatMessage:
    return ChatMessage(
        "m",
        text,
        datetime(2026, 11, 24, 19, 40, tzinfo=UTC),
        Person("p:1", "Pat Jones", Role.PARENT),
        reply_to=ReplyTo(Person("p:2", "Sam Lee", Role.PARENT), "what do you mean?"),
    )


def lines_executed(work: Callable[[], object]) -> int:
    count = 0

    def tracer(frame: FrameType, event: str, arg: Any) -> Any:
        nonlocal count
        if event == "line":
            count += 1
        return tracer

    previous = sys.gettrace()
    sys.settrace(tracer)
    try:
        work()
    finally:
        sys.settrace(previous)
    return count


def work_for(engine: PolicyEngine, text: str) -> int:
    message = _message(text)
    engine.classify(message)  # warm the caches first, as a running service has them
    return lines_executed(lambda: engine.classify(message))


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_work_grows_linearly_with_length(engine: PolicyEngine, family: str) -> None:
    build = FAMILIES[family]
    short, long = work_for(engine, build(SHORT)), work_for(engine, build(LONG))
    assert long <= MAX_GROWTH * max(short, 1), (family, short, long)


def test_the_counter_sees_quadratic_work() -> None:
    """The measure itself: a deliberately quadratic function fails the bound."""

    def quadratic(size: int) -> Callable[[], object]:
        return lambda: [j for i in range(size) for j in range(i)]

    short, long = lines_executed(quadratic(SHORT // 8)), lines_executed(quadratic(LONG // 8))
    assert long > MAX_GROWTH * short


# Patterns that match anywhere but cannot fail after consuming a run (so never rescan it).
_SCANNERS = {
    r"[a-z0-9]+(?:'[a-z]+)*|[^a-z0-9\s]",  # normalise._PIECES: every branch always succeeds
    r"([a-z])\1{3,}",  # normalise._REPEATS
    r"[0-9@$!|+]",  # normalise._HAS_LEET_CHAR
    r"[a-z]",  # normalise._LETTER
    r"[a-z0-9]+(?:'[a-z0-9]+)*",  # redaction._WORD
}
_ANCHORS = ("^", r"\b", "(?<", "(?:^|")


def _policy_regexes() -> list[tuple[str, str]]:
    import importlib
    import pkgutil
    import re

    import bot.policy

    found = []
    for module_info in pkgutil.walk_packages(bot.policy.__path__, "bot.policy."):
        module = importlib.import_module(module_info.name)
        for name, value in vars(module).items():
            if isinstance(value, re.Pattern) and isinstance(value.pattern, str):
                found.append((f"{module_info.name}.{name}", value.pattern))
    lexicons = load_lexicons(CONFIG_DIR / "lexicons")
    for name in lexicons.lists:
        for entry in lexicons[name]:
            if entry.startswith("re:"):
                found.append((f"lexicon {name}", entry[3:].strip()))
    return found


def test_regexes_cannot_backtrack_quadratically() -> None:
    """A regex searched through a message must start at a boundary (``^``, ``\\b`` or a
    look-behind), so that a long run of characters is entered once, not once per character, or
    be one of the reviewed scanners above. A new pattern fails here until someone has checked
    its shape."""
    unsafe = [
        (where, pattern)
        for where, pattern in _policy_regexes()
        if pattern not in _SCANNERS and not pattern.startswith(_ANCHORS)
    ]
    assert not unsafe
    assert len(_policy_regexes()) > 20  # the search found the patterns it is meant to check
