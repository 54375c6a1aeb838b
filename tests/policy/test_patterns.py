"""The lexicon pattern language."""

from __future__ import annotations

import pytest

from bot.policy.normalise import Normaliser
from bot.policy.patterns import PatternError, PhraseSet


def matches(
    patterns: list[str], text: str, classes: dict[str, list[str]] | None = None
) -> list[str]:
    phrases = PhraseSet("test", patterns, classes)
    normalised = Normaliser(phrases.words)(text)
    return [normalised.quote(h.first, h.last) for h in phrases.find(normalised)]


@pytest.mark.parametrize(
    ("pattern", "text", "found"),
    [
        ("miserable cow", "you miserable cow", ["miserable cow"]),
        ("miserable cow", "a miserable day with a cow", []),
        ("waste|wastes of space", "total wastes of space", ["wastes of space"]),
        ("fuck*", "fuckwit", ["fuckwit"]),
        ("ass", "assess the class as a group", []),  # whole words only
        ("ass", "what an ass", ["ass"]),
        ("ass", "what an asssss", ["asssss"]),  # a doubled letter matches longer runs
        ("idiot", "idiooooot", ["idiooooot"]),
        ("sen", "have you seen it", []),  # a double letter is not a stretched one
        ("make ... life hell", "make her bloody life hell", ["make her bloody life hell"]),
        ("make ... life hell", "make one two three four life hell", []),  # at most three
        ("make ... life hell", "make her. life hell", []),  # never across punctuation
        ("get a|an? grip", "get a grip", ["get a grip"]),
        ("get a|an? grip", "get grip", ["get grip"]),
        ("the (head teacher|deputy) said", "the head teacher said", ["the head teacher said"]),
        ("re:\\b\\d{3}\\b", "room 101 now", ["101"]),
    ],
)
def test_pattern_language(pattern: str, text: str, found: list[str]) -> None:
    assert matches([pattern], text) == found


def test_classes_expand_to_their_words_and_phrases() -> None:
    classes = {"staff_name": ["mrs patel", "patel"], "you": ["you", "u"]}
    assert matches(["{you} ... {staff_name}"], "u and mrs patel", classes) == ["u and mrs patel"]


@pytest.mark.parametrize(
    ("pattern", "problem"),
    [
        ("... idiot", "must start with a word"),
        ("idiot ...", "must end with a word"),
        ("{nope} idiot", "unknown class"),
        ("re:(unclosed", "not a valid regex"),
        ("(head teacher", "unbalanced brackets"),
        ("(no control over (your|his) kids)", "cannot be nested"),
    ],
)
def test_bad_patterns_are_reported(pattern: str, problem: str) -> None:
    with pytest.raises(PatternError, match=problem):
        PhraseSet("test", [pattern])
