"""Schools in the database, seeded from school files, and the policy engine for each."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import phonenumbers
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.errors import BadInputError
from bot.learning.weights import Weights
from bot.policy import PolicyEngine, SchoolConfig
from bot.policy.config import PolicyConfig
from bot.policy.learned import LearnedModel
from bot.policy.lexicon import LexiconData, LexiconError
from bot.policy.patterns import PatternError
from bot.policy.profanity import ProfanityModel
from bot.policy_files import describe_validation_error
from bot.services.school_settings import SchoolSettings, settings_of
from bot.store.models import School, StaffMember, utcnow
from bot.store.repositories.audit import AuditRepository
from bot.store.repositories.learning import LearningRepository
from bot.store.repositories.schools import SchoolRepository

log = logging.getLogger(__name__)

DEFAULT_ZONE = "Europe/London"


def slug_for(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:64] or "school"


def e164(phone: str, region: str = "GB") -> str | None:
    """A phone number as Twilio takes it (+447700900123); None when there is none or it is not a
    possible number (the school file's own checks report that)."""
    if not phone.strip():
        return None
    try:
        parsed = phonenumbers.parse(phone, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def school_zone(school: School) -> ZoneInfo:
    """The school's time zone: its days, weeks and months are counted in it. An empty one (not
    valid in a school file, but in the column all the same) is the default, not an error."""
    return ZoneInfo(school.config.get("school", {}).get("timezone") or DEFAULT_ZONE)


def local_midnight(day: date, zone: ZoneInfo) -> datetime:
    """The moment ``day`` starts in the school's time zone."""
    return datetime.combine(day, time.min, tzinfo=zone)


def day_bounds(
    zone: ZoneInfo, since: date | None, until: date | None
) -> tuple[datetime | None, datetime | None]:
    """From the start of ``since`` to the end of ``until``, school days, as instants: either
    may be None (no bound)."""
    if since is not None and until is not None and since > until:
        raise BadInputError("The 'from' date is after the 'to' date.")
    start = local_midnight(since, zone) if since else None
    end = local_midnight(until + timedelta(days=1), zone) if until else None
    return start, end


def validated_config(data: dict[str, Any]) -> SchoolConfig:
    """School-file data checked as a whole; BadInputError names each problem by field."""
    try:
        return SchoolConfig.model_validate(data)
    except ValidationError as error:
        raise BadInputError("; ".join(describe_validation_error(error))) from None


async def load_school(
    session: AsyncSession, config: SchoolConfig, actor: str, source: Path | None = None
) -> School:
    """Create or update the school named in ``config``, with its staff. Idempotent."""
    schools = SchoolRepository(session)
    data = config.model_dump(mode="json", by_alias=True)
    school = await schools.save(slug_for(config.school.name), config.school.name, data)
    await _sync_staff(session, school, config)
    await AuditRepository(session).record(
        actor, "school.loaded", f"school:{school.id}", school.id,
        source=str(source) if source else None, staff=len(config.staff),
    )  # fmt: skip
    return school


async def save_config(
    session: AsyncSession, school: School, config: SchoolConfig, actor: str, what: str
) -> School:
    """Replace a school's school-file data (as edited in the admin pages) and its staff list.

    ``what`` says what changed, for the audit log (e.g. "working hours"). The school's policy
    engine is rebuilt on its next use.
    """
    school.name = config.school.name
    school.config = config.model_dump(mode="json", by_alias=True)
    school.updated_at = utcnow()
    await session.flush()
    await _sync_staff(session, school, config)
    await AuditRepository(session).record(
        actor, "school.updated", f"school:{school.id}", school.id, changed=what
    )
    return school


async def _sync_staff(session: AsyncSession, school: School, config: SchoolConfig) -> None:
    await SchoolRepository(session).replace_staff(
        school.id,
        [
            StaffMember(
                name=member.name,
                role=member.role,
                handles=list(member.all_handles),
                slt=member.slt,
                dsl=member.dsl,
                email=member.email or None,
                phone=e164(member.phone),
            )
            for member in config.staff
        ],
    )


@dataclass
class EngineCache:
    """One compiled policy engine per school, with the school's own rule settings and, when it
    learns from its decisions, its own model, rebuilt when the school's data changes (saving its
    school file or settings, or retraining its model, moves ``updated_at``)."""

    lexicons: LexiconData
    policy: PolicyConfig
    profanity: ProfanityModel | None
    learned: LearnedModel | None = None
    """The corpus model, for every school that has no model of its own."""

    def __post_init__(self) -> None:
        self._engines: dict[int, tuple[str, PolicyEngine]] = {}

    async def for_school(self, session: AsyncSession, school: School) -> PolicyEngine:
        stamp = school.updated_at.isoformat()
        cached = self._engines.get(school.id)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        config = SchoolConfig.model_validate(school.config)
        chosen = settings_of(school)
        learned = await self.learned_for(session, school)
        try:
            engine = self.build(config, chosen, learned)
        except (LexiconError, PatternError) as error:
            # Terms are checked when saved, but a list they extend may have left the lexicons
            # since: checking messages without the school's terms beats not checking them.
            log.error("school %s: its extra lexicon terms are ignored: %s", school.id, error)
            engine = self.build(config, chosen.model_copy(update={"lexicons": {}}), learned)
        self._engines[school.id] = (stamp, engine)
        return engine

    async def learned_for(self, session: AsyncSession, school: School) -> LearnedModel | None:
        """The school's own model while it learns from its decisions and has one that fits the
        corpus model in use; else the corpus model."""
        if self.learned is None or settings_of(school).learning is None:
            return self.learned
        row = await LearningRepository(session).model(school.id)
        if row is None or row.weights is None or row.base != self.learned.version:
            return self.learned
        try:
            return Weights.from_bytes(row.weights).applied_to(self.learned)
        except (ValueError, KeyError, OSError) as error:
            log.error("school %s: its own model cannot be read (%s); using the corpus model",
                      school.id, error)  # fmt: skip
            return self.learned

    def build(
        self, config: SchoolConfig, settings: SchoolSettings, learned: LearnedModel | None = None
    ) -> PolicyEngine:
        """An engine for ``config`` with the school's ``settings`` laid over the installation's
        policy, and ``learned`` (None: the corpus model). Raises LexiconError or PatternError
        for extra terms that cannot be compiled."""
        return PolicyEngine(
            config, self.lexicons, settings.policy(self.policy), self.profanity,
            learned or self.learned,
        )  # fmt: skip

    def remember(self, school: School, engine: PolicyEngine) -> None:
        """Use ``engine``, just built from the school's data as it now is, until that changes."""
        self._engines[school.id] = (school.updated_at.isoformat(), engine)
