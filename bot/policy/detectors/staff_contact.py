"""Staff contact: a message that addresses a member of staff in the chat, and when it was sent.

Contact is an @handle, a reply to a staff member's message, or the staff member's name used to
address them ("Chloe can you...", "Thanks Mr Reilly!"). Talking about staff in the third person
("Mr Okafor was brilliant", "Mrs Patel's assembly") is not contact.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.policy.context import MessageContext, SchoolKnowledge
from bot.policy.normalise import Kind
from bot.policy.patterns import PhraseSet
from bot.policy.rules import RuleId
from bot.policy.school import StaffMember
from bot.policy.staff import StaffHit
from bot.policy.verdict import Finding

_AFTER_NAME_PUNCT = frozenset({",", "!", "?", ":", "-", "."})
_SOFTENERS = frozenset({"so", "really", "very", "just", "a"})
_PLEASE = frozenset({"please", "pls", "plz"})
# Titles children and parents use on their own to address a teacher.
_BARE_TITLES = frozenset({"miss", "sir"})


@dataclass(frozen=True, slots=True)
class Contact:
    member: StaffMember | None
    evidence: str


_DETERMINERS = frozenset({"the", "my", "our", "his", "her", "their", "your", "ur", "tomorrow's",
                          "todays", "today's", "next", "this", "that"})  # fmt: skip


class StaffContactDetector:
    def __init__(self, school: SchoolKnowledge) -> None:
        self.school = school
        self.greetings = PhraseSet("greetings", ["{greeting}"], school.classes)
        self.off_platform = school.phrases("staff.off_platform_contact")
        self.modal = school.words("modal")
        self.you = school.words("you")
        self.subjects = frozenset(
            {"i", "we", "u", "you", "ya", "someone", "anyone", "it", "there", "this", "that",
             "he", "she", "they"}
        )  # fmt: skip
        # Words that, straight after a name opening a message, show it is said to that person:
        # "Chloe sorry to bother you", "Anita quick one", "Mr Okafor if you're reading this".
        self.addressing = frozenset(
            {"when", "what", "where", "why", "how", "who", "which", "sorry", "thanks", "thank",
             "cheers", "hi", "hiya", "hello", "hey", "hope", "just", "quick", "please", "pls",
             "plz", "if", "i", "i'm", "im", "i've", "ive", "i'd", "we", "we're", "any", "re",
             "fyi", "btw", "x", "xx", "morning", "evening", "afternoon", "congratulations",
             "congrats", "well", "happy", "welcome", "good", "great", "lovely", "ok", "okay"}
        )  # fmt: skip
        self.phrase_sets = (self.greetings, self.off_platform)

    def contacts(self, ctx: MessageContext) -> list[Contact]:
        found: list[Contact] = []
        directory = self.school.directory
        for mention in dict.fromkeys(
            [*ctx.message.mentions, *(t.text for t in ctx.text.tokens if t.kind is Kind.MENTION)]
        ):
            member = directory.by_handle(mention)
            if member is not None:
                found.append(Contact(member, mention if mention.startswith("@") else f"@{mention}"))
        reply = ctx.message.reply_to
        if reply is not None and (ctx.reply_staff is not None or reply.sender.role == "staff"):
            name = ctx.reply_staff.name if ctx.reply_staff else reply.sender.name or "staff"
            found.append(Contact(ctx.reply_staff, f"reply to {name}'s message"))
        greeted = self._greeted_positions(ctx)
        replied_name = self._replied_parent_first_name(ctx)
        for hit in directory.addressed_forms(ctx.text):
            if hit.form == replied_name:
                continue  # "Sarah you star" to the parent Sarah being replied to
            if self._is_vocative(ctx, hit, greeted):
                found.append(Contact(hit.member, ctx.quote(hit)))
        bare = self._bare_title(ctx)
        if bare is not None:
            found.append(bare)
        for phrase in self.off_platform.find(ctx.text):
            members = [r.member for r in ctx.staff_refs if phrase.first <= r.first <= phrase.last]
            found.append(Contact(members[0] if members else None, ctx.quote(phrase)))
        return found

    def detect(self, ctx: MessageContext, contacts: list[Contact]) -> list[Finding]:
        findings: list[Finding] = []
        if contacts:
            evidence = "; ".join(dict.fromkeys(c.evidence for c in contacts))
            findings.append(Finding(RuleId.STAFF_CONTACT, evidence))
            outside = self._outside_hours(ctx, contacts)
            if outside is not None:
                findings.append(Finding(RuleId.OUT_OF_HOURS, outside))
        return findings

    def _outside_hours(self, ctx: MessageContext, contacts: list[Contact]) -> str | None:
        for contact in contacts:
            calendar = self.school.calendar_for(contact.member)
            reason = calendar.outside_hours(ctx.message.sent_at)
            if reason is not None:
                who = f"{contact.member.name}'s" if contact.member else "staff"
                hours = calendar.hours.describe()
                return f"sent {reason.reason} ({calendar.zone.key}); {who} hours are {hours}"
        return None

    @staticmethod
    def _another_persons_initial(ctx: MessageContext, hit: StaffHit) -> bool:
        """ "Tom A - your lights are on": a surname initial that is not the staff member's."""
        tokens = ctx.text.tokens
        if hit.last + 1 >= len(tokens) or " " in hit.form:
            return False
        after = tokens[hit.last + 1]
        written = ctx.text.original[after.start : after.end]
        surname = hit.member.name.split()[-1][:1].lower()
        return len(written) == 1 and written.isupper() and written.lower() != surname

    def _bare_title(self, ctx: MessageContext) -> Contact | None:
        """ "Miss, can you check ...": a message opening with a bare title said to a teacher."""
        opening = [
            (index, token.text)
            for index, (token, sentence) in enumerate(
                zip(ctx.text.tokens, ctx.sentence_ids, strict=True)
            )
            if sentence == 0 and token.is_wordlike
        ][:4]
        words = [word for _, word in opening]
        if not words or words[0] not in _BARE_TITLES:
            return None
        rest = [w for w in words[1:] if w not in _SOFTENERS]
        addressed = bool(rest) and (
            rest[0] in self.you or rest[0] in _PLEASE
            or (len(rest) >= 2 and rest[0] in self.modal and rest[1] in self.subjects)
        )  # fmt: skip
        if not addressed:
            return None
        member = self.school.directory.by_title(words[0])
        return Contact(member, ctx.text.quote(opening[0][0], opening[0][0]))

    @staticmethod
    def _replied_parent_first_name(ctx: MessageContext) -> str | None:
        reply = ctx.message.reply_to
        if reply is None or not ctx.replies_to_parent or not reply.sender.name:
            return None
        return reply.sender.name.split()[0].lower()

    def _greeted_positions(self, ctx: MessageContext) -> set[int]:
        """Token positions straight after a greeting or thanks ("thanks Mr Reilly")."""
        return {hit.last + 1 for hit in self.greetings.find(ctx.text)}

    @staticmethod
    def _asked(ctx: MessageContext, index: int) -> bool:
        """Whether the sentence holding token ``index`` ends with a question mark."""
        tokens, ids = ctx.text.tokens, ctx.sentence_ids
        position = index
        while position + 1 < len(tokens) and ids[position + 1] == ids[index]:
            position += 1
        return tokens[position].text == "?"

    def _is_vocative(self, ctx: MessageContext, hit: StaffHit, greeted: set[int]) -> bool:
        if hit.possessive or self._another_persons_initial(ctx, hit):
            return False
        if hit.first in greeted:
            return True
        tokens = ctx.text.tokens
        following = tokens[hit.last + 1] if hit.last + 1 < len(tokens) else None
        soon = [w for w in ctx.after(hit.last, 3) if w not in _SOFTENERS]
        if soon and (
            soon[0] in self.you or (soon[0] == "if" and soon[1:2] and soon[1] in self.you)
        ):
            return True  # "Miss Hughes you're a star", "and Miss Hughes if you're reading this"
        opening = ctx.first_word_index >= hit.first or (
            hit.first > 0 and tokens[hit.first - 1].kind is Kind.PUNCT
            and tokens[hit.first - 1].text in (".", "!", "?")
        )  # fmt: skip
        if opening:
            if following is None or (
                following.kind is Kind.PUNCT and following.text in _AFTER_NAME_PUNCT
            ):
                return True
            after = [w for w in ctx.after(hit.last, 3) if w not in _SOFTENERS]
            if after and (after[0] in self.you or after[0] in self.addressing):
                return True
            if len(after) < 2 or after[0] not in self.modal:
                return False
            # "Mr Fraser is it PE tomorrow": a question put to them, no comma needed. After a
            # determiner it may be a statement ("Mr Fraser is the best"), unless it is asked.
            return after[1] in self.subjects or (
                after[1] in _DETERMINERS and self._asked(ctx, hit.last)
            )
        # "..., Mr Okafor?" at the end of a sentence.
        preceding = tokens[hit.first - 1] if hit.first > 0 else None
        return (
            preceding is not None
            and preceding.text == ","
            and (following is None or (following.kind is Kind.PUNCT and following.text in "!?."))
        )
