"""Images: a photo or video that may show other children or staff, or school footage.

The engine cannot see pixels; it reads what the sender wrote and any description of the media.
Media that plainly shows nobody, or only the sender's own child, is fine.
"""

from __future__ import annotations

from bot.policy.context import MessageContext, SchoolKnowledge
from bot.policy.normalise import NormalisedText
from bot.policy.patterns import PhraseSet
from bot.policy.rules import RuleId
from bot.policy.verdict import Finding


class ImagesDetector:
    def __init__(self, school: SchoolKnowledge) -> None:
        self.kinds = frozenset(k.lower() for k in school.lexicons["images.media_kinds"])
        self.people = school.phrases("images.people")
        self.nobody = school.phrases("images.nobody")
        self.own_child = school.phrases("images.own_child_only")
        self.footage = school.phrases("images.footage")
        self.events = school.phrases("images.events")
        self.phrase_sets = (self.people, self.nobody, self.own_child, self.footage, self.events)

    def detect(self, ctx: MessageContext) -> list[Finding]:
        visual = [m for m in ctx.message.media if m.kind.lower() in self.kinds]
        if not visual:
            return []
        described = [ctx.captions, ctx.text]
        if any(self.nobody.find(text) for text in described):
            return []
        footage = self._quotes(self.footage, described)
        people = self._quotes(self.people, described)
        if not people and not any(self.own_child.find(text) for text in described):
            people = self._quotes(self.events, described)
        kinds = ", ".join(dict.fromkeys(m.kind for m in visual))
        screenshot = any(m.kind.lower() == "screenshot" for m in visual)
        if footage and (people or screenshot):
            evidence = footage + people
        elif people:
            evidence = people
        else:
            return []
        return [Finding(RuleId.IMAGES_CONSENT, f"{kinds}: {'; '.join(dict.fromkeys(evidence))}")]

    @staticmethod
    def _quotes(phrases: PhraseSet, texts: list[NormalisedText]) -> list[str]:
        return [text.quote(hit.first, hit.last) for text in texts for hit in phrases.find(text)]
