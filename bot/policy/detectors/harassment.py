"""Harassment campaigns: enlisting others into a group, chat or action against staff or the school.

All three must be present: a call to others ("let's all", "dm me to get added", "share it"), a
hostile aim ("till she quits", "get him sacked", "1 star reviews") and a target among the staff
or the school. A new group for costume helpers, or a letter to the council, is not a campaign.
"""

from __future__ import annotations

from bot.policy.context import MessageContext, SchoolKnowledge
from bot.policy.rules import RuleId
from bot.policy.verdict import Finding


class HarassmentDetector:
    def __init__(self, school: SchoolKnowledge) -> None:
        self.mobilise = school.phrases("harassment.mobilise")
        self.hostile = school.phrases("harassment.hostile_aim")
        self.school_refs = school.phrases("disrepute.school_references")
        self.school_actions = school.phrases("harassment.school_actions")
        self.phrase_sets = (self.mobilise, self.hostile, self.school_refs, self.school_actions)

    def detect(self, ctx: MessageContext) -> list[Finding]:
        calls = self.mobilise.find(ctx.text)
        if not calls:
            return []
        actions = self.school_actions.find(ctx.text)
        aims = [*self.hostile.find(ctx.text), *actions]
        if not aims:
            return []
        if not (ctx.staff_refs or actions or self.school_refs.find(ctx.text)):
            return []
        evidence = "; ".join(dict.fromkeys(ctx.quote(h) for h in [*calls, *aims]))
        return [Finding(RuleId.HARASSMENT_CAMPAIGN, evidence)]
