"""Confidential information: other people's contact details and sensitive matters about them.

A phone number, e-mail or address counts when it belongs to somebody else (not the sender, not
the school office or a business). A sensitive topic (health, SEN, safeguarding, family, staff
employment, complaints) counts when it is about a particular other person ("darcey's got
autism", "her dad got arrested", "Mr Reilly's been suspended"), not the sender's own family.
"""

from __future__ import annotations

import re

from bot.policy.context import (
    MessageContext,
    SchoolKnowledge,
    find_emails,
    find_phone_numbers,
    phone_key,
)
from bot.policy.patterns import Hit, PhraseSet
from bot.policy.rules import RuleId
from bot.policy.verdict import Finding

_POSTCODE = re.compile(
    r"\b(?:GIR ?0AA|[A-PR-UWYZ][A-HK-Y]?\d[A-Z\d]? ?\d[ABD-HJLNP-UW-Z]{2})\b", re.IGNORECASE
)
_STREET = re.compile(
    r"\b\d{1,4}[a-z]?,? (?:[A-Z][a-z]+ ){1,3}(?:Road|Rd|Street|St|Avenue|Ave|Lane|Ln|Close|Cl|Drive"
    r"|Dr|Way|Crescent|Cres|Gardens|Gdns|Court|Ct|Place|Pl|Terrace|Grove|Rise|View|Mews|Walk"
    r"|Park|Hill|Square|Row|Parade|Green|Meadow|Meadows|Fields|Croft|Lea|Vale)\b",
    re.IGNORECASE,
)
# Role addresses that are public by nature.
_ROLE_MAILBOXES = re.compile(
    r"^(?:office|admin|info|enquiries|enquiry|head|reception|bursar|sendco|senco|bookings|booking"
    r"|hello|contact|sales|support|events|parties|party|pta|clerk|finance|accounts|noreply)@"
)
# Contractions that end in 's but are not someone's.
_NOT_POSSESSIVE = frozenset(
    {
        "it's",
        "that's",
        "what's",
        "there's",
        "here's",
        "let's",
        "who's",
        "where's",
        "how's",
        "one's",
        "everyone's",
        "anyone's",
        "someone's",
    }
)
_CONTEXT_WORDS = 8
# "his mum is struggling", "ivy's dad": the family of a child who is not the sender's own.
_OTHER_FAMILY = re.compile(
    r"(?<!i'm )(?<!im )(?<!i am )\b(?:his|her|their|[a-z]+'s) (?:mum|mom|mam|dad|parents|mother"
    r"|father|nan|nana|gran|grandma|grandad)\b"
)
# Plural, generic people ("kids with SEN") are not a particular person whose privacy is at stake.
_GROUPS = frozenset({"people", "kids", "children", "parents", "pupils", "staff", "teachers", "lot",
                     "boys", "girls", "ones", "families", "mums", "dads"})  # fmt: skip
_WISHES = frozenset({"get", "getting", "should", "shouldn't", "want", "wants", "needs", "need",
                     "deserves", "deserve", "must", "hope", "wish", "if", "be"})  # fmt: skip


class ConfidentialDetector:
    def __init__(self, school: SchoolKnowledge) -> None:
        self.school = school
        self.topics: dict[str, PhraseSet] = {
            name: school.phrases(f"confidential.{name}")
            for name in ("health", "safeguarding", "staff_matters", "complaints")
        }
        self.hearsay = school.phrases("confidential.hearsay")
        self.public_context = school.phrases("confidential.public_contact_context")
        self.own_contact = school.phrases("confidential.own_contact")
        self.own_context = school.phrases("confidential.own_context")
        self.other_person = school.phrases("confidential.other_person")
        self.role_names = school.phrases("confidential.role_names")
        self.you = school.words("you")
        self.first = school.words("first_person")
        self.third_singular = frozenset(
            {"he", "she", "him", "her", "his", "hers", "he's", "she's", "hes", "shes", "whose"}
        )
        self.person = school.words("person_noun") - _GROUPS
        self.staff_roles = school.words("staff_role")
        self.phrase_sets = (
            *self.topics.values(), self.hearsay, self.public_context, self.own_contact,
            self.own_context, self.other_person, self.role_names,
        )  # fmt: skip

    def detect(self, ctx: MessageContext) -> list[Finding]:
        evidence = [
            *self._contact_details(ctx),
            *self._addresses(ctx),
            *self._sensitive_topics(ctx),
        ]
        if not evidence:
            return []
        return [Finding(RuleId.CONFIDENTIAL_INFO, "; ".join(dict.fromkeys(evidence)))]

    # -- contact details ----------------------------------------------------------------------

    def _near(self, ctx: MessageContext, phrases: PhraseSet, start: int, end: int) -> bool:
        """Whether ``phrases`` match within a few words of original characters start..end."""
        inside = ctx.text.span_tokens(start, end)
        if not inside:
            return False
        low, high = inside[0] - _CONTEXT_WORDS, inside[-1] + _CONTEXT_WORDS
        return any(low <= hit.first <= high for hit in phrases.find(ctx.text))

    def _belongs_to_someone_else(
        self,
        ctx: MessageContext,
        start: int,
        end: int,
        *,
        personal: bool,
        public_context: bool = True,
    ) -> bool:
        """Whether the detail at ``start:end`` is another person's.

        ``personal`` details (a mobile number, a home address, a named mailbox) are taken to be
        someone's unless the message makes them the sender's own or an organisation's; others
        (a landline) count only when the message attaches them to a person.
        """
        if self._near(ctx, self.own_contact, start, end) or self._signed_as_own(ctx, end):
            return False
        if public_context and self._near(ctx, self.public_context, start, end):
            return False
        return personal or self._near(ctx, self.other_person, start, end)

    @staticmethod
    def _signed_as_own(ctx: MessageContext, end: int) -> bool:
        """ "07700 900672 (me)", "07700 900672 - mine": the words straight after claim it."""
        tokens = ctx.text.tokens
        for index in range(ctx.text.span_tokens(end, len(ctx.text.original)).start, len(tokens)):
            if tokens[index].start >= end and tokens[index].is_wordlike:
                return tokens[index].text in ("me", "mine", "my", "ours")
        return False

    def _contact_details(self, ctx: MessageContext) -> list[str]:
        found: list[str] = []
        text = ctx.message.text
        for match in find_phone_numbers(text):
            key = phone_key(match.group())
            if key in self.school.public_numbers:
                continue
            mobile = key is not None and key.startswith("+447")
            if key in self.school.staff_numbers or self._belongs_to_someone_else(
                ctx, match.start(), match.end(), personal=mobile
            ):
                found.append(match.group())
        for match in find_emails(text):
            email = match.group().lower()
            domain = email.split("@", 1)[1]
            if email in self.school.public_emails or _ROLE_MAILBOXES.match(email):
                continue
            if email in self.school.staff_emails or (
                domain not in self.school.public_email_domains
                and self._belongs_to_someone_else(
                    ctx, match.start(), match.end(), personal=True, public_context=False
                )
            ):
                found.append(match.group())
        return found

    def _addresses(self, ctx: MessageContext) -> list[str]:
        found: list[str] = []
        text = ctx.message.text
        for match in _STREET.finditer(text):
            if self._belongs_to_someone_else(ctx, match.start(), match.end(), personal=True):
                found.append(match.group())
        for match in _POSTCODE.finditer(text):
            if self._belongs_to_someone_else(ctx, match.start(), match.end(), personal=False):
                found.append(match.group())
        return found

    # -- sensitive topics ---------------------------------------------------------------------

    def _sensitive_topics(self, ctx: MessageContext) -> list[str]:
        found: list[str] = []
        ignored = {i for h in self.role_names.find(ctx.text) for i in range(h.first, h.last + 1)}
        complaint_hits = self.topics["complaints"].find(ctx.text)
        found.extend(ctx.quote(hit) for hit in complaint_hits)
        for hit in self._unless(ctx, ignored, self.topics["staff_matters"]):
            if self._about_staff(ctx, hit) and not self._wished_for(ctx, hit):
                found.append(ctx.quote(hit))
        if self.own_context.find(ctx.text):
            return found
        hearsay = bool(self.hearsay.find(ctx.text))
        for hit in self._unless(ctx, ignored, self.topics["safeguarding"]):
            subject = self._subject(ctx, hit)
            if subject == "other" or (subject is None and hearsay):
                found.append(ctx.quote(hit))
        other_family = bool(_OTHER_FAMILY.search(ctx.text.text))
        for hit in self._unless(ctx, ignored, self.topics["health"]):
            # Parents announce their own child's diagnosis by name ("Zayan got his autism
            # diagnosis today"), so a health matter needs more than a name to be someone
            # else's: gossip, a member of staff, or the person being spoken to.
            subject = self._subject(ctx, hit)
            if subject != "own" and (
                hearsay or other_family or self._about_staff_or_addressee(ctx, hit)
            ):
                found.append(ctx.quote(hit))
        return found

    @staticmethod
    def _unless(ctx: MessageContext, ignored: set[int], phrases: PhraseSet) -> list[Hit]:
        """Hits not inside a role's name ("the safeguarding lead")."""
        return [hit for hit in phrases.find(ctx.text) if hit.first not in ignored]

    def _about_staff_or_addressee(self, ctx: MessageContext, hit: Hit) -> bool:
        if ctx.staff_named_in_sentence_of(hit.first):
            return True
        words = ctx.before(hit.first, 8) + ctx.after(hit.last, 4)
        return any(w in self.you or w.removesuffix("'s") in self.staff_roles for w in words)

    @staticmethod
    def _wished_for(ctx: MessageContext, hit: Hit) -> bool:
        """ "get him sacked", "should be suspended": a demand, not a disclosure."""
        return any(word in _WISHES for word in ctx.before(hit.first, 3, clause=True))

    def _about_staff(self, ctx: MessageContext, hit: Hit) -> bool:
        if ctx.staff_named_in_sentence_of(hit.first):
            return True
        words = ctx.before(hit.first, _CONTEXT_WORDS) + ctx.after(hit.last, _CONTEXT_WORDS)
        return any(w.removesuffix("'s") in self.staff_roles for w in words)

    def _subject(self, ctx: MessageContext, hit: Hit) -> str | None:
        """ "own", "other" or None: whose matter this is, from the words before it in its clause."""
        subject = self._subject_in(ctx.before(hit.first, 6, clause=True))
        if subject is not None:
            return subject
        named_end = ctx.first_staff_ref_end.get(ctx.sentence_ids[hit.first])
        if named_end is not None and named_end < hit.first:
            return "other"
        # Nothing before it in its clause: read the whole sentence ("police were at the house
        # ... the one where the twins live").
        return self._subject_in(ctx.before(hit.first, 20) + ctx.after(hit.last, 20))

    def _subject_in(self, words: list[str]) -> str | None:
        """ "own" or "other" from the person words nearest the end of ``words``."""
        for position in range(len(words) - 1, -1, -1):
            word = words[position]
            if word in self.first:
                return "own"
            if word in self.person or (word.endswith("'s") and word not in _NOT_POSSESSIVE):
                # "my daughter", "my cousin's lad" are the sender's own family; "his dad" is not.
                for owner in reversed(words[max(0, position - 2) : position]):
                    if owner in self.first:
                        return "own"
                    if not owner.endswith("'s"):
                        break
                return "other"
            if word in self.third_singular or word in self.you or word in ("whose", "where"):
                return "other"
        return None
