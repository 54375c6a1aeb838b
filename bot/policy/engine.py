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
from bot.policy.detectors.staff_contact import StaffContactDetector
from bot.policy.lexicon import LexiconData
from bot.policy.message import ChatMessage, Role
from bot.policy.normalise import Normaliser
from bot.policy.profanity import ProfanityModel
from bot.policy.rules import RuleId
from bot.policy.school import SchoolConfig
from bot.policy.verdict import Explanation, Finding, Verdict

# Longer than any chat platform allows (Telegram: 4,096; WhatsApp: 65,536 bytes); anything longer
# is refused rather than analysed slowly.
MAX_TEXT_CHARS = 65_536


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
    ) -> None:
        self.policy = policy or PolicyConfig()
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

    def abuse_vocabulary(self) -> list[str]:
        """The insults and swear words the lexicons know, swear words first."""
        return self._abuse.maskable_words()

    def classify(self, message: ChatMessage) -> Verdict:
        if len(message.text) > MAX_TEXT_CHARS:
            raise MessageTooLongError(len(message.text))
        directory = self.school.directory
        if message.sender.role is Role.STAFF or directory.match_person(message.sender):
            return Verdict(message.id)  # staff are not bound by the parents' code
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
        findings = [
            *self._abuse.detect(ctx),
            *self._staff_contact.detect(ctx, contacts),
            *self._confidential.detect(ctx),
            *self._disrepute.detect(ctx),
            *self._images.detect(ctx),
            *self._harassment.detect(ctx),
        ]
        contacted = tuple(dict.fromkeys(c.member.name for c in contacts if c.member is not None))
        return Verdict(message.id, self._explain(findings), contacted)

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
            Explanation(f.rule, policy.severity(f.rule), policy.clause(f.rule), f.evidence)
            for f in findings
            if f.rule in enabled
        ]
        return Verdict.ordered(explanations)
