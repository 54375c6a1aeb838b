"""Disrepute: public complaint about the school, allegations against it, calls to damage it.

Damning words count when they are said of the school or its staff in the same sentence; calls to
post reviews or go to the press count on their own. Concerns taken to the school directly are
what the code asks for, so mild criticism routed that way never counts.
"""

from __future__ import annotations

from bisect import bisect_left

from bot.policy.context import MessageContext, SchoolKnowledge
from bot.policy.patterns import Hit
from bot.policy.rules import RuleId
from bot.policy.verdict import Finding


class DisreputeDetector:
    def __init__(self, school: SchoolKnowledge) -> None:
        self.condemnation = school.phrases("disrepute.condemnation")
        self.platforms = school.phrases("disrepute.public_platforms")
        self.damage = school.phrases("disrepute.reputation_damage")
        self.proper_channel = school.phrases("disrepute.proper_channel")
        self.allegations = school.phrases("disrepute.allegations")
        self.school_refs = school.phrases("disrepute.school_references")
        self.you = school.words("you")
        self.pronouns = frozenset(
            {"they", "them", "their", "they're", "theyre", "she", "he", "her", "his", "him"}
        )
        self.phrase_sets = (self.condemnation, self.platforms, self.damage, self.proper_channel,
                            self.school_refs, self.allegations)  # fmt: skip

    def detect(self, ctx: MessageContext) -> list[Finding]:
        refs = [hit.first for hit in self.school_refs.find(ctx.text)]
        refs += [ref.first for ref in ctx.staff_refs]
        if refs:
            # Once the school or a teacher has been named, "they" and "she" refer back to them,
            # and in a message said to staff, so does "you".
            named = min(refs)
            pronouns = self.pronouns | (self.you if ctx.addresses_staff else frozenset())
            refs += [i for i, t in enumerate(ctx.text.tokens) if i > named and t.text in pronouns]
            refs.sort()
        evidence: list[str] = []
        for hit in self.condemnation.find(ctx.text):
            if self._about_school(ctx, hit, refs):
                evidence.append(ctx.quote(hit))
        if len(evidence) == 1 and self.proper_channel.find(ctx.text):
            evidence = []  # one sharp word while taking the concern to the school is fine
        evidence.extend(ctx.quote(hit) for hit in self.allegations.find(ctx.text))
        damage = self.damage.find(ctx.text)
        platforms = self.platforms.find(ctx.text)
        if damage or (platforms and evidence):
            evidence.extend(ctx.quote(hit) for hit in [*damage, *platforms])
        if not evidence:
            return []
        return [Finding(RuleId.DISREPUTE, "; ".join(dict.fromkeys(evidence)))]

    @staticmethod
    def _about_school(ctx: MessageContext, hit: Hit, refs: list[int]) -> bool:
        sentences = ctx.memo.get("disrepute.ref_sentences")
        if sentences is None:
            ids = ctx.sentence_ids
            sentences = ctx.memo["disrepute.ref_sentences"] = frozenset(ids[r] for r in refs)
        nearest = bisect_left(refs, hit.first)  # refs are sorted
        inside = nearest < len(refs) and refs[nearest] <= hit.last
        return inside or ctx.sentence_ids[hit.first] in sentences
