"""A school's choices for each rule (on or off, severity, alert timing, reminders), its extra
lexicon terms, and how each rule's flags have turned out when SLT decided them.

Every change is compiled into the school's policy engine before it is stored, so a term the
engine cannot use is refused with a clear message instead of breaking the bot.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from bot.errors import BadInputError
from bot.policy.config import FrequentContactSettings
from bot.policy.engine import PolicyEngine
from bot.policy.lexicon import LexiconError
from bot.policy.patterns import PatternError, PhraseSet
from bot.policy.rules import RULES, Rule, RuleId, Severity
from bot.policy.school import SchoolConfig
from bot.services.reminders import REMINDED_RULES
from bot.services.school_settings import (
    AlertTiming,
    RuleSetup,
    SchoolSettings,
    check_plain,
    save_settings,
    settings_of,
)
from bot.services.schools import EngineCache
from bot.store.models import School
from bot.store.repositories.rule_outcomes import RuleOutcome, RuleOutcomeRepository

MAX_TERMS = 300
MAX_TERM_CHARS = 200
_LIST = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*):")


@dataclass(frozen=True)
class RuleRow:
    rule: Rule
    clause: str
    default_severity: Severity
    """The installation's (the catalogue's unless the policy file changes it)."""
    setup: RuleSetup
    """The school's choices (defaults where it has made none)."""
    enabled: bool
    severity: Severity
    alert: AlertTiming
    """When SLT hear of it, as chosen or by severity."""
    remindable: bool
    """Whether there is a reminder to send the sender."""
    outcome: RuleOutcome

    @property
    def false_positive_rate(self) -> float | None:
        if not self.outcome.decided:
            return None
        return self.outcome.false_positives / self.outcome.decided

    @property
    def false_positive_text(self) -> str:
        """ "3 of 40 (7.5%)", or "no decisions yet"."""
        rate = self.false_positive_rate
        if rate is None:
            return "no decisions yet"
        return f"{self.outcome.false_positives} of {self.outcome.decided} ({rate * 100:.3g}%)"


def remindable_rules(reminder_texts: Mapping[str, str]) -> tuple[RuleId, ...]:
    return tuple(rule for rule in REMINDED_RULES if str(rule) in reminder_texts)


async def rule_table(
    session: AsyncSession, school: School, engines: EngineCache, reminder_texts: Mapping[str, str]
) -> list[RuleRow]:
    """Every rule, with the school's choices and its false-positive rate, in catalogue order."""
    settings = settings_of(school)
    outcomes = await RuleOutcomeRepository(session).by_rule(school.id)
    policy = settings.policy(engines.policy)
    remindable = remindable_rules(reminder_texts)
    rows = []
    for rule in RULES.values():
        severity = policy.severity(rule.id)
        rows.append(
            RuleRow(
                rule=rule,
                clause=policy.clause(rule.id),
                default_severity=engines.policy.severity(rule.id),
                setup=settings.rule(rule.id),
                enabled=policy.enabled(rule.id),
                severity=severity,
                alert=settings.alert_timing(rule.id, severity),
                remindable=rule.id in remindable,
                outcome=outcomes.get(str(rule.id), RuleOutcome(0, 0)),
            )
        )
    return rows


async def save_rules(
    session: AsyncSession,
    school: School,
    choices: Mapping[RuleId, RuleSetup],
    frequent_contact: FrequentContactSettings | None,
    engines: EngineCache,
    actor: str,
) -> None:
    """Replace the school's choices for each rule (a rule left out: the installation's) and
    its frequent-contact limit (None: the installation's)."""
    changed = settings_of(school).changed(
        rules=dict(choices),
        frequent_contact=frequent_contact.model_dump() if frequent_contact else None,
    )
    engine = await _compile(session, engines, school, changed)
    await save_settings(session, school, changed, actor, "rules")
    engines.remember(school, engine)


async def _compile(
    session: AsyncSession, engines: EngineCache, school: School, settings: SchoolSettings
) -> PolicyEngine:
    """The school's engine with ``settings``: BadInputError if it cannot be built."""
    learned = await engines.learned_for(session, school)
    try:
        return engines.build(SchoolConfig.model_validate(school.config), settings, learned)
    except (LexiconError, PatternError) as error:
        raise BadInputError(f"lexicons: {error}") from None


async def save_lexicons(
    session: AsyncSession,
    school: School,
    lexicons: Mapping[str, list[str]],
    engines: EngineCache,
    actor: str,
) -> None:
    """Replace the school's extra terms, by lexicon list (a list left out, or empty: none).

    Each term is written as in the lexicon files (see ``bot.policy.patterns``); raw regular
    expressions are refused, since one badly written could slow every check of every message.
    """
    known = engines.lexicons.lists
    current = await engines.for_school(session, school)
    terms: dict[str, list[str]] = {}
    for name, given in lexicons.items():
        if name not in known:
            raise BadInputError(f"lexicons.{name}: there is no lexicon list of that name")
        cleaned = list(dict.fromkeys(" ".join(t.split()) for t in given if t.strip()))
        if len(cleaned) > MAX_TERMS:
            raise BadInputError(f"lexicons.{name}: at most {MAX_TERMS} terms, not {len(cleaned)}")
        for term in cleaned:
            _check_term(name, term, current.school.classes)
        if cleaned:
            terms[name] = cleaned
    changed = settings_of(school).changed(lexicons=terms)
    engine = await _compile(session, engines, school, changed)
    await save_settings(session, school, changed, actor, "lexicon terms")
    engines.remember(school, engine)


def _check_term(name: str, term: str, classes: Mapping[str, tuple[str, ...]]) -> None:
    where = f"lexicons.{name}"
    try:
        check_plain(term)
    except ValueError as error:
        raise BadInputError(f"{where}: {term[:40]!r} {error}") from None
    if len(term) > MAX_TERM_CHARS:
        raise BadInputError(f"{where}: {term[:40]!r}... is longer than {MAX_TERM_CHARS} characters")
    if term.lower().startswith("re:"):
        raise BadInputError(
            f"{where}: {term!r}: a raw regular expression cannot be added here; write the words"
        )
    try:
        PhraseSet(name, [term], classes)
    except PatternError as error:
        raise BadInputError(f"{where}: {str(error).removeprefix(f'{name}: ')}") from None


@lru_cache(maxsize=4)
def lexicon_descriptions(directory: Path) -> dict[str, str]:
    """What each lexicon list is for, from the comment above it in its file (keyed like
    ``abuse.insults``); a list without one is left out."""
    described: dict[str, str] = {}
    for path in sorted(directory.glob("*.yaml")):
        comment: list[str] = []
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.startswith("#"):
                comment.append(line.lstrip("#").strip())
                continue
            match = _LIST.match(line)
            if match and comment:
                described[f"{path.stem}.{match[1]}"] = " ".join(comment)
            comment = []
    return described
