"""Text normalisation: undo the obfuscations people use to slip words past a filter.

The result is a sequence of tokens, each remembering its span in the original text so that
evidence can quote what the sender actually wrote. Matching is always on whole tokens, never on
substrings, so ordinary words that contain a rude one ("Scunthorpe", "assess", "class") are safe.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import Enum
from functools import lru_cache
from typing import Any, NamedTuple

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


_Piece = tuple[str, int, int, Kind, bool]
"""A token's text, start and end within its chunk, kind, and whether it was disguised."""


class Token(NamedTuple):
    """A tuple, not a dataclass: a long message makes thousands, and tuples are made fastest."""

    text: str
    start: int
    end: int
    kind: Kind
    obfuscated: bool = False

    @property
    def is_wordlike(self) -> bool:
        kind = self.kind  # identity tests: hashing an Enum member runs Python code
        return (
            kind is Kind.WORD or kind is Kind.NUMBER or kind is Kind.MENTION or kind is Kind.MASKED
        )


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
    _positions: dict[int, dict[str, list[int]]] = field(
        default_factory=dict, compare=False, repr=False
    )
    _padded: list[str] = field(default_factory=list, compare=False, repr=False)

    @property
    def padded(self) -> str:
        """``text`` with a space after its last word, as phrase patterns expect one."""
        found = self._padded
        if not found:
            found = self._padded[:] = [self.text + " "]
        return found[0]

    @property
    def key_set(self) -> frozenset[str]:
        return self.key_prefixes(0)

    def key_prefixes(self, length: int) -> frozenset[str]:
        """The keys cut to ``length`` characters (0: whole), so a phrase set can skip a message
        that has none of its first words with one set intersection."""
        found = self._prefixes.get(length)
        if found is None:
            unique = self._prefixes.get(0) or frozenset(self.keys)
            found = frozenset(k[:length] for k in unique) if length else unique
            self._prefixes[length] = found
        return found

    def span_tokens(self, start: int, end: int) -> range:
        """Indexes of the tokens that overlap characters ``start:end`` of the original."""
        first = bisect_right(self.tokens, start, key=lambda t: t.end)
        last = bisect_left(self.tokens, end, key=lambda t: t.start)
        return range(first, max(first, last))

    def positions_of(self, length: int) -> dict[str, list[int]]:
        """Where each key (cut to ``length`` characters; 0: whole) occurs, in order."""
        found = self._positions.get(length)
        if found is None:
            found = {}
            for index, key in enumerate(self.keys):
                if length and len(key) < length:
                    continue
                found.setdefault(key[:length] if length else key, []).append(index)
            self._positions[length] = found
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
# Letters and asterisks only, with at least one of each: checked without a regex that could
# backtrack (``_is_masked``).
_MASK_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz*")
_EMPHASIS = re.compile(r"^\*+([a-z][a-z']*)\*+$")
_URL = re.compile(r"^(?:https?://|www\.)\S+$")
_EMAIL = re.compile(r"^[a-z0-9._%+-]+@[a-z0-9-]+(?:\.[a-z0-9-]+)+$")
_MENTION = re.compile(r"^@[a-z0-9_]{2,}$")
_PIECES = re.compile(r"[a-z0-9]+(?:'[a-z]+)*|[^a-z0-9\s]")
_EDGE_PUNCT = "\"'()[]{}<>.,;:!?~^"
_REPEATS = re.compile(r"([a-z])\1{3,}")
_ABBREVIATIONS = frozenset({"mr.", "mrs.", "ms.", "dr.", "st.", "mx."})
# Whole-message leetspeak ("u r 4 pr0p3r j0k3"): when this share of a message's words mix
# letters with leet characters, digits that would otherwise be read as times, classes or numbers
# ("4", "4r3") are decoded too.
_LEETY_SHARE = 0.3
_LEETY_MIN_WORDS = 2
_SINGLE_LEET = {"0": "o", "1": "i", "3": "e", "4": "a", "8": "b"}
_MAX_CACHED_CHUNK = 64
_END = "$"  # marks the end of a word in the vocabulary trie
_MAX_SPAN = 64


def _is_masked(core: str) -> bool:
    """ "sh*tty", "f***", "*uck": letters and asterisks, with a letter and an asterisk."""
    return "*" in core and set(core) <= _MASK_CHARS and core.strip("*") != ""


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


def _is_leety(chunks: Iterable[str]) -> bool:
    """Whether a message is written in leetspeak throughout, not just one disguised word."""
    wordy = leet = 0
    for chunk in chunks:
        if chunk.isalpha():
            wordy += 1
        else:
            is_word, is_leet = _leet_chunk(chunk)
            wordy += is_word
            leet += is_leet
    return leet >= _LEETY_MIN_WORDS and leet >= _LEETY_SHARE * wordy


@lru_cache(maxsize=1 << 14)
def _leet_chunk(chunk: str) -> tuple[bool, bool]:
    """Whether a chunk is a word, and whether it is a word in leetspeak."""
    if not _LETTER.search(chunk) and chunk not in _SINGLE_LEET:
        return False, False
    core = chunk.strip(_EDGE_PUNCT)
    # Counted only where a word would be decoded anyway, so "10am, 2pm and 3rd" is not leet.
    leet = (
        _HAS_LEET_CHAR.search(core) is not None
        and _LETTER.search(core) is not None
        and not _NOT_LEET.match(core)
        and core.translate(_LEET).isalpha()
    )
    return True, leet


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
        self._trie: dict[str, Any] = {}
        for key in self._skeletons:
            node = self._trie
            for letter in key:
                node = node.setdefault(letter, {})
            node[_END] = True
        longest = max((len(k) for k in self._skeletons), default=0)
        # A spelt-out word may stretch letters ("i d i i i o t"), so allow three per letter.
        self._max_span = min(3 * longest, _MAX_SPAN)
        self._by_length: dict[int, list[str]] = {}
        for word in dict.fromkeys(w for w in masked_words if w.isalpha()):
            self._by_length.setdefault(len(word), []).append(word)
        self._cached_pieces = lru_cache(maxsize=1 << 14)(self._tokenise_chunk)

    def __call__(self, text: str) -> NormalisedText:
        if not text:
            return NormalisedText(text, (), "", (), ())
        origin: list[int] | None = None
        if text.isascii():
            folded = text.lower()
        else:
            folded, origin = fold(text)
        chunks = [(chunk.group(), chunk.start()) for chunk in re.finditer(r"\S+", folded)]
        leety = _HAS_LEET_CHAR.search(folded) is not None and _is_leety(c for c, _ in chunks)
        tokens: list[Token] = []
        pieces = self._chunk_pieces
        if origin is None:  # ASCII: positions in the folded text are positions in the original
            for chunk, at in chunks:
                for word, start, end, kind, obfuscated in pieces(chunk, leety):
                    tokens.append(Token(word, at + start, at + end, kind, obfuscated))
        else:
            for chunk, at in chunks:
                for word, start, end, kind, obfuscated in pieces(chunk, leety):
                    first, last = origin[at + start], origin[at + end - 1] + 1
                    tokens.append(Token(word, first, last, kind, obfuscated))
        tokens = self._join_spaced_letters(tokens)
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

    def _chunk_pieces(self, chunk: str, leety: bool) -> tuple[_Piece, ...]:
        """The tokens of one whitespace-separated chunk, with offsets relative to it.

        Chats repeat their words, so chunks are remembered (``_cached_pieces``).
        """
        if len(chunk) > _MAX_CACHED_CHUNK:
            return self._tokenise_chunk(chunk, leety)
        return self._cached_pieces(chunk, leety)

    def _tokenise_chunk(self, chunk: str, leety: bool) -> tuple[_Piece, ...]:
        out: list[_Piece] = []

        def emit(text: str, start: int, end: int, kind: Kind, obfuscated: bool = False) -> None:
            out.append((text, start, end, kind, obfuscated))

        if chunk.isalpha() and chunk.isascii():
            return ((squeeze(chunk), 0, len(chunk), Kind.WORD, False),)
        if chunk in _ABBREVIATIONS:
            return ((chunk[:-1], 0, len(chunk), Kind.WORD, False),)
        lead = len(chunk) - len(chunk.lstrip(_EDGE_PUNCT))
        core_end = len(chunk.rstrip(_EDGE_PUNCT))
        if core_end <= lead:
            self._pieces(chunk, 0, emit)
            return tuple(out)
        core = chunk[lead:core_end]
        if lead:
            self._pieces(chunk[:lead], 0, emit)
        self._core(core, lead, emit, leety)
        if core_end < len(chunk):
            self._pieces(chunk[core_end:], core_end, emit)
        return tuple(out)

    def _core(self, core: str, at: int, emit: Callable[..., None], leety: bool) -> None:
        end = at + len(core)
        if _URL.match(core):
            emit(core, at, end, Kind.URL)
        elif _MENTION.match(core):
            emit(core, at, end, Kind.MENTION)
        elif _EMAIL.match(core):
            emit(core, at, end, Kind.EMAIL)
        elif (emphasis := _EMPHASIS.match(core)) is not None:
            emit(squeeze(emphasis[1]), at, end, Kind.WORD)
        elif _is_masked(core):
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
            and (leety or not _NOT_LEET.match(core))
            and (decoded := core.translate(_LEET)).isalpha()
        ):
            emit(squeeze(decoded), at, end, Kind.WORD, True)
        elif leety and core in _SINGLE_LEET:
            emit(_SINGLE_LEET[core], at, end, Kind.WORD, True)
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
        if len(core) > self._max_span:
            return None  # longer than any word we know
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

    def _join_spaced_letters(self, tokens: list[Token]) -> list[Token]:
        out: list[Token] = []
        run: list[Token] = []
        for token in tokens:
            single = token.kind is Kind.WORD and len(token.text) == 1 and token.text.isalpha()
            if single and (not run or token.start - run[-1].end <= 2):
                run.append(token)
                continue
            self._flush_run(run, out)
            if single:
                run.append(token)
            else:
                out.append(token)
        self._flush_run(run, out)
        return out

    def _flush_run(self, run: list[Token], out: list[Token]) -> None:
        """Move a run of single letters to ``out``, joined into words where it is long enough."""
        if len(run) >= 3:
            out.extend(self._join_run(run))
        else:
            out.extend(run)
        run.clear()

    def _join_run(self, run: list[Token]) -> list[Token]:
        """Join single letters into the known words that cover the most of them.

        A dynamic programme from the right: for each letter, the known words (three letters or
        more) that start there are found by walking the vocabulary's trie at most
        ``_max_span`` letters, so the cost is linear in the run's length.
        """
        size = len(run)
        letters = [t.text for t in run]
        # best[i]: (letters covered in run[i:], -words used), and the word length chosen at i.
        best: list[tuple[int, int]] = [(0, 0)] * (size + 1)
        choice = [0] * (size + 1)
        for first in range(size - 1, -1, -1):
            best[first], choice[first] = best[first + 1], 0
            for length in self._words_starting(letters, first):
                covered, words = best[first + length]
                candidate = (covered + length, words - 1)
                if candidate > best[first]:
                    best[first], choice[first] = candidate, length
        joined: list[Token] = []
        position = 0
        while position < size:
            length = choice[position]
            if length == 0:
                joined.append(run[position])
                position += 1
                continue
            word = squeeze("".join(letters[position : position + length]))
            end = run[position + length - 1].end
            joined.append(Token(word, run[position].start, end, Kind.WORD, True))
            position += length
        return joined

    def _words_starting(self, letters: list[str], first: int) -> list[int]:
        """Lengths of the known words spelt by ``letters`` from ``first`` (at least three)."""
        lengths = []
        node: dict[str, Any] = self._trie
        previous = ""
        for length, letter in enumerate(letters[first : first + self._max_span], 1):
            if letter != previous:  # the trie holds skeletons: a repeated letter stays put
                child = node.get(letter)
                if child is None:
                    break
                node = child
                previous = letter
            if length >= 3 and _END in node:
                lengths.append(length)
        return lengths
