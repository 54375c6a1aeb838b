"""Text normalisation: undo the obfuscations people use to slip words past a filter.

The result is a sequence of tokens, each remembering its span in the original text so that
evidence can quote what the sender actually wrote. Matching is always on whole tokens, never on
substrings, so ordinary words that contain a rude one ("Scunthorpe", "assess", "class") are safe.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import Enum
from functools import lru_cache

from anyascii import anyascii


class Kind(Enum):
    WORD = "word"
    NUMBER = "number"
    MENTION = "mention"
    EMAIL = "email"
    URL = "url"
    PUNCT = "punct"
    SYMBOL = "symbol"  # emoji and other pictographs
    MASKED = "masked"  # a word hidden behind asterisks that no known word explains


@dataclass(frozen=True, slots=True)
class Token:
    text: str
    start: int
    end: int
    kind: Kind
    obfuscated: bool = False

    @property
    def is_wordlike(self) -> bool:
        return self.kind in (Kind.WORD, Kind.NUMBER, Kind.MENTION, Kind.MASKED)


@dataclass(frozen=True, slots=True)
class NormalisedText:
    original: str
    tokens: tuple[Token, ...]
    text: str
    """The tokens' normalised forms joined by single spaces: what phrase patterns run over."""
    offsets: tuple[int, ...]
    """Where each token starts in ``text``."""
    keys: tuple[str, ...]
    """Each token's ``skeleton``: the key phrase patterns are indexed by."""
    _prefixes: dict[int, frozenset[str]] = field(default_factory=dict, compare=False, repr=False)

    @property
    def key_set(self) -> frozenset[str]:
        return self.key_prefixes(0)

    def key_prefixes(self, length: int) -> frozenset[str]:
        """The keys cut to ``length`` characters (0: whole), so a phrase set can skip a message
        that has none of its first words with one set intersection."""
        found = self._prefixes.get(length)
        if found is None:
            found = frozenset(k[:length] if length else k for k in self.keys)
            self._prefixes[length] = found
        return found

    def token_at(self, offset: int) -> int:
        """Index of the token that contains character ``offset`` of ``text``."""
        return bisect_right(self.offsets, offset) - 1

    def quote(self, first: int, last: int) -> str:
        """The original words behind tokens ``first`` to ``last`` inclusive."""
        return self.original[self.tokens[first].start : self.tokens[last].end]

    @property
    def obfuscated(self) -> bool:
        return any(token.obfuscated for token in self.tokens)


# Look-alike letters from other scripts, folded before transliteration: a transliterator would
# turn Cyrillic "с" into "s", but a reader sees "c".
HOMOGLYPHS = str.maketrans(
    {
        "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o",
        "р": "p", "с": "c", "т": "t", "у": "y", "х": "x", "ѕ": "s", "і": "i", "ї": "i",
        "ј": "j", "ԁ": "d", "ԛ": "q", "ԝ": "w", "һ": "h", "ɡ": "g", "ӏ": "l",
        "А": "a", "В": "b", "Е": "e", "К": "k", "М": "m", "Н": "h", "О": "o", "Р": "p",
        "С": "c", "Т": "t", "У": "y", "Х": "x", "Ѕ": "s", "І": "i", "Ј": "j",
        "α": "a", "β": "b", "ε": "e", "η": "n", "ι": "i", "κ": "k", "ν": "v", "ο": "o",
        "ρ": "p", "τ": "t", "υ": "u", "χ": "x", "ω": "w", "γ": "y",
        "Α": "a", "Β": "b", "Ε": "e", "Ζ": "z", "Η": "h", "Ι": "i", "Κ": "k", "Μ": "m",
        "Ν": "n", "Ο": "o", "Ρ": "p", "Τ": "t", "Υ": "y", "Χ": "x",
        "‘": "'", "’": "'", "‛": "'", "´": "'", "`": "'", "“": '"', "”": '"',
        "–": "-", "—": "-", "‐": "-", "‑": "-", "·": ".", "•": ".", "…": "...",
    }
)  # fmt: skip

_DROPPED_CATEGORIES = frozenset({"Cf", "Mn", "Me", "Cc"})


@lru_cache(maxsize=4096)
def _fold_char(char: str) -> str:
    """One original character as zero or more lower-case characters."""
    out = []
    for c in unicodedata.normalize("NFKC", char):
        c = c.translate(HOMOGLYPHS)
        if c.isascii():
            out.append(c.lower())
            continue
        category = unicodedata.category(c)
        if category in _DROPPED_CATEGORIES:
            if c.isspace():
                out.append(" ")
            continue
        if category.startswith("Z"):
            out.append(" ")
        elif category.startswith("L"):
            out.append(anyascii(c).lower())
        else:
            out.append(c)
    return "".join(out)


def fold(text: str) -> tuple[str, list[int]]:
    """Fold ``text`` to lower-case ASCII letters, keeping for each output character its source."""
    if text.isascii():
        return text.lower(), list(range(len(text)))
    chars: list[str] = []
    origin: list[int] = []
    for index, char in enumerate(text):
        folded = char.lower() if char.isascii() else _fold_char(char)
        chars.append(folded)
        origin.extend([index] * len(folded))
    return "".join(chars), origin


_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b",
                       "9": "g", "@": "a", "$": "s", "!": "i", "|": "i", "+": "t"})  # fmt: skip

# Tokens that mix digits and letters for an honest reason: times, ordinals, units, class and room
# names. Undoing leetspeak in these would turn "10am" into "ioam".
_NOT_LEET = re.compile(
    r"^(?:\d+(?:[.,:]\d+)*(?:[a-z]|am|pm|st|nd|rd|th|ish|yo|yrs?|mins?|hrs?|secs?|kg|km|ml|cm"
    r"|mm|ft|gb|mb|mph|lbs?|oz|wks?|pcs?|x\d+)|[a-z]{1,2}\d{1,3}|\d+[a-z]\d+)$"
)
_HAS_LEET_CHAR = re.compile(r"[0-9@$!|+]")
_LETTER = re.compile(r"[a-z]")
_DOTTED = re.compile(r"^[a-z](?:[.\-_][a-z])+\.?$")
_MASKED = re.compile(r"^[a-z]*[a-z]\*+[a-z*]*$|^[a-z]*\*+[a-z]+[a-z*]*$")
_EMPHASIS = re.compile(r"^\*+([a-z][a-z']*)\*+$")
_URL = re.compile(r"^(?:https?://|www\.)\S+$")
_EMAIL = re.compile(r"^[a-z0-9._%+-]+@[a-z0-9-]+(?:\.[a-z0-9-]+)+$")
_MENTION = re.compile(r"^@[a-z0-9_]{2,}$")
_PIECES = re.compile(r"[a-z0-9]+(?:'[a-z]+)*|[^a-z0-9\s]")
_EDGE_PUNCT = "\"'()[]{}<>.,;:!?~^"
_REPEATS = re.compile(r"([a-z])\1{3,}")
_ABBREVIATIONS = frozenset({"mr.", "mrs.", "ms.", "dr.", "st.", "mx."})


@lru_cache(maxsize=1 << 16)
def squeeze(word: str) -> str:
    """Shorten runs of four or more of a letter to three: "sooooo" -> "sooo".

    Three is the mark of elongation: a run of two is an ordinary double letter ("seen" is not
    an elongated "sen"), a run of three or more never is.
    """
    return _REPEATS.sub(r"\1\1\1", word)


@lru_cache(maxsize=1 << 16)
def skeleton(word: str) -> str:
    """Every run of a letter to one: the key under which elongated spellings meet."""
    if len(word) < 2:
        return word
    out = [word[0]]
    for char in word[1:]:
        if char != out[-1]:
            out.append(char)
    return "".join(out)


class Normaliser:
    """Turns text into tokens.

    ``vocabulary`` lets letters spaced out ("i d i o t") be joined only when they spell a word the
    lexicons know, so that "u r a star" stays as it is. ``masked_words`` are what a word hidden
    behind asterisks ("sh*tty", "f***") may stand for, most likely first: people mask swear words,
    so "f***" is "fuck", not "face".
    """

    def __init__(self, vocabulary: Iterable[str], masked_words: Iterable[str] = ()) -> None:
        words = {w for w in vocabulary if w.isalpha()}
        self._skeletons = {skeleton(w) for w in words}
        self._by_length: dict[int, list[str]] = {}
        for word in dict.fromkeys(w for w in masked_words if w.isalpha()):
            self._by_length.setdefault(len(word), []).append(word)

    def __call__(self, text: str) -> NormalisedText:
        if not text:
            return NormalisedText(text, (), "", (), ())
        folded, origin = fold(text)
        tokens: list[Token] = []
        for chunk in re.finditer(r"\S+", folded):
            self._tokenise_chunk(chunk.group(), chunk.start(), origin, tokens)
        tokens = self._join_spaced_letters(tokens, folded, origin)
        texts = [t.text for t in tokens]
        offsets = []
        position = 0
        for word in texts:
            offsets.append(position)
            position += len(word) + 1
        keys = tuple(skeleton(word) for word in texts)
        return NormalisedText(text, tuple(tokens), " ".join(texts), tuple(offsets), keys)

    def knows(self, word: str) -> bool:
        return skeleton(word) in self._skeletons

    # -- chunks ------------------------------------------------------------------------------

    def _tokenise_chunk(self, chunk: str, at: int, origin: list[int], out: list[Token]) -> None:
        def emit(text: str, start: int, end: int, kind: Kind, obfuscated: bool = False) -> None:
            out.append(Token(text, origin[at + start], origin[at + end - 1] + 1, kind, obfuscated))

        if chunk.isalpha() and chunk.isascii():
            out.append(
                Token(squeeze(chunk), origin[at], origin[at + len(chunk) - 1] + 1, Kind.WORD)
            )
            return
        if chunk in _ABBREVIATIONS:
            emit(chunk[:-1], 0, len(chunk), Kind.WORD)
            return
        lead = len(chunk) - len(chunk.lstrip(_EDGE_PUNCT))
        core_end = len(chunk.rstrip(_EDGE_PUNCT))
        if core_end <= lead:
            self._pieces(chunk, 0, emit)
            return
        core = chunk[lead:core_end]
        if lead:
            self._pieces(chunk[:lead], 0, emit)
        self._core(core, lead, emit)
        if core_end < len(chunk):
            self._pieces(chunk[core_end:], core_end, emit)

    def _core(self, core: str, at: int, emit: Callable[..., None]) -> None:
        end = at + len(core)
        if _URL.match(core):
            emit(core, at, end, Kind.URL)
        elif _MENTION.match(core):
            emit(core, at, end, Kind.MENTION)
        elif _EMAIL.match(core):
            emit(core, at, end, Kind.EMAIL)
        elif (emphasis := _EMPHASIS.match(core)) is not None:
            emit(squeeze(emphasis[1]), at, end, Kind.WORD)
        elif "*" in core and _MASKED.match(core):
            resolved = self._unmask(core)
            if resolved is None:
                emit(core, at, end, Kind.MASKED, True)
            else:
                emit(resolved, at, end, Kind.WORD, True)
        elif _DOTTED.match(core):
            emit(squeeze(re.sub(r"[.\-_]", "", core)), at, end, Kind.WORD, True)
        elif (
            _HAS_LEET_CHAR.search(core)
            and _LETTER.search(core)
            and not _NOT_LEET.match(core)
            and (decoded := core.translate(_LEET)).isalpha()
        ):
            emit(squeeze(decoded), at, end, Kind.WORD, True)
        else:
            self._pieces(core, at, emit)

    @staticmethod
    def _pieces(text: str, at: int, emit: Callable[..., None]) -> None:
        for piece in _PIECES.finditer(text):
            word = piece.group()
            if word[0].isalpha():
                emit(squeeze(word), at + piece.start(), at + piece.end(), Kind.WORD)
            elif word[0].isdigit():
                kind = Kind.NUMBER if word.isdigit() else Kind.WORD
                emit(word, at + piece.start(), at + piece.end(), kind)
            elif word.isascii():
                emit(word, at + piece.start(), at + piece.end(), Kind.PUNCT)
            else:
                emit(word, at + piece.start(), at + piece.end(), Kind.SYMBOL)

    def _unmask(self, core: str) -> str | None:
        """The known word that ``core`` ("sh*tty", "f***") hides, if exactly one fits."""
        pattern = re.compile(
            "".join(
                f"[a-z]{{{len(part)}}}" if part.startswith("*") else re.escape(part)
                for part in re.findall(r"\*+|[a-z]+", core)
            )
        )
        for length in (len(core), len(core) + 1, len(core) - 1):
            fits = [w for w in self._by_length.get(length, ()) if pattern.fullmatch(w)]
            if fits:
                return fits[0]
        return None

    # -- letters spaced out over several tokens ------------------------------------------------

    def _join_spaced_letters(
        self, tokens: list[Token], folded: str, origin: list[int]
    ) -> list[Token]:
        out: list[Token] = []
        index = 0
        while index < len(tokens):
            run_end = index
            while (
                run_end < len(tokens)
                and tokens[run_end].kind is Kind.WORD
                and len(tokens[run_end].text) == 1
                and tokens[run_end].text.isalpha()
                and (run_end == index or tokens[run_end].start - tokens[run_end - 1].end <= 2)
            ):
                run_end += 1
            if run_end - index >= 3:
                out.extend(self._join_run(tokens[index:run_end]))
                index = run_end
            else:
                out.append(tokens[index])
                index += 1
        return out

    def _join_run(self, run: list[Token]) -> list[Token]:
        """Join the longest stretch of single letters (three or more) that spells a known word."""
        for size in range(len(run), 2, -1):
            for first in range(len(run) - size + 1):
                word = "".join(t.text for t in run[first : first + size])
                if self.knows(word):
                    joined = Token(
                        word, run[first].start, run[first + size - 1].end, Kind.WORD, True
                    )
                    return [*run[:first], joined, *self._join_run(run[first + size :])]
        return run
