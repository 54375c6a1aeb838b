"""What the detectors share: the school's compiled knowledge, and one message's analysis."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import phonenumbers

from bot.policy.calendar import WorkingCalendar
from bot.policy.lexicon import LexiconData
from bot.policy.message import ChatMessage, Role
from bot.policy.normalise import Kind, NormalisedText
from bot.policy.patterns import Hit, PhraseSet
from bot.policy.school import SchoolConfig, StaffMember
from bot.policy.staff import StaffDirectory, StaffHit

SENTENCE_ENDS = frozenset({".", "!", "?"})
CLAUSE_ENDS = SENTENCE_ENDS | {",", ";", ":", "-"}

_UK_PHONE = re.compile(r"(?<![\d+])(?:\+44\s?\(?0?\)?\s?|0044\s?|\(?0)\d(?:[\s\-.)]?\d){8,9}(?!\d)")
# Starts only where a run of address characters starts, so a long run with no "@" is read once,
# not once per character.
_EMAIL = re.compile(r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")


def phone_key(text: str) -> str | None:
    """A UK phone number in E.164 form, or None when ``text`` cannot be one."""
    try:
        number = phonenumbers.parse(text, "GB")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def find_phone_numbers(text: str) -> list[re.Match[str]]:
    """UK-format phone numbers, including Ofcom's drama ranges that libphonenumber rejects."""
    return [m for m in _UK_PHONE.finditer(text) if phone_key(m.group()) is not None]


def find_emails(text: str) -> list[re.Match[str]]:
    return list(_EMAIL.finditer(text)) if "@" in text else []


class SchoolKnowledge:
    """Everything about one school the detectors need, compiled once."""

    def __init__(self, config: SchoolConfig, lexicons: LexiconData) -> None:
        self.config = config
        self.directory = StaffDirectory(config.staff)
        self.calendar = WorkingCalendar.for_school(config.school)
        self._staff_calendars = {
            member.name: WorkingCalendar.for_school(config.school, member.working_hours)
            for member in config.staff
            if member.working_hours is not None
        }
        school_names = [config.school.name, *config.school.aliases]
        self.classes: dict[str, tuple[str, ...]] = {
            **lexicons.classes,
            "staff_name": self.directory.name_forms() or ("\u2400",),
            "school_name": tuple(name.lower() for name in school_names),
        }
        self.lexicons = lexicons
        public = " ".join(
            [*config.permitted_platforms, config.school.phone, config.school.email,
             *config.school.public_contacts]
        )  # fmt: skip
        self.public_numbers = {
            key for m in find_phone_numbers(public) if (key := phone_key(m.group()))
        }
        self.public_emails = {m.group().lower() for m in find_emails(public)}
        self.public_email_domains = {e.split("@", 1)[1] for e in self.public_emails}
        self.staff_numbers = {
            key: member for member in config.staff if member.phone
            for key in [phone_key(member.phone)] if key
        }  # fmt: skip
        self.staff_emails = {m.email.lower(): m for m in config.staff if m.email}

    def phrases(self, key: str) -> PhraseSet:
        return PhraseSet(key, self.lexicons[key], self.classes)

    def words(self, *keys: str) -> frozenset[str]:
        """The single words of some lists or classes, for quick membership tests."""
        out: set[str] = set()
        for key in keys:
            values = self.classes[key] if key in self.classes else self.lexicons[key]
            out.update(v.lower() for v in values if " " not in v)
        return frozenset(out)

    def calendar_for(self, member: StaffMember | None) -> WorkingCalendar:
        if member is not None and member.name in self._staff_calendars:
            return self._staff_calendars[member.name]
        return self.calendar

    def vocabulary(self, phrase_sets: Iterable[PhraseSet]) -> set[str]:
        words: set[str] = set()
        for phrases in phrase_sets:
            words.update(phrases.words)
        return words


@dataclass
class MessageContext:
    """One message, normalised once and looked at from every detector."""

    message: ChatMessage
    text: NormalisedText
    school: SchoolKnowledge
    captions: NormalisedText
    reply_staff: StaffMember | None = None
    staff_refs: Sequence[StaffHit] = field(default_factory=tuple)
    addresses_staff: bool = False
    """Whether the message is said to a member of staff (a mention, a reply, their name)."""
    memo: dict[str, Any] = field(default_factory=dict)
    """What a detector works out once per message and asks about per hit."""

    # Each question below is asked once per hit; answering it from a set or table computed once
    # keeps every detector linear in the message's length.

    @cached_property
    def staff_sentences(self) -> frozenset[int]:
        """The sentences that name a member of staff."""
        ids = self.sentence_ids
        return frozenset(ids[ref.first] for ref in self.staff_refs)

    @cached_property
    def staff_words(self) -> frozenset[str]:
        """The last word of each staff name in the message, without "'s"."""
        tokens = self.text.tokens
        return frozenset(tokens[ref.last].text.removesuffix("'s") for ref in self.staff_refs)

    @cached_property
    def first_staff_ref_end(self) -> dict[int, int]:
        """For each sentence naming staff, where its first staff name ends."""
        ends: dict[int, int] = {}
        for ref in self.staff_refs:
            sentence = self.sentence_ids[ref.first]
            ends[sentence] = min(ends.get(sentence, ref.last), ref.last)
        return ends

    def staff_named_in_sentence_of(self, index: int) -> bool:
        return self.sentence_ids[index] in self.staff_sentences

    @cached_property
    def first_word_index(self) -> int:
        """Index of the first word-like token (the number of tokens when there is none)."""
        for index, token in enumerate(self.text.tokens):
            if token.is_wordlike:
                return index
        return len(self.text.tokens)

    @property
    def replies_to_parent(self) -> bool:
        reply = self.message.reply_to
        return reply is not None and self.reply_staff is None and reply.sender.role != Role.STAFF

    @cached_property
    def sentence_ids(self) -> tuple[int, ...]:
        """For each token, the number of the sentence it is in."""
        return self._segment(SENTENCE_ENDS)

    @cached_property
    def clause_ids(self) -> tuple[int, ...]:
        return self._segment(CLAUSE_ENDS)

    @cached_property
    def quoted(self) -> frozenset[int]:
        """Tokens between quotation marks: words the sender reports rather than says."""
        inside: set[int] = set()
        opened: int | None = None
        for index, token in enumerate(self.text.tokens):
            if token.kind is Kind.PUNCT and token.text in ("'", '"'):
                if opened is None:
                    opened = index
                else:
                    inside.update(range(opened + 1, index))
                    opened = None
        return frozenset(inside)

    def _segment(self, ends: frozenset[str]) -> tuple[int, ...]:
        ids = []
        current = 0
        previous_end = 0
        original = self.text.original
        for token in self.text.tokens:
            if "\n" in original[previous_end : token.start]:
                current += 1
            previous_end = token.end
            ids.append(current)
            if token.kind is Kind.PUNCT and token.text in ends:
                current += 1
        return tuple(ids)

    @cached_property
    def _words(self) -> tuple[list[int], list[int]]:
        """The positions of the word-like tokens, and for each token how many come before it."""
        positions: list[int] = []
        ranks: list[int] = []
        for index, token in enumerate(self.text.tokens):
            ranks.append(len(positions))
            if token.is_wordlike:
                positions.append(index)
        ranks.append(len(positions))
        return positions, ranks

    def before(self, index: int, size: int, *, clause: bool = False) -> list[str]:
        """Up to ``size`` word tokens before ``index`` in the same sentence (or clause)."""
        ids = self.clause_ids if clause else self.sentence_ids
        positions, ranks = self._words
        rank = ranks[index]
        here = ids[index]
        tokens = self.text.tokens
        return [tokens[p].text for p in positions[max(0, rank - size) : rank] if ids[p] == here]

    def after(self, index: int, size: int, *, clause: bool = False) -> list[str]:
        ids = self.clause_ids if clause else self.sentence_ids
        positions, ranks = self._words
        rank = ranks[index + 1]
        here = ids[index]
        tokens = self.text.tokens
        words = []
        for p in positions[rank : rank + size]:
            if ids[p] != here:
                break
            words.append(tokens[p].text)
        return words

    def same_sentence(self, first: int, second: int) -> bool:
        return self.sentence_ids[first] == self.sentence_ids[second]

    def quote(self, hit: Hit | StaffHit) -> str:
        return self.text.quote(hit.first, hit.last)
