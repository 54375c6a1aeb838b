"""Work that runs on a timer inside ``schoolgate serve`` (and the purge in ``schoolgate
worker``): the retention purge, and retraining the models of schools that learn from their
decisions. Running either in several processes at once is harmless: each purge deletes what is
due, and a retraining is claimed by one process."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.periodic import repeat
from bot.policy import PolicyEngine, SchoolConfig
from bot.policy.message import ChatMessage, Person, Role
from bot.policy_files import load_school
from bot.services import learning
from bot.services.retention import Purged, RetentionDefaults, purge_expired
from bot.services.school_settings import SchoolSettings, settings_of
from bot.services.schools import EngineCache
from bot.store.db import transaction
from bot.store.models import utcnow
from bot.store.repositories.learning import KeptExample, LearningRepository
from bot.store.repositories.schools import SchoolRepository

if TYPE_CHECKING:
    from bot.learning.school_model import SchoolTraining

log = logging.getLogger(__name__)

TRAINING_CLAIM = timedelta(minutes=30)
"""How long one process may take over a retraining before another may try."""


class Housekeeping:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        defaults: RetentionDefaults,
        every: float,
    ) -> None:
        self.sessions = sessions
        self.defaults = defaults
        self.every = every
        """Seconds between purges."""

    async def run_once(self, now: datetime | None = None) -> Purged:
        async with transaction(self.sessions) as session:
            purged = await purge_expired(session, now or utcnow(), self.defaults)
        if purged.anything:
            log.info(
                "retention: deleted %s message records, %s flags, %s audit events, %s other rows",
                purged.messages, purged.flags, purged.audit_events, purged.updates,
            )  # fmt: skip
        return purged

    async def run_forever(self, stop: asyncio.Event) -> None:
        """Purge now and then every ``every`` seconds until ``stop``; an outage is waited out."""
        await repeat(self.run_once, every=self.every, what="retention purge", stop=stop)


@dataclass(frozen=True)
class _Work:
    """What one retraining needs, read in one short transaction."""

    requested_at: datetime
    examples: list[KeptExample]
    config: SchoolConfig
    settings: SchoolSettings


class SchoolModelTraining:
    """Retrains each learning school's own model nightly and when asked (the Rules page's
    button, or an erasure that dropped the model). The data is read in one transaction, the
    model fitted in a worker thread with no transaction open, and the result kept in a second
    one only if nothing asked again meanwhile: an erasure during training wins."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        engines: EngineCache,
        corpus_dir: Path,
        every: float,
    ) -> None:
        self.sessions = sessions
        self.engines = engines
        self.corpus_dir = corpus_dir
        self.every = every

    async def run_once(self, now: datetime | None = None) -> list[int]:
        """Retrain what is due; the schools whose model was retrained."""
        now = now or utcnow()
        if self.engines.learned is None:
            return []  # no corpus model to refit
        async with transaction(self.sessions) as session:
            schools = await learning.ask_nightly(session, now)
            due = await LearningRepository(session).due(schools, now)
        trained = []
        for school_id in due:
            if await self.retrain(school_id, now):
                trained.append(school_id)
        return trained

    async def run_forever(self, stop: asyncio.Event) -> None:
        await repeat(self.run_once, every=self.every, what="school model training", stop=stop)

    async def retrain(self, school_id: int, now: datetime) -> bool:
        work = await self._claim(school_id, now)
        if work is None:
            return False
        try:
            result = await asyncio.to_thread(self._train, work)
        except Exception as error:
            log.exception("school %s: its model could not be retrained", school_id)
            await self._record_problem(school_id, work, f"{type(error).__name__}: {error}")
            return False
        return await self._keep(school_id, work, result, utcnow())

    async def _claim(self, school_id: int, now: datetime) -> _Work | None:
        async with transaction(self.sessions) as session:
            repo = LearningRepository(session)
            requested = await repo.claim(school_id, now, now + TRAINING_CLAIM)
            school = await SchoolRepository(session).get(school_id)
            if requested is None or school is None:
                return None
            config = SchoolConfig.model_validate(school.config)
            return _Work(requested, await repo.examples(school_id), config, settings_of(school))

    def _train(self, work: _Work) -> SchoolTraining:
        # scikit-learn is loaded only by a process that trains.
        from bot.learning import school_model

        assert self.engines.learned is not None
        engines = self.engines
        # The word rules alone (compiled here, off the event loop): what they find before any
        # model overrules it, and the messages as a model reads them.
        rules = PolicyEngine(
            work.config, engines.lexicons, work.settings.policy(engines.policy),
            engines.profanity, None,
        )  # fmt: skip
        own = []
        for example in work.examples:
            message = ChatMessage(
                id=f"flag:{example.flag_id}", text=example.text, sent_at=example.sent_at,
                sender=Person(id="parent", role=Role.PARENT),
            )  # fmt: skip
            features = rules.model_input(message)
            if features is None:
                continue
            found = frozenset(str(rule) for rule in rules.classify(message).rules)
            breaks = example.rules if example.confirmed else frozenset()
            own.append(
                school_model.OwnExample(
                    school_model.Labelled(features, breaks, example.rules), found
                )
            )
        corpus_engine = PolicyEngine(
            load_school(self.corpus_dir / "school.yaml"), self.engines.lexicons,
            self.engines.policy, None, None,
        )  # fmt: skip
        lines = (self.corpus_dir / "messages.jsonl").read_text(encoding="utf-8").splitlines()
        corpus = school_model.corpus_labelled(lines, corpus_engine)
        return school_model.train_for_school(self.engines.learned, corpus, own)

    async def _keep(
        self, school_id: int, work: _Work, result: SchoolTraining, now: datetime
    ) -> bool:
        from bot.learning.school_model import report_data

        assert self.engines.learned is not None
        async with transaction(self.sessions) as session:
            row = await LearningRepository(session).model_row(school_id)
            row.claimed_until = None
            if row.requested_at != work.requested_at:
                return False  # asked again meanwhile (an erasure, perhaps): train again
            row.requested_at, row.problem, row.trained_at = None, None, now
            row.examples = len(work.examples)
            row.weights = result.weights.to_bytes() if result.weights is not None else None
            row.base = self.engines.learned.version
            row.report = report_data(result.comparison)
            school = await SchoolRepository(session).get(school_id)
            if school is not None:
                school.updated_at = now  # every process rebuilds its engine with the new model
        log.info("school %s: model retrained on %s examples", school_id, len(work.examples))
        return True

    async def _record_problem(self, school_id: int, work: _Work, problem: str) -> None:
        async with transaction(self.sessions) as session:
            row = await LearningRepository(session).model_row(school_id)
            row.claimed_until = None
            if row.requested_at == work.requested_at:
                row.requested_at = None  # the next night tries again; no retry every minute
            row.problem = problem[:500]
