"""Redacting other people from free text, for a subject access export.

A parent's export holds their own words, and those words name other people: fellow parents,
staff, children. The export may not disclose them, so e-mail addresses, phone numbers, @handles
and the names of other people the school knows about become ``[redacted]``; the subject's own
names and handles stay. It errs towards redacting: a name shared by the subject and someone else
is kept (it may be the subject's), but a first name shared by another person and a common word
("Will", "Grace") is redacted wherever it appears.

Phone numbers and e-mails are found as the confidential-info detector finds them (and phone
numbers also as libphonenumber finds valid ones, "(020) 7946 0018"); names are matched on folded
text (case, accents and look-alike letters undone) and on whole words only.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import phonenumbers

from bot.policy.context import find_emails, find_phone_numbers
from bot.policy.normalise import fold
from bot.policy.school import StaffMember
from bot.policy.staff import TITLES

REDACTED = "[redacted]"

# Words in display names that are not names ("Sarah (Ollie's mum)", "Dad of twins").
_NOT_NAMES = frozenset({
    "mum", "mummy", "mom", "mommy", "mam", "dad", "daddy", "nan", "nana", "nanny", "gran",
    "granny", "grandma", "grandad", "grandpa", "auntie", "aunty", "aunt", "uncle", "parent",
    "parents", "carer", "family", "of", "and", "the", "to", "in", "year", "class", "reception",
    "twins", "school", "teacher", "head", "office",
})  # fmt: skip
_TITLE_PATTERN = "|".join(sorted(TITLES))
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z0-9]+)*")
_MENTION = re.compile(r"(?<![\w.@])@[A-Za-z0-9_]{2,64}")


def _words(name: str) -> list[str]:
    return _WORD.findall(fold(name)[0])


def name_forms(name: str) -> set[str]:
    """How a person called ``name`` may be written: the whole name, and each word of it that
    is a name (not a title, not "mum"), folded to lower-case ASCII."""
    words = _words(name)
    whole = " ".join(w for w in words if w not in TITLES)
    parts = {w for w in words if w not in TITLES and w not in _NOT_NAMES and not w.isdigit()}
    return {form for form in {whole, *parts} if len(form) >= 2}


def handle_forms(handle: str) -> set[str]:
    """A handle with and without its @, lower case."""
    bare = handle.strip().lstrip("@").lower()
    return {bare, f"@{bare}"} if len(bare) >= 2 else set()


def staff_forms(staff: Iterable[StaffMember]) -> set[str]:
    """Every way the school file names its staff: names, aliases and handles."""
    forms: set[str] = set()
    for member in staff:
        forms |= name_forms(member.name)
        for alias in member.aliases:
            forms |= name_forms(alias)
        for handle in member.all_handles:
            forms |= handle_forms(handle)
    return forms


class Redactor:
    """Replaces other people's details in text with ``[redacted]``.

    ``others`` and ``own`` are forms as :func:`name_forms` and :func:`handle_forms` make them:
    other people's, to remove, and the subject's, to keep.
    """

    def __init__(self, others: Iterable[str], own: Iterable[str] = ()) -> None:
        self.own = frozenset(own)
        self._own_handles = frozenset(form for form in self.own if form.startswith("@"))
        self._others = self._pattern(set(others) - self.own, titled=True)
        self._keep = self._pattern(set(self.own), titled=False)

    @staticmethod
    def _pattern(forms: set[str], *, titled: bool) -> re.Pattern[str] | None:
        bare = {form.lstrip("@") for form in forms}
        if not bare:
            return None
        # Longest first, so "becky sutton" wins over "becky"; spaces match any run of spaces
        # or dots ("Mrs. A  Patel").
        alternatives = "|".join(
            r"[\s.,]+".join(re.escape(word) for word in form.split())
            for form in sorted(bare, key=len, reverse=True)
        )
        title = rf"(?:(?:{_TITLE_PATTERN})\.?\s+)?" if titled else ""
        return re.compile(rf"(?<![a-z0-9_@]){title}(?:{alternatives})(?![a-z0-9_])")

    def __call__(self, text: str) -> str:
        spans = [m.span() for m in (*find_emails(text), *find_phone_numbers(text))]
        spans += [
            (m.start, m.end)
            for m in phonenumbers.PhoneNumberMatcher(text, "GB", phonenumbers.Leniency.VALID)
        ]
        spans += [
            m.span() for m in _MENTION.finditer(text) if m.group().lower() not in self._own_handles
        ]
        spans += self._name_spans(text)
        return _replace(text, spans)

    def _name_spans(self, text: str) -> list[tuple[int, int]]:
        if self._others is None or not text:
            return []
        folded, origin = fold(text)

        def original(start: int, end: int) -> tuple[int, int]:
            return origin[start], origin[end - 1] + 1

        kept = [original(*m.span()) for m in self._keep.finditer(folded)] if self._keep else []
        found = []
        for match in self._others.finditer(folded):
            span = original(*match.span())
            # Within the subject's own name ("Mary Anne Smith" holds another's "Anne Smith")?
            if not any(start <= span[0] and span[1] <= end for start, end in kept):
                found.append(span)
        return found


def _replace(text: str, spans: list[tuple[int, int]]) -> str:
    """``text`` with each span (merged where they touch or overlap) replaced by ``[redacted]``."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    out: list[str] = []
    position = 0
    for start, end in merged:
        out += [text[position:start], REDACTED]
        position = end
    out.append(text[position:])
    return "".join(out)
