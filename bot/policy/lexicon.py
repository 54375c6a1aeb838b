"""Lexicon data: the word lists under ``config/lexicons/``, as plain data the engine compiles."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field


class LexiconError(ValueError):
    """A lexicon the engine needs is missing or malformed."""


@dataclass(frozen=True)
class LexiconData:
    """Lists keyed ``"<file>.<list>"`` (``"abuse.insults"``) and word classes keyed by name."""

    lists: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    classes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def __getitem__(self, key: str) -> tuple[str, ...]:
        try:
            return self.lists[key]
        except KeyError:
            raise LexiconError(f"the lexicons have no list {key!r}") from None

    def words(self, key: str) -> frozenset[str]:
        """A list of single words, for membership tests."""
        return frozenset(w.lower() for w in self[key])

    def extended(self, extra: Mapping[str, Iterable[str]]) -> LexiconData:
        """These lists plus a school's own terms (which add to a list, never replace it)."""
        lists = dict(self.lists)
        for key, terms in extra.items():
            if key not in lists:
                known = ", ".join(sorted(lists))
                raise LexiconError(f"there is no lexicon list {key!r} to extend (known: {known})")
            lists[key] = (*lists[key], *terms)
        return LexiconData(lists, self.classes)
