"""The policy engine: a ChatMessage and the school's configuration in, a Verdict out."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from itertools import chain

from bot.policy.config import PolicyConfig
from bot.policy.context import MessageContext, SchoolKnowledge
from bot.policy.detectors.abuse import AbuseDetector
from bot.policy.detectors.confidential import ConfidentialDetector
from bot.policy.detectors.disrepute import DisreputeDetector
from bot.policy.detectors.frequent import frequent_contact
from bot.policy.detectors.harassment import HarassmentDetector
from bot.policy.detectors.images import ImagesDetector
from bot.policy.detectors.staff_contact import Contact, StaffContactDetector
from bot.policy.features import REPLY_CHARS, ModelInput, model_input
from bot.policy.learned import LearnedModel
from bot.policy.lexicon import LexiconData
from bot.policy.message import ChatMessage, Role
from bot.policy.normalise import NormalisedText, Normaliser
from bot.policy.patterns import PhraseSet
from bot.policy.profanity import ProfanityModel
from bot.policy.rules import RuleId
from bot.policy.school import SchoolConfig
from bot.policy.verdict import FROM_MODEL, Explanation, Finding, Verdict

# Longer than any chat platform allows (Telegram: 4,096; WhatsApp: 65,536 bytes); anything longer
# is refused rather than analysed slowly.
MAX_TEXT_CHARS = 65_536


QUOTED_EXAMPLE_CHARS = 120


def _shorten(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= QUOTED_EXAMPLE_CHARS else flat[: QUOTED_EXAMPLE_CHARS - 1] + "…"


class MessageTooLongError(ValueError):
    def __init__(self, length: int) -> None:
        super().__init__(
            f"message text is {length:,} characters; Schoolgate checks at most {MAX_TEXT_CHARS:,}"
        )


class PolicyEngine:
    """Built once per school (compiling every lexicon), then used for any number of messages."""

    def __init__(
        self,
        school: SchoolConfig,
        lexicons: LexiconData,
        policy: PolicyConfig | None = None,
        profanity: ProfanityModel | None = None,
        learned: LearnedModel | None = None,
    ) -> None:
        self.policy = policy or PolicyConfig()
        self.learned = learned
        self.school = SchoolKnowledge(school, lexicons.extended(self.policy.lexicons))
        self._abuse = AbuseDetector(self.school, profanity)
        self._staff_contact = StaffContactDetector(self.school)
        self._confidential = ConfidentialDetector(self.school)
        self._disrepute = DisreputeDetector(self.school)
        self._harassment = HarassmentDetector(self.school)
        self._images = ImagesDetector(self.school)
        detectors = (self._abuse, self._staff_contact, self._confidential, self._disrepute,
                     self._harassment, self._images)  # fmt: skip
        self._normalise = Normaliser(
            self.school.vocabulary(chain.from_iterable(d.phrase_sets for d in detectors)),
            self._abuse.maskable_words(),
        )
        self._school_names = PhraseSet("school names", self.school.classes["school_name"])

    def abuse_vocabulary(self) -> list[str]:
        """The insults and swear words the lexicons know, swear words first."""
        return self._abuse.maskable_words()

    def classify(self, message: ChatMessage) -> Verdict:
        if len(message.text) > MAX_TEXT_CHARS:
            raise MessageTooLongError(len(message.text))
        if self._is_staff(message):
            return Verdict(message.id)  # staff are not bound by the parents' code
        ctx, contacts = self._context(message)
        findings = [
            *self._abuse.detect(ctx),
            *self._staff_contact.detect(ctx, contacts),
            *self._confidential.detect(ctx),
            *self._disrepute.detect(ctx),
            *self._images.detect(ctx),
            *self._harassment.detect(ctx),
        ]
        if self.learned is not None:
            findings = self._with_learned(ctx, findings)
        contacted = tuple(dict.fromkeys(c.member.name for c in contacts if c.member is not None))
        return Verdict(message.id, self._explain(findings), contacted)

    def model_input(self, message: ChatMessage) -> ModelInput | None:
        """What the learned layer reads of ``message`` (None for staff, whom it never reads)."""
        if self._is_staff(message):
            return None
        ctx, _ = self._context(message)
        return model_input(ctx, self._school_names, self._replied(message))

    def _is_staff(self, message: ChatMessage) -> bool:
        directory = self.school.directory
        return (
            message.sender.role is Role.STAFF or directory.match_person(message.sender) is not None
        )

    def _context(self, message: ChatMessage) -> tuple[MessageContext, list[Contact]]:
        directory = self.school.directory
        text = self._normalise(message.text)
        ctx = MessageContext(
            message=message,
            text=text,
            school=self.school,
            captions=self._normalise("\n".join(m.caption for m in message.media if m.caption)),
            reply_staff=directory.match_person(message.reply_to.sender)
            if message.reply_to
            else None,
            staff_refs=directory.references(text),
        )
        contacts = self._staff_contact.contacts(ctx)
        ctx.addresses_staff = bool(contacts)
        return ctx, contacts

    def _replied(self, message: ChatMessage) -> NormalisedText | None:
        """The beginning of the message replied to, normalised, for the learned layer."""
        if message.reply_to is None or not message.reply_to.text.strip():
            return None
        return self._normalise(message.reply_to.text[:REPLY_CHARS])

    def _with_learned(self, ctx: MessageContext, found: list[Finding]) -> list[Finding]:
        """The word rules' ``found`` with the learned layer's reading: a word rule's finding is
        dropped where the model is sure the message does not break that rule (on unseen authors,
        19 in 20 of such findings were false), and what the model finds that the word rules
        did not is added, each with its score, the words that weighed most and the labelled
        message it reads most like. Only those are explained: explaining costs more than
        scoring."""
        model = self.learned
        assert model is not None
        features = model_input(ctx, self._school_names, self._replied(ctx.message))
        scores = model.scores(features)
        overruled = {RuleId(score.rule) for score in scores if score.overrules}
        findings = [f for f in found if f.rule not in overruled]
        kept = {f.rule for f in findings}
        for score in scores:
            rule = RuleId(score.rule)
            if not score.breaks or rule in kept or not self.policy.enabled(rule):
                continue
            words = model.weightiest_words(features, score.rule)
            nearest = model.nearest_example(features, score.rule)
            evidence = [
                f"raised by the learned model, not a word rule: score {score.probability:.2f}"
            ]
            if words:
                evidence.append("words that weighed most: " + ", ".join(f'"{w}"' for w in words))
            if nearest is not None:
                evidence.append(f'reads like: "{_shorten(nearest.text)}"')
            findings.append(Finding(rule, "; ".join(evidence), source=FROM_MODEL))
        return findings

    def frequent_contact(
        self, contact_times: Iterable[datetime], now: datetime
    ) -> Explanation | None:
        """The ``frequent-contact`` rule over a sender's recent staff-contact times."""
        finding = frequent_contact(contact_times, now, self.policy.frequent_contact.limit)
        explained = self._explain([finding] if finding else [])
        return explained[0] if explained else None

    def _explain(self, findings: list[Finding]) -> tuple[Explanation, ...]:
        policy = self.policy
        enabled = {f.rule for f in findings if policy.enabled(f.rule)}
        if RuleId.STAFF_CONTACT not in enabled:
            enabled.discard(RuleId.OUT_OF_HOURS)  # out-of-hours is a kind of staff contact
        explanations = [
            Explanation(
                f.rule, policy.severity(f.rule), policy.clause(f.rule), f.evidence, f.source
            )
            for f in findings
            if f.rule in enabled
        ]
        return Verdict.ordered(explanations)
