"""Obfuscated abuse is caught about as well as plain abuse.

Every abusive message in the labelled hold-out sets is checked plainly, then again with the
words that gave it away disguised the ways people disguise them. The share still caught must
stay close to the plain share.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable

import pytest

from bot.channels.jsonl import parse_line
from bot.policy import ChatMessage, PolicyEngine
from bot.policy_files import build_engine
from tests.conftest import CONFIG_DIR, DATA

ABUSE = {"abusive-to-parent", "abusive-about-others"}
LEET = str.maketrans({"i": "1", "o": "0", "e": "3", "a": "4", "s": "5"})
LOOK_ALIKES = str.maketrans({"a": "а", "e": "е", "o": "о", "c": "с", "p": "р", "i": "і"})


def leetspeak(word: str) -> str:
    return word.translate(LEET)


def spaced(word: str) -> str:
    return " ".join(word)


def dotted(word: str) -> str:
    return ".".join(word)


def zero_width(word: str) -> str:
    return "\u200b".join(word)


def look_alikes(word: str) -> str:
    return word.translate(LOOK_ALIKES)


def masked(word: str) -> str:
    return word[0] + "*" * (len(word) - 2) + word[-1] if len(word) > 3 else word


DISGUISES: dict[str, Callable[[str], str]] = {
    "leetspeak": leetspeak,
    "spaced": spaced,
    "dotted": dotted,
    "zero-width": zero_width,
    "look-alikes": look_alikes,
    "masked": masked,
}


@pytest.fixture(scope="module")
def engine() -> PolicyEngine:
    return build_engine(DATA / "school-holdout.yaml", CONFIG_DIR)


def abusive_messages() -> list[ChatMessage]:
    found = []
    for name in ("holdout.jsonl", "holdout2.jsonl"):
        for line in (DATA / name).read_text(encoding="utf-8").splitlines():
            if ABUSE & set(json.loads(line)["expected"]):
                found.append(parse_line(line)[1])
    return found


def caught(engine: PolicyEngine, message: ChatMessage) -> bool:
    return bool(ABUSE & {str(rule) for rule in engine.classify(message).rules})


def disguise(engine: PolicyEngine, message: ChatMessage, how: Callable[[str], str]) -> ChatMessage:
    """The message with its rude words disguised, as people disguise them: the insults and
    swear words in the evidence, not the ordinary words around them."""
    evidence = " ".join(
        e.evidence for e in engine.classify(message).explanations if str(e.rule) in ABUSE
    )
    rude = set(engine.abuse_vocabulary())
    words = {w for w in re.findall(r"[A-Za-z]{3,}", evidence) if w.lower() in rude}
    text = re.sub(r"[A-Za-z]{3,}", lambda m: how(m[0]) if m[0] in words else m[0], message.text)
    return ChatMessage(
        message.id, text, message.sent_at, message.sender, message.chat_id, message.chat_title,
        message.mentions, message.reply_to, message.media,
    )  # fmt: skip


@pytest.mark.parametrize("name", list(DISGUISES))
def test_disguised_abuse_is_caught_as_well_as_plain(engine: PolicyEngine, name: str) -> None:
    plain = [m for m in abusive_messages() if caught(engine, m)]
    disguised = [d for m in plain if (d := disguise(engine, m, DISGUISES[name])).text != m.text]
    assert len(disguised) >= 15  # enough messages with a rude word to disguise
    missed = [d.text for d in disguised if not caught(engine, d)]
    share = 1 - len(missed) / len(disguised)
    assert share >= 0.85, f"{name}: {len(missed)} of {len(disguised)} missed: {missed}"


def test_abuse_in_leetspeak_throughout_is_caught_as_well_as_plain(engine: PolicyEngine) -> None:
    """Every word of the message in leetspeak, not just the rude ones ("y0u 4r3 4 j0k3")."""
    plain = [m for m in abusive_messages() if caught(engine, m)]
    leet = [
        ChatMessage(
            m.id,
            re.sub(r"[A-Za-z]{2,}", lambda w: leetspeak(w[0]), m.text),
            m.sent_at,
            m.sender,
            m.chat_id,
            m.chat_title,
            m.mentions,
            m.reply_to,
            m.media,
        )
        for m in plain
    ]
    missed = [d.text for d in leet if not caught(engine, d)]
    share = 1 - len(missed) / len(leet)
    assert share >= 0.85, f"{len(missed)} of {len(leet)} missed: {missed}"
