"""The rule catalogue: stable ids, default severities and the clause of the code each enforces."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, StrEnum


class RuleId(StrEnum):
    ABUSIVE_TO_PARENT = "abusive-to-parent"
    ABUSIVE_ABOUT_OTHERS = "abusive-about-others"
    STAFF_CONTACT = "staff-contact"
    OUT_OF_HOURS = "out-of-hours"
    CONFIDENTIAL_INFO = "confidential-info"
    DISREPUTE = "disrepute"
    IMAGES_CONSENT = "images-consent"
    HARASSMENT_CAMPAIGN = "harassment-campaign"
    FREQUENT_CONTACT = "frequent-contact"


class Severity(IntEnum):
    """Ordered so that the most serious of several rules wins with ``max``."""

    LOW = 1
    MEDIUM = 2
    HIGH = 3

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, value: str) -> Severity:
        try:
            return cls[value.strip().upper()]
        except KeyError:
            allowed = ", ".join(s.label for s in cls)
            raise ValueError(f"severity must be one of {allowed}, not {value!r}") from None


@dataclass(frozen=True, slots=True)
class Rule:
    id: RuleId
    severity: Severity
    clause: str
    summary: str


_CATALOGUE = (
    Rule(
        RuleId.ABUSIVE_TO_PARENT,
        Severity.HIGH,
        "Sending abusive messages to fellow parents/carers",
        "An abusive, insulting, threatening or demeaning message aimed at a fellow parent/carer.",
    ),
    Rule(
        RuleId.ABUSIVE_ABOUT_OTHERS,
        Severity.HIGH,
        "Sending abusive messages about members of staff, parents/carers, pupils or the school",
        "Abusive or insulting content about staff, other parents/carers, pupils or the school.",
    ),
    Rule(
        RuleId.STAFF_CONTACT,
        Severity.LOW,
        "All communications to school staff must be sent via the permitted school platforms",
        "A message that addresses a member of staff in the chat.",
    ),
    Rule(
        RuleId.OUT_OF_HOURS,
        Severity.LOW,
        "Parents/carers should understand that staff should not be contacted outside of working"
        " hours",
        "Staff contacted outside their working hours.",
    ),
    Rule(
        RuleId.CONFIDENTIAL_INFO,
        Severity.HIGH,
        "Sharing confidential or sensitive information about members of staff, parents/carers,"
        " pupils or the school",
        "Someone else's contact details, or health, SEN, safeguarding, family, complaint or staff"
        " matters about another person.",
    ),
    Rule(
        RuleId.DISREPUTE,
        Severity.MEDIUM,
        "Bringing the school or its staff into disrepute",
        "Public complaint about the school, allegations against it or its staff, or calls to"
        " damage its reputation.",
    ),
    Rule(
        RuleId.IMAGES_CONSENT,
        Severity.MEDIUM,
        "Posting images of any staff members or pupils without their prior consent",
        "A photo or video that may show other children or staff, or a screenshot of school"
        " footage.",
    ),
    Rule(
        RuleId.HARASSMENT_CAMPAIGN,
        Severity.HIGH,
        "Creating or joining private groups or chats that victimise or harass a member of staff or"
        " the school in general",
        "Organising others into a group, chat or action against staff or the school.",
    ),
    Rule(
        RuleId.FREQUENT_CONTACT,
        Severity.LOW,
        "The school does not condone parents/carers sending frequent messages to staff",
        "A parent contacting staff more often than the school allows.",
    ),
)

RULES: dict[RuleId, Rule] = {rule.id: rule for rule in _CATALOGUE}
RULE_ORDER: dict[RuleId, int] = {rule.id: index for index, rule in enumerate(_CATALOGUE)}
