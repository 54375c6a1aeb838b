"""Abuse: insults, threats and put-downs, and whether they are aimed AT a fellow parent.

A hit is aimed at the person addressed when second-person words ("you", "your") frame it or it is
a put-down ("get a life"); it is about someone else when a third person frames it ("that kid is a
thug", "rat of a daughter", a staff name). Abuse aimed at a member of staff who is being
addressed counts as abuse about staff, not abuse of a fellow parent.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from bot.policy.context import MessageContext, SchoolKnowledge
from bot.policy.patterns import Hit
from bot.policy.profanity import ProfanityModel
from bot.policy.rules import RuleId
from bot.policy.verdict import Finding

_LOOK_BACK = 6
_LOOK_AHEAD = 3
# The model's probability above which text counts as profane. Profanity alone is never abuse; it
# needs a target, and the lexicons carry most of the weight (see detection-notes).
PROFANITY_THRESHOLD = 0.9


class Target(Enum):
    ADDRESSEE = "addressee"
    OTHERS = "others"
    SELF = "self"
    THING = "thing"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class _Abuse:
    hit: Hit
    target: Target


# Words before "'s" that are not someone's name ("it's a joke", "that's pathetic").
_NOT_NAMES = frozenset({"it", "that", "what", "there", "here", "who", "where", "how", "he", "she",
                        "let", "everyone", "everybody", "someone", "somebody", "one", "nobody",
                        "today", "tomorrow", "school", "life", "this"})  # fmt: skip


def _base(word: str) -> str:
    return word.removesuffix("'s")


class AbuseDetector:
    def __init__(self, school: SchoolKnowledge, profanity: ProfanityModel | None) -> None:
        self.insults = school.phrases("abuse.insults")
        self.contextual = school.phrases("abuse.contextual_insults")
        self.person_or_thing = school.phrases("abuse.person_or_thing_insults")
        self.adjectives = school.phrases("abuse.insulting_adjectives")
        self.put_downs = school.phrases("abuse.put_downs")
        self.threats = school.phrases("abuse.threats")
        self.profanity_words = school.phrases("abuse.strong_profanity")
        self.idioms = school.phrases("abuse.idioms")
        self.sarcasm = school.phrases("abuse.sarcasm")
        self.sarcasm_markers = frozenset(school.lexicons["abuse.sarcasm_markers"])
        self.framing = school.words("abuse.insult_framing")
        self.you = school.words("you")
        self.third = school.words("third_person")
        self.first = school.words("first_person")
        self.person = school.words("person_noun")
        self.things = school.words("institution", "school_name")
        self.profanity = profanity
        self.phrase_sets = (
            self.insults, self.contextual, self.person_or_thing, self.adjectives, self.put_downs,
            self.threats,
            self.profanity_words, self.idioms, self.sarcasm,
        )  # fmt: skip

    def maskable_words(self) -> list[str]:
        """Words people hide behind asterisks, swear words first."""
        sets = (self.profanity_words, self.insults, self.adjectives, self.contextual)
        return [word for phrases in sets for word in sorted(phrases.words)]

    def detect(self, ctx: MessageContext) -> list[Finding]:
        harmless = {i for hit in self.idioms.find(ctx.text) for i in range(hit.first, hit.last + 1)}
        abuses = [a for a in self._abuses(ctx) if a.hit.first not in harmless]
        aimed = [a for a in abuses if a.target is Target.ADDRESSEE]
        about = [a for a in abuses if a.target is Target.OTHERS]
        findings: list[Finding] = []
        if aimed:
            evidence = "; ".join(dict.fromkeys(ctx.quote(a.hit) for a in aimed))
            if ctx.addresses_staff:
                about.extend(aimed)
            else:
                findings.append(Finding(RuleId.ABUSIVE_TO_PARENT, evidence))
        if about:
            evidence = "; ".join(dict.fromkeys(ctx.quote(a.hit) for a in about))
            findings.append(Finding(RuleId.ABUSIVE_ABOUT_OTHERS, evidence))
        return findings

    def _abuses(self, ctx: MessageContext) -> list[_Abuse]:
        found: list[_Abuse] = []
        for hit in self.insults.find(ctx.text):
            # An insulting noun names a person even where a thing is nearby ("the genius
            # running this place"); only the sender calling themselves one is harmless.
            target = self._target(ctx, hit)
            if target is Target.UNKNOWN:
                target = Target.ADDRESSEE if self._talks_to_someone(ctx) else Target.OTHERS
            elif target is Target.THING:
                target = Target.OTHERS
            found.append(_Abuse(hit, target))
        for hit in self.contextual.find(ctx.text):
            if self._framed(ctx, hit):
                found.append(_Abuse(hit, self._person_target(ctx, hit)))
        for hit in self.person_or_thing.find(ctx.text):
            found.append(_Abuse(hit, self._person_target(ctx, hit)))
        for hit in self.adjectives.find(ctx.text):
            if self._before_person_noun(ctx, hit):  # "useless woman": said of that person
                found.append(_Abuse(hit, self._addressee_or_others(ctx, hit)))
            elif self._said_of_person(ctx, hit):
                found.append(_Abuse(hit, self._person_target(ctx, hit)))
        for hit in self.put_downs.find(ctx.text):
            found.append(_Abuse(hit, Target.ADDRESSEE))
        for hit in self.threats.find(ctx.text):
            found.append(_Abuse(hit, self._threat_target(ctx, hit)))
        for hit in self.profanity_words.find(ctx.text):
            if self._directed_swearing(ctx, hit):
                found.append(_Abuse(hit, Target.ADDRESSEE))
        found.extend(self._sarcasm(ctx))
        if not found and self.profanity is not None and self._talks_to_someone(ctx):
            found.extend(self._model_abuse(ctx, self.profanity))
        quoted = ctx.quoted
        found = [a for a in found if a.hit.first not in quoted]  # reported words, not the sender's
        return self._follow_earlier_targets(ctx, found)

    def _follow_earlier_targets(self, ctx: MessageContext, found: list[_Abuse]) -> list[_Abuse]:
        """An insult that is a sentence of its own ("... you sad little man. pathetic.") is
        aimed where the abuse before it was."""
        found.sort(key=lambda a: a.hit.first)
        resolved: list[_Abuse] = []
        for abuse in found:
            if resolved and self._stands_alone(ctx, abuse.hit):
                abuse = _Abuse(abuse.hit, resolved[-1].target)
            if abuse.target in (Target.ADDRESSEE, Target.OTHERS):
                resolved.append(abuse)
        return resolved

    @staticmethod
    def _stands_alone(ctx: MessageContext, hit: Hit) -> bool:
        """A single insulting word that is a whole sentence."""
        single = hit.first == hit.last
        return single and not ctx.before(hit.first, 1) and not ctx.after(hit.last, 1)

    def _sarcasm(self, ctx: MessageContext) -> list[_Abuse]:
        """Mock praise with an eye-roll, aimed at the person replied to or addressed."""
        if not (ctx.replies_to_parent or any(t.text in self.you for t in ctx.text.tokens)):
            return []
        if not any(t.text in self.sarcasm_markers for t in ctx.text.tokens):
            return []
        return [_Abuse(hit, Target.ADDRESSEE) for hit in self.sarcasm.find(ctx.text)]

    # -- targets ------------------------------------------------------------------------------

    def _target(self, ctx: MessageContext, hit: Hit) -> Target:
        """Who the words at ``hit`` are said of, from the words around them."""
        own_words = {t.text for t in ctx.text.tokens[hit.first : hit.last + 1]}
        if own_words & self.you:
            return Target.ADDRESSEE  # "ur a sad little man"
        after = ctx.after(hit.last, _LOOK_AHEAD)
        if len(after) >= 2 and after[0] == "of" and after[1] in ("a", "an"):
            return Target.OTHERS  # "rat of a daughter"
        raw_before = ctx.before(hit.first, _LOOK_BACK)
        before = [_base(w) for w in raw_before]
        for raw, word in zip(reversed(raw_before), reversed(before), strict=True):
            if (
                raw != word
                and word not in self.you
                and word not in self.first
                and word not in _NOT_NAMES
            ):
                return Target.OTHERS  # "your Mason's a nasty little brat": Mason is
            if word in self.you:
                return Target.ADDRESSEE
            if word in self.third or word in self.person or self._is_staff_word(ctx, word):
                return Target.OTHERS
            if word in self.first:
                return Target.SELF
            if word in self.things:
                return Target.THING
            if word in ("that", "those"):
                return Target.OTHERS  # "that ignorant cow with the white Qashqai"
        if ctx.staff_named_in_sentence_of(hit.first):
            return Target.OTHERS
        for word in after:
            if _base(word) in self.person or word in self.third:
                return Target.OTHERS
        if ctx.text.tokens[hit.first].text.endswith("'s"):
            return Target.OTHERS  # "the kid's feral"
        if not before:
            return self._earlier_referent(ctx, hit)
        return Target.UNKNOWN

    def _earlier_referent(self, ctx: MessageContext, hit: Hit) -> Target:
        """For an insult standing alone ("feral." "pathetic."), whoever was last spoken of."""
        referents = ctx.memo.get("abuse.referents")
        if referents is None:
            referents = ctx.memo["abuse.referents"] = self._referents(ctx)
        return referents[hit.first]

    def _referents(self, ctx: MessageContext) -> list[Target]:
        """For each token, who was last spoken of before it: one pass over the message."""
        referents: list[Target] = []
        last = Target.UNKNOWN
        for token in ctx.text.tokens:
            referents.append(last)
            word = _base(token.text)
            if word in self.you:
                last = Target.ADDRESSEE
            elif word in self.third or word in self.person or self._is_staff_word(ctx, word):
                last = Target.OTHERS
        return referents

    def _person_target(self, ctx: MessageContext, hit: Hit) -> Target:
        """Like ``_target``, but an insult word with no person in sight is not aimed at anyone."""
        target = self._target(ctx, hit)
        if target is Target.UNKNOWN:
            return Target.ADDRESSEE if ctx.replies_to_parent else Target.OTHERS
        return target

    @staticmethod
    def _is_staff_word(ctx: MessageContext, word: str) -> bool:
        return word in ctx.staff_words

    def _talks_to_someone(self, ctx: MessageContext) -> bool:
        talks = ctx.memo.get("abuse.talks_to_someone")
        if talks is None:
            talks = ctx.replies_to_parent or any(t.text in self.you for t in ctx.text.tokens)
            ctx.memo["abuse.talks_to_someone"] = talks
        return bool(talks)

    def _framed(self, ctx: MessageContext, hit: Hit) -> bool:
        """An ordinary noun used as an insult: "you cow", "miserable cow", "rat of a daughter"."""
        before = ctx.before(hit.first, 2)
        if any(word in self.framing for word in before):
            return True
        after = ctx.after(hit.last, 2)
        return len(after) == 2 and after[0] == "of" and after[1] in ("a", "an")

    def _said_of_person(self, ctx: MessageContext, hit: Hit) -> bool:
        """An insulting adjective said of a person, not of a thing ("this app is useless")."""
        after = ctx.after(hit.last, 2)
        if after and after[0] in self.framing:
            return True  # "stupid little ..."
        before = [_base(w) for w in ctx.before(hit.first, 4)]
        if not before:
            return self._earlier_referent(ctx, hit) is not Target.UNKNOWN
        for word in reversed(before):
            if word in self.things:
                return False
            if (
                word in self.you
                or word in self.third
                or word in self.person
                or self._is_staff_word(ctx, word)
            ):
                return True
        return False

    def _threat_target(self, ctx: MessageContext, hit: Hit) -> Target:
        words = {t.text for t in ctx.text.tokens[hit.first : hit.last + 1]}
        if words & self.you:
            return Target.ADDRESSEE
        if words & self.third:
            return Target.OTHERS
        # "come near me or my girl and ...": at whoever the message is said to.
        return Target.ADDRESSEE if self._talks_to_someone(ctx) else Target.OTHERS

    def _before_person_noun(self, ctx: MessageContext, hit: Hit) -> bool:
        after = ctx.after(hit.last, 1)
        return bool(after) and _base(after[0]) in self.person

    def _addressee_or_others(self, ctx: MessageContext, hit: Hit) -> Target:
        before = ctx.before(hit.first, 4, clause=True)
        return Target.ADDRESSEE if any(w in self.you for w in before) else Target.OTHERS

    def _directed_swearing(self, ctx: MessageContext, hit: Hit) -> bool:
        """Strong swearing counts when it is aimed: "your sh*tty house", "f*ck you"."""
        before = ctx.before(hit.first, 2, clause=True)
        after = ctx.after(hit.last, 1, clause=True)
        return any(w in self.you for w in (*before, *after))

    def _model_abuse(self, ctx: MessageContext, model: ProfanityModel) -> list[_Abuse]:
        """What the lexicons missed but the model finds profane, if it is aimed at someone."""
        if model.probability(ctx.text.text) < PROFANITY_THRESHOLD:
            return []
        # Point at the word the model weighs most, so the evidence says something useful.
        worst = model.strongest_word(ctx.text.text)
        for index, token in enumerate(ctx.text.tokens):
            if token.text == worst:
                hit = Hit("profanity model", index, index)
                target = self._target(ctx, hit)
                if target in (Target.ADDRESSEE, Target.OTHERS):
                    return [_Abuse(hit, target)]
        return []
