"""Phrase patterns from the lexicon files, compiled once and matched on whole tokens.

A pattern is written in words, the way a school would write it:

- ``miserable cow``        consecutive words;
- ``waste|wastes of space`` alternatives for one word;
- ``(head teacher|deputy)`` alternatives of several words, in brackets;
- ``fuck*``                any word starting with "fuck";
- ``a|an?``                an optional word;
- ``make ... life hell``   up to three words in between (never across punctuation);
- ``{you} idiot``          any word of the class ``you`` (classes are defined in the lexicons or
                           by the school, such as staff names);
- ``re:<regex>``           a raw regular expression over the normalised text (rarely needed).

A letter written once matches it stretched ("idiot" matches "idiooooot") but not doubled
("sen" does not match "seen"); a letter written twice needs at least two ("ass" does not match
"as"). Matching never looks inside a word.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from bot.policy.normalise import NormalisedText, skeleton

_GAP = r"(?:[a-z0-9'@_*]+ ){0,3}"
_MAX_CLASS_DEPTH = 4


class PatternError(ValueError):
    """A lexicon entry that cannot be compiled; the message names the entry."""


@dataclass(frozen=True, slots=True)
class Hit:
    pattern: str
    first: int
    last: int
    """Index of the last token matched (inclusive)."""


def _split_pieces(pattern: str) -> list[str]:
    """Split on spaces, except inside brackets: ``the (head teacher|deputy)`` is two pieces."""
    pieces: list[str] = []
    depth = 0
    current = ""
    for char in pattern:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth > 1:
            raise PatternError(f"{pattern!r}: brackets cannot be nested")
        if char == " " and depth == 0:
            pieces.append(current)
            current = ""
        else:
            current += char
    pieces.append(current)
    if depth != 0:
        raise PatternError(f"{pattern!r} has unbalanced brackets")
    return pieces


def _word_regex(word: str) -> str:
    out = []
    for run in re.finditer(r"(.)\1*", word):
        char, length = run.group(1), len(run.group())
        if char.isalpha():
            # Text has runs squeezed to three at most; three means the writer stretched it.
            out.append(f"{char}(?:{char}{char})?" if length == 1 else f"{char}{{{length},3}}")
        else:
            out.append(re.escape(run.group()))
    return "".join(out)


@dataclass(frozen=True, slots=True)
class _Compiled:
    source: str
    regex: re.Pattern[str]


class PhraseSet:
    """A named list of phrase patterns. ``find`` reports every place one of them matches."""

    def __init__(
        self,
        name: str,
        patterns: Iterable[str],
        classes: Mapping[str, Iterable[str]] | None = None,
    ) -> None:
        self.name = name
        self._classes = {k: tuple(v) for k, v in (classes or {}).items()}
        self._by_first_word: dict[str, list[_Compiled]] = {}
        self._by_prefix: dict[str, list[_Compiled]] = {}
        self._anywhere: list[_Compiled] = []
        self.words: set[str] = set()
        for pattern in patterns:
            pattern = " ".join(pattern.lower().split())
            if pattern:
                self._add(pattern)
        self._first_words = frozenset(self._by_first_word)
        self._prefixes_by_length: dict[int, frozenset[str]] = {}
        for length in {len(prefix) for prefix in self._by_prefix}:
            self._prefixes_by_length[length] = frozenset(
                p for p in self._by_prefix if len(p) == length
            )
        self._last: tuple[NormalisedText, tuple[Hit, ...]] | None = None

    def __bool__(self) -> bool:
        return bool(self._by_first_word or self._by_prefix or self._anywhere)

    # -- compiling ----------------------------------------------------------------------------

    def _add(self, pattern: str) -> None:
        if pattern.startswith("re:"):
            try:
                regex = re.compile(pattern[3:].strip())
            except re.error as error:
                raise PatternError(
                    f"{self.name}: {pattern!r} is not a valid regex: {error}"
                ) from None
            self._anywhere.append(_Compiled(pattern, regex))
            return
        pieces = _split_pieces(pattern)
        if pieces[0] == "..." or pieces[0].endswith("?"):
            raise PatternError(f"{self.name}: {pattern!r} must start with a word, not a gap")
        if pieces[-1] == "...":
            raise PatternError(f"{self.name}: {pattern!r} must end with a word, not a gap")
        source = "".join(self._piece_regex(piece, pattern) for piece in pieces)
        compiled = _Compiled(pattern, re.compile(source))
        for alternative in self._alternatives(pieces[0], pattern):
            if alternative.split()[0].endswith("*"):
                prefix = skeleton(alternative.split()[0][:-1])
                self._by_prefix.setdefault(prefix, []).append(compiled)
            else:
                first_word = alternative.split()[0]
                self._by_first_word.setdefault(skeleton(first_word), []).append(compiled)

    def _alternatives(self, piece: str, pattern: str, depth: int = 0) -> list[str]:
        words: list[str] = []
        body = piece.removesuffix("?")
        if body.startswith("(") and body.endswith(")"):
            body = body[1:-1]
        for alternative in body.split("|"):
            if alternative.startswith("{") and alternative.endswith("}"):
                name = alternative[1:-1]
                if name not in self._classes:
                    raise PatternError(f"{self.name}: {pattern!r} uses unknown class {{{name}}}")
                if depth > _MAX_CLASS_DEPTH:
                    raise PatternError(f"{self.name}: class {{{name}}} refers to itself")
                for member in self._classes[name]:
                    words.extend(self._alternatives(member.lower(), pattern, depth + 1))
            elif alternative:
                words.append(alternative)
        return words

    def _piece_regex(self, piece: str, pattern: str) -> str:
        if piece == "...":
            return _GAP
        optional = piece.endswith("?") and len(piece) > 1
        choices = []
        for word in self._alternatives(piece, pattern):
            # A class member may be several words ("mrs patel"): match them in sequence.
            parts = word.split()
            regex = " ".join(
                _word_regex(p[:-1]) + "[^ ]*" if p.endswith("*") else _word_regex(p) for p in parts
            )
            self.words.update(p.rstrip("*") for p in parts)
            choices.append(regex)
        if not choices:
            raise PatternError(f"{self.name}: {pattern!r} has an empty word")
        # Longest first, so "mrs patel" is preferred over "mrs".
        choices.sort(key=len, reverse=True)
        body = f"(?:{'|'.join(choices)}) "
        return f"(?:{body})?" if optional else body

    # -- matching -----------------------------------------------------------------------------

    def find(self, text: NormalisedText) -> list[Hit]:
        # Several detectors ask about the same message: answer the last one from memory.
        last = self._last
        if last is not None and last[0] is text:
            return list(last[1])
        hits = self._find(text)
        self._last = (text, tuple(hits))
        return hits

    def _find(self, text: NormalisedText) -> list[Hit]:
        hits: list[Hit] = []
        # Most messages contain none of a set's first words: find that out in one intersection.
        words = self._first_words & text.key_set
        prefixes = [
            (length, present)
            for length, keys in self._prefixes_by_length.items()
            if (present := keys & text.key_prefixes(length))
        ]
        # Try each candidate pattern only where its first word occurs: the work is the number of
        # occurrences of the set's first words, not the message's length times the set's size.
        starts: list[tuple[int, list[_Compiled]]] = []
        if words:
            positions = text.positions_of(0)
            for key in words:
                starts.extend((index, self._by_first_word[key]) for index in positions[key])
        for length, present in prefixes:
            positions = text.positions_of(length)
            for prefix in present:
                starts.extend((index, self._by_prefix[prefix]) for index in positions[prefix])
        if starts:
            starts.sort(key=lambda start: start[0])
            padded, offsets = text.padded, text.offsets
            for index, candidates in starts:
                self._try(candidates, padded, offsets[index], index, text, hits)
        for compiled in self._anywhere:
            for match in compiled.regex.finditer(text.text):
                if match.end() > match.start():
                    first = text.token_at(match.start())
                    hits.append(Hit(compiled.source, first, text.token_at(match.end() - 1)))
        return hits

    @staticmethod
    def _try(
        candidates: list[_Compiled],
        padded: str,
        offset: int,
        index: int,
        text: NormalisedText,
        hits: list[Hit],
    ) -> None:
        for compiled in candidates:
            match = compiled.regex.match(padded, offset)
            if match is not None:
                hits.append(Hit(compiled.source, index, text.token_at(match.end() - 2)))
