"""Recognising staff: by handle, name, alias, title and surname, from the school file."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from bot.policy.message import Person
from bot.policy.normalise import NormalisedText, fold
from bot.policy.patterns import PhraseSet
from bot.policy.school import StaffMember

TITLES = frozenset({"mr", "mrs", "ms", "miss", "mx", "dr", "sir", "madam", "mme", "rev", "prof"})


def _plain(text: str) -> str:
    """Lower-case ASCII words separated by single spaces, as the normaliser produces them."""
    folded, _ = fold(text)
    return " ".join(re.findall(r"[a-z0-9']+", folded.replace(".", " ")))


@dataclass(frozen=True, slots=True)
class _NamePhrases:
    phrases: PhraseSet
    sources: dict[str, str]
    """Pattern source -> the name form it was made from."""
    members: dict[str, list[StaffMember]]


@dataclass(frozen=True, slots=True)
class StaffHit:
    member: StaffMember
    first: int
    last: int
    possessive: bool
    form: str


class StaffDirectory:
    """Who the staff are, and where a message names them.

    ``address_forms`` are the ways a parent would speak *to* someone (the school's aliases, title
    and surname, full name); ``reference_forms`` add the bare surname, which parents use when
    talking *about* staff ("okafor is useless") but rarely when addressing them.
    """

    def __init__(self, staff: Iterable[StaffMember]) -> None:
        self.members = tuple(staff)
        self._by_handle: dict[str, StaffMember] = {}
        self._by_id: dict[str, StaffMember] = {}
        self._by_name: dict[str, StaffMember] = {}
        self._address: dict[str, list[StaffMember]] = {}
        self._reference: dict[str, list[StaffMember]] = {}
        for member in self.members:
            for handle in member.all_handles:
                self._by_handle[handle.lower().lstrip("@")] = member
            if member.id:
                self._by_id[member.id] = member
            self._by_name[_plain(member.name)] = member
            self._by_name[self._untitled(member.name)] = member
            for form in self._address_forms(member):
                self._address.setdefault(form, []).append(member)
                self._reference.setdefault(form, []).append(member)
            surname = self._untitled(member.name).split()[-1:]
            if surname and len(surname[0]) > 2:
                self._reference.setdefault(surname[0], []).append(member)
        self._address_set = self._phrases("staff.address", self._address)
        self._reference_set = self._phrases("staff.reference", self._reference)

    @staticmethod
    def _untitled(name: str) -> str:
        words = _plain(name).split()
        while words and words[0] in TITLES:
            words = words[1:]
        return " ".join(words)

    def _address_forms(self, member: StaffMember) -> set[str]:
        words = _plain(member.name).split()
        titles = [w for w in words if w in TITLES]
        rest = [w for w in words if w not in TITLES]
        forms = {_plain(alias) for alias in member.aliases} | {" ".join(words), " ".join(rest)}
        if titles and rest:
            forms.add(f"{titles[0]} {rest[-1]}")
            forms.add(f"{titles[0]} {rest[-1][0]}")  # "Mr O", "Mrs B"
        for handle in member.all_handles:
            forms.add(handle.lower())
        return {form for form in forms if form}

    @staticmethod
    def _phrases(name: str, forms: dict[str, list[StaffMember]]) -> _NamePhrases:
        # Each form also matches its possessive ("mrs patel's").
        sources = {}
        for form in forms:
            *head, tail = form.split()
            sources[" ".join([*head, f"{tail}|{tail}'s"])] = form
        return _NamePhrases(PhraseSet(name, sources), sources, forms)

    # -- people ------------------------------------------------------------------------------

    def by_title(self, title: str) -> StaffMember | None:
        """The one member of staff called by a bare title ("Miss"), if exactly one is."""
        found = [m for m in self.members if _plain(m.name).split()[:1] == [title]]
        return found[0] if len(found) == 1 else None

    def by_name(self, name: str) -> StaffMember | None:
        return self._by_name.get(_plain(name))

    def by_handle(self, handle: str) -> StaffMember | None:
        return self._by_handle.get(handle.lower().lstrip("@"))

    def match_person(self, person: Person) -> StaffMember | None:
        """The staff member this person is, by id, handle or name."""
        if person.id and person.id in self._by_id:
            return self._by_id[person.id]
        if person.handle and (member := self.by_handle(person.handle)):
            return member
        if person.name:
            return self._by_name.get(_plain(person.name)) or self._by_name.get(
                self._untitled(person.name)
            )
        return None

    def name_forms(self) -> tuple[str, ...]:
        """Every way of naming a member of staff, for lexicon patterns' ``{staff_name}``."""
        return tuple(sorted(f for form in self._reference for f in (form, f"{form}'s")))

    # -- text --------------------------------------------------------------------------------

    def addressed_forms(self, text: NormalisedText) -> list[StaffHit]:
        return self._hits(self._address_set, text)

    def references(self, text: NormalisedText) -> list[StaffHit]:
        return self._hits(self._reference_set, text)

    @staticmethod
    def _hits(names: _NamePhrases, text: NormalisedText) -> list[StaffHit]:
        hits: list[StaffHit] = []
        for found in names.phrases.find(text):
            form = names.sources[found.pattern]
            possessive = text.tokens[found.last].text.endswith("'s")
            for member in names.members[form]:
                hits.append(StaffHit(member, found.first, found.last, possessive, form))
        # Where names overlap keep the longest ("mrs patel", not also "patel").
        hits.sort(key=lambda h: (h.first, -(h.last - h.first)))
        kept: list[StaffHit] = []
        for hit in hits:
            span = (hit.first, hit.last)
            if kept and hit.first <= kept[-1].last and span != (kept[-1].first, kept[-1].last):
                continue
            kept.append(hit)
        return kept
