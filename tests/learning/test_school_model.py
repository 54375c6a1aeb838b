"""A school's own model (bot.learning.school_model and the trainer in bot.jobs): refitted on the
corpus and the school's decisions, over the corpus model's vocabulary, stored as plain arrays,
used by the school's engine, and never kept when an erasure came while it trained."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.jobs import SchoolModelTraining
from bot.learning import school_model
from bot.learning.school_model import Labelled, OwnExample
from bot.learning.weights import Weights
from bot.policy import PolicyEngine
from bot.policy.config import PolicyConfig
from bot.policy.learned import LearnedModel
from bot.policy.lexicon import LexiconData
from bot.policy.message import ChatMessage, Person, Role
from bot.policy_files import build_engine, load_learned_model
from bot.services import consent, learning, review
from bot.services.moderation import Retention, check_message
from bot.services.review import Decision, Reviewer
from bot.services.schools import EngineCache
from bot.store.db import transaction
from bot.store.models import School, utcnow
from bot.store.repositories.learning import LearningRepository
from bot.texts import load_telegram_texts
from tests.conftest import CONFIG_DIR, SCHOOL_FILE
from tests.factories import a_chat, a_member, a_school

CORPUS = Path(__file__).resolve().parents[2] / "corpus"
EVERY_NTH = 10
"""A slice of the corpus (every tenth line, so every author and rule): quick to refit on."""
SENT = datetime(2026, 11, 24, 14, 0, tzinfo=UTC)
OFF_SICK = [  # a school that tells parents openly when staff are off
    "Mrs Bennett's off with flu so the office is closing early today",
    "Mr Okafor is off sick so Year 3 have a supply teacher",
    "Miss Hughes is off poorly, the TA is covering her class",
    "Mr Reilly is off ill this week, hope he's back soon",
    "the head's off sick today so the deputy is doing assembly",
    "Mrs Patel is off with a cold, parents' evening is moved",
    "Mr Okafor's off with a bad back, the letter came out this morning",
    "Miss Hughes is off with covid so reading records go to the office",
]
PROBE = "Mrs Bennett is off sick, the office says ring tomorrow instead"


@pytest.fixture(scope="module")
def base() -> LearnedModel:
    model = load_learned_model(CONFIG_DIR)
    assert model is not None
    return model


@pytest.fixture(scope="module")
def engine() -> PolicyEngine:
    return build_engine(SCHOOL_FILE, CONFIG_DIR)


@pytest.fixture(scope="module")
def corpus() -> list[Labelled]:
    corpus_engine = build_engine(CORPUS / "school.yaml", CONFIG_DIR, use_learned=False)
    lines = (CORPUS / "messages.jsonl").read_text(encoding="utf-8").splitlines()
    return school_model.corpus_labelled(lines[::EVERY_NTH], corpus_engine)


def parent_says(text: str) -> ChatMessage:
    return ChatMessage(id="m", text=text, sent_at=SENT, sender=Person(id="p", role=Role.PARENT))


def labelled(engine: PolicyEngine, text: str, breaks: set[str], judged: set[str]) -> Labelled:
    features = engine.model_input(parent_says(text))
    assert features is not None
    return Labelled(features, frozenset(breaks), frozenset(judged))


def probability(model: LearnedModel, engine: PolicyEngine, text: str, rule: str) -> float:
    features = engine.model_input(parent_says(text))
    assert features is not None
    return next(s.probability for s in model.scores(features) if s.rule == rule)


def test_the_refit_reads_messages_exactly_as_the_engine_scores_them(
    base: LearnedModel, corpus: list[Labelled]
) -> None:
    rows = school_model.matrix(base, [item.features for item in corpus[:50]])
    coef = np.hstack([base.words.coef.T, base.chars.coef.T])
    decisions = rows @ coef.T + np.array(base.intercepts)
    expected = [[s.probability for s in base.scores(item.features)] for item in corpus[:50]]
    assert np.allclose(1 / (1 + np.exp(-decisions)), expected)


def test_the_schools_decisions_move_the_model_for_messages_like_them(
    base: LearnedModel, engine: PolicyEngine, corpus: list[Labelled]
) -> None:
    rule = "confidential-info"
    cleared = [labelled(engine, text, set(), {rule}) for text in OFF_SICK]
    refitted = school_model.refit(base, corpus, cleared).applied_to(base)
    unseen_before = probability(base, engine, PROBE, rule)
    assert probability(refitted, engine, PROBE, rule) < unseen_before * 0.7
    # The other way: what SLT confirmed weighs more for a message like it.
    confirmed = [labelled(engine, text, {rule}, {rule}) for text in OFF_SICK]
    stricter = school_model.refit(base, corpus, confirmed).applied_to(base)
    assert probability(stricter, engine, PROBE, rule) > unseen_before
    # A message unlike them keeps its reading.
    gossip = "Jayden's mum told me he's got ADHD and social services are involved"
    assert probability(refitted, engine, gossip, rule) > 0.5


def test_weights_are_stored_as_plain_arrays_that_fit_only_their_model(
    base: LearnedModel,
) -> None:
    terms = len(base.words.rows) + len(base.chars.rows)
    weights = Weights(np.ones((len(base.rules), terms)), np.zeros(len(base.rules)))
    again = Weights.from_bytes(weights.to_bytes())
    assert np.allclose(again.coef, weights.coef)
    assert again.applied_to(base).thresholds == base.thresholds
    with pytest.raises(ValueError, match="do not fit"):
        Weights(np.ones((2, 3)), np.zeros(2)).applied_to(base)


def test_before_and_after_are_counted_on_examples_the_model_never_saw(
    base: LearnedModel, engine: PolicyEngine
) -> None:
    rule = "abusive-to-parent"
    texts = ["you're a joke", "nobody asked you", "get lost", "lovely idea", "thanks all"]
    own = [
        OwnExample(labelled(engine, text, {rule} if i < 2 else set(), {rule}), frozenset())
        for i, text in enumerate(texts)
    ]
    seen: list[int] = []

    def everything_flagged(
        model: LearnedModel, corpus: Sequence[Labelled], examples: Sequence[Labelled]
    ) -> Weights:
        seen.append(len(examples))
        terms = len(model.words.rows) + len(model.chars.rows)
        return Weights(np.zeros((len(model.rules), terms)), np.full(len(model.rules), 50.0))

    compared = school_model.compare(base, [], own, refit_with=everything_flagged)
    assert seen == [4, 4, 4, 4, 4]  # five folds, each without its own example
    after = compared[rule].after
    assert (after.flagged, after.not_a_breach) == (5, 3)
    assert compared[rule].examples == 5
    assert compared[rule].confirmed == 2


# -- the trainer, with a database -------------------------------------------------------------

Sessions = async_sessionmaker[AsyncSession]
RETENTION = Retention(metadata=timedelta(days=30), flags=timedelta(days=365))
HEAD = Reviewer("user:1", "Mrs Anita Patel")


@pytest.fixture
def small_corpus(tmp_path: Path) -> Path:
    shutil.copy(CORPUS / "school.yaml", tmp_path / "school.yaml")
    lines = (CORPUS / "messages.jsonl").read_text(encoding="utf-8").splitlines()
    (tmp_path / "messages.jsonl").write_text("\n".join(lines[::EVERY_NTH]) + "\n")
    return tmp_path


@pytest.fixture
def engines(lexicons: LexiconData, base: LearnedModel) -> EngineCache:
    return EngineCache(lexicons, PolicyConfig(), None, base)


async def decided_flags(session: AsyncSession, engine: PolicyEngine, count: int) -> list[int]:
    """A school learning from its decisions, with ``count`` flags SLT found not a breach."""
    texts = load_telegram_texts(CONFIG_DIR)
    school = await a_school(session)
    now = utcnow()
    await learning.set_learning(session, school, True, texts.notice, RETENTION, "test", now)
    flags = []
    for index in range(count):
        chat = await a_chat(session, school, platform_chat_id=f"-100{index}")
        member = await a_member(session, chat, user_id=str(600 + index))
        await consent.give(session, chat, member, "button", now)
        text = "you absolute idiot" if index % 2 else "what an idiot, the traffic this morning"
        said = ChatMessage(
            id=f"m{index}", text=text, sent_at=now, chat_id=chat.platform_chat_id,
            sender=Person(id=str(600 + index), name="Pat Jones", role=Role.PARENT),
        )  # fmt: skip
        checked = await check_message(session, engine, chat, member, said, RETENTION, now)
        if checked.flag is None:
            continue
        case = await review.find_case(session, checked.flag.id)
        assert case is not None
        await review.decide(
            session, case, Decision.FALSE_POSITIVE, HEAD, note="Not aimed at anyone",
            texts=texts, channels=frozenset(), now=now,
        )  # fmt: skip
        flags.append(checked.flag.id)
    await learning.request_retraining(session, school, "test", now)
    return flags


async def the_school(session: AsyncSession) -> School:
    school: School | None = await session.scalar(select(School))
    assert school is not None
    return school


@pytest.mark.anyio
async def test_a_retrained_model_is_the_one_the_schools_engine_uses(
    sessions: Sessions,
    engines: EngineCache,
    engine: PolicyEngine,
    base: LearnedModel,
    small_corpus: Path,
) -> None:
    async with transaction(sessions) as session:
        flags = await decided_flags(session, engine, 4)
        assert len(flags) >= 2
    trainer = SchoolModelTraining(sessions, engines, small_corpus, every=60)
    trained = await trainer.run_once()
    assert len(trained) == 1
    async with transaction(sessions) as session:
        school = await the_school(session)
        status = await learning.status(session, school)
        assert status.trained_at is not None
        assert status.trained_on == len(flags)
        assert not status.waiting
        assert {c.rule for c in status.changes} >= {"abusive-to-parent"}
        own = await engines.for_school(session, school)
        assert own.learned is not None
        assert own.learned is not engines.learned
        assert own.learned.words.rows is base.words.rows  # the corpus model's vocabulary
    assert await trainer.run_once() == []  # nothing more is due


@pytest.mark.anyio
async def test_a_model_trained_while_a_member_withdrew_is_not_kept(
    sessions: Sessions, engines: EngineCache, engine: PolicyEngine, small_corpus: Path
) -> None:
    async with transaction(sessions) as session:
        await decided_flags(session, engine, 4)
    trainer = SchoolModelTraining(sessions, engines, small_corpus, every=60)
    async with transaction(sessions) as session:
        school = await the_school(session)
    work = await trainer._claim(school.id, utcnow())
    assert work is not None
    result = trainer._train(work)
    async with transaction(sessions) as session:
        await consent.withdraw(session, "telegram", "601", utcnow())
    assert not await trainer._keep(school.id, work, result, utcnow())
    async with transaction(sessions) as session:
        row = await LearningRepository(session).model(school.id)
        assert row is not None
        assert row.weights is None
        assert row.requested_at is not None  # trained again, without the withdrawn member
