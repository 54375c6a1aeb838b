"""Normalisation undoes obfuscation without inventing rude words in ordinary text."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.policy.normalise import Kind, Normaliser, fold, skeleton, squeeze

VOCABULARY = ["idiot", "cow", "fuck", "fucking", "shitty", "bitch", "stupid", "slag", "twat"]


@pytest.fixture(scope="module")
def normalise() -> Normaliser:
    return Normaliser(VOCABULARY, masked_words=VOCABULARY)


@pytest.mark.parametrize(
    ("written", "normalised"),
    [
        ("ＦＵＣＫ", "fuck"),  # full-width forms (NFKC)
        ("𝐢𝐝𝐢𝐨𝐭", "idiot"),  # mathematical bold
        ("i\u200bd\u200bi\u200bo\u200bt", "idiot"),  # zero-width spaces
        ("i\u200dd\u200di\u200do\u200dt", "idiot"),  # zero-width joiners
        ("usеlеss сow", "useless cow"),  # Cyrillic е and с
        ("ѕlаg", "slag"),  # Cyrillic ѕ and а
        ("ιdιοt", "idiot"),  # Greek iota and omicron
        ("b1tch", "bitch"),  # leetspeak
        ("st00pid", "stoopid"),
        ("$lag", "slag"),
        ("sh!tty", "shitty"),
        ("i d i o t", "idiot"),  # spaced letters
        ("c o w", "cow"),
        ("f.u.c.k", "fuck"),  # dotted letters
        ("s-l-a-g", "slag"),
        ("t_w_a_t", "twat"),
        ("sh*tty", "shitty"),  # masking
        ("f*cking", "fucking"),
        ("f***", "fuck"),
        ("b****", "bitch"),
        ("idiooooooot", "idiooot"),  # repeated letters squeezed to three
        ("café naïve", "cafe naive"),  # accents folded
    ],
)
def test_obfuscation_is_undone(normalise: Normaliser, written: str, normalised: str) -> None:
    assert normalise(written).text == normalised


@pytest.mark.parametrize(
    "ordinary",
    [
        "Scunthorpe",
        "assess the class",
        "cocktail",
        "Sussex",
        "therapist",
        "see you at 10am",
        "Class 2B in room B12",
        "y3 and y4",
        "a b c",
        "u r a star",
        "*really* good",
        "4-5 years",
    ],
)
def test_ordinary_text_is_left_alone(normalise: Normaliser, ordinary: str) -> None:
    result = normalise(ordinary)
    assert not result.obfuscated
    assert result.text.replace(" ", "") == ordinary.lower().replace(" ", "").replace("*", "")


def test_unknown_masked_word_is_kept_as_masked(normalise: Normaliser) -> None:
    (token,) = normalise("q***z").tokens
    assert token.kind is Kind.MASKED
    assert token.obfuscated


def test_tokens_point_back_to_what_was_written(normalise: Normaliser) -> None:
    text = "oi i d i o t, ѕlаg!! @mr_okafor f*cking"
    result = normalise(text)
    quoted = {t.text: text[t.start : t.end] for t in result.tokens}
    assert quoted["idiot"] == "i d i o t"
    assert quoted["slag"] == "ѕlаg"
    assert quoted["fucking"] == "f*cking"
    assert quoted["@mr_okafor"] == "@mr_okafor"
    assert result.quote(0, len(result.tokens) - 1) == text


def test_kinds(normalise: Normaliser) -> None:
    result = normalise("@mr_okafor mail a.b@c.co.uk or see https://x.example/p 07700 900123 🙄")
    kinds = [t.kind for t in result.tokens]
    assert kinds == [Kind.MENTION, Kind.WORD, Kind.EMAIL, Kind.WORD, Kind.WORD, Kind.URL,
                     Kind.NUMBER, Kind.NUMBER, Kind.SYMBOL]  # fmt: skip


def test_helpers() -> None:
    assert squeeze("soooooo") == "sooo"
    assert skeleton("idioot") == skeleton("idiot") == "idiot"
    assert fold("Ｃafé")[0] == "cafe"


@given(st.text(max_size=200))
def test_any_text_normalises_with_spans_inside_the_original(text: str) -> None:
    result = Normaliser(VOCABULARY, VOCABULARY)(text)
    previous_end = 0
    for token in result.tokens:
        assert previous_end <= token.start < token.end <= len(text)
        previous_end = token.start
        assert " " not in token.text
        assert token.text
