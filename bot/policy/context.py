"""What the detectors share: the school's compiled knowledge, and one message's analysis."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property

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
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")


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
    return list(_EMAIL.finditer(text))


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

    def before(self, index: int, size: int, *, clause: bool = False) -> list[str]:
        """Up to ``size`` word tokens before ``index`` in the same sentence (or clause)."""
        ids = self.clause_ids if clause else self.sentence_ids
        words: list[str] = []
        position = index - 1
        while position >= 0 and len(words) < size and ids[position] == ids[index]:
            token = self.text.tokens[position]
            if token.is_wordlike:
                words.append(token.text)
            position -= 1
        words.reverse()
        return words

    def after(self, index: int, size: int, *, clause: bool = False) -> list[str]:
        ids = self.clause_ids if clause else self.sentence_ids
        words: list[str] = []
        position = index + 1
        tokens = self.text.tokens
        while position < len(tokens) and len(words) < size and ids[position] == ids[index]:
            if tokens[position].is_wordlike:
                words.append(tokens[position].text)
            position += 1
        return words

    def same_sentence(self, first: int, second: int) -> bool:
        return self.sentence_ids[first] == self.sentence_ids[second]

    def quote(self, hit: Hit | StaffHit) -> str:
        return self.text.quote(hit.first, hit.last)
