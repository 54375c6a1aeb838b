"""Adversarial message families for the worst-case benchmark and the work-counting tests.

Each family builds a message of exactly ``length`` characters designed to hit one stage of the
normaliser or the detectors as hard as a consenting parent's message could.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import cycle, islice


def _fill(pieces: list[str], length: int) -> str:
    """Repeat ``pieces`` in turn until the text is ``length`` characters long."""
    out: list[str] = []
    size = 0
    for piece in cycle(pieces):
        out.append(piece)
        size += len(piece)
        if size >= length:
            break
    return "".join(out)[:length]


def spaced_letters(length: int) -> str:
    return _fill([f"{c} " for c in "youareanidiotandausele ssmuppet"], length)


def dotted_letters(length: int) -> str:
    return _fill(["i.d.i.o.t.", "c.o.w.", "m.u.p.p.e.t ", "s-h-i-t_f-a-c-e "], length)


def one_long_word(length: int) -> str:
    return "".join(islice(cycle("abcdefghijklmnopqrstuvwxyz"), length))


def repeated_letters(length: int) -> str:
    return _fill(["i" * 40 + "d" * 40 + "o" * 40 + "t" * 40 + " ", "a" * 300 + " "], length)


def emoji(length: int) -> str:
    return _fill(["😂", "🤡", "👍🏽", "❤️", " "], length)


def mixed_scripts(length: int) -> str:
    return _fill(["іdіоt ", "сow ", "ｍｕｐｐｅｔ ", "ΑΒΓ ", "中文 ", "عربى ", "x\u200bx "], length)


def mentions(length: int) -> str:
    return _fill(["@mr_okafor ", "@anita_patel ", "@someone_else ", "@x "], length)


def digit_runs(length: int) -> str:
    return _fill(["07700 900", "123 ", "0" * 50, " 4567 ", "01632960000"], length)


def leetspeak(length: int) -> str:
    return _fill(["y0u ", "4r3 ", "4 ", "pr0p3r ", "1d10t ", "m0r0n ", "@$$h0l3 ", "$h1t "], length)


def masked_words(length: int) -> str:
    return _fill(["f***", "*", "sh*t", "a" * 30 + "*" + "b" * 30, "1 "], length)


def lone_insults(length: int) -> str:
    return _fill(["feral. ", "pathetic! ", "useless. ", "joke? "], length)


def staff_and_insults(length: int) -> str:
    return _fill(
        [
            "Mr Okafor is a useless idiot, ",
            "she said Miss Hughes has autism. ",
            "Mrs Patel you are a joke, ",
            "this school is a disgrace and they lie. ",
        ],
        length,
    )


def plain_chat(length: int) -> str:
    """An ordinary long message, the peer the adversarial families are compared with."""
    return _fill(
        [
            "the nativity rehearsal went on for ages and the kids were tired but happy, ",
            "does anyone know if it's PE on thursday or friday this week? ",
            "thanks to everyone who came to the cake sale, we raised loads! ",
        ],
        length,
    )


FAMILIES: dict[str, Callable[[int], str]] = {
    "spaced letters": spaced_letters,
    "dotted letters": dotted_letters,
    "one long word": one_long_word,
    "repeated letters": repeated_letters,
    "emoji": emoji,
    "mixed scripts": mixed_scripts,
    "@mentions": mentions,
    "digit runs": digit_runs,
    "leetspeak": leetspeak,
    "masked words": masked_words,
    "lone insults": lone_insults,
    "staff and insults": staff_and_insults,
    "plain chat": plain_chat,
}
