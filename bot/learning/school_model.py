"""A school's own model: the corpus model refitted on the corpus plus the school's decisions.

The refit keeps the corpus model's vocabulary, idf and thresholds and changes only the
coefficients, so nothing a parent wrote becomes a term of the model: a school's examples can
only move the weight of words the corpus already has. Each example counts for the rules its flag
was raised for (confirmed: it breaks them; not a breach: it does not), and ``OWN_WEIGHT`` times
as much as a corpus message, because it is this school's own judgement.

How much it helps is estimated on the school's own examples, each scored by a model refitted
without it (``FOLDS``-fold): per rule, how many of the examples the engine would flag, and how
many of those SLT found not to be a breach, with the corpus model and with the school's.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.sparse import csr_matrix
from sklearn.linear_model import LogisticRegression

from bot.channels.jsonl import parse_line
from bot.learning.train import LEARNED_RULES, REGULARISATION
from bot.learning.weights import Weights
from bot.policy import PolicyEngine
from bot.policy.features import ModelInput
from bot.policy.learned import LearnedModel

OWN_WEIGHT = 4.0
FOLDS = 5
MIN_EXAMPLES = 2
"""Fewer examples than this teach nothing that can be measured: the corpus model is kept."""


@dataclass(frozen=True)
class Labelled:
    """A message as the model reads it, with the rules it was judged on and those it breaks."""

    features: ModelInput
    breaks: frozenset[str]
    judged: frozenset[str]


@dataclass(frozen=True)
class OwnExample:
    labelled: Labelled
    found_by_rules: frozenset[str]
    """What the word rules find in it: the model keeps those unless it overrules them."""


@dataclass(frozen=True)
class Outcome:
    flagged: int
    """Examples judged on the rule that the engine flags for it."""
    not_a_breach: int
    """Of those, the ones SLT found were not a breach."""

    @property
    def false_positive_rate(self) -> float | None:
        return self.not_a_breach / self.flagged if self.flagged else None


@dataclass(frozen=True)
class RuleComparison:
    examples: int
    confirmed: int
    before: Outcome
    after: Outcome


def matrix(model: LearnedModel, inputs: Sequence[ModelInput]) -> csr_matrix:
    """The inputs' TF-IDF rows over the model's vocabulary, exactly as the engine scores them."""
    offset = len(model.words.rows)
    indptr, indices, values = [0], [], []
    for features in inputs:
        for block, found, shift in (
            (model.words, features.word_features, 0),
            (model.chars, features.char_features, offset),
        ):
            rows, weights = block.values(found)
            indices.extend((rows + shift).tolist())
            values.extend(weights.tolist())
        indptr.append(len(indices))
    shape = (len(inputs), offset + len(model.chars.rows))
    return csr_matrix((values, indices, indptr), shape=shape, dtype=np.float64)


def refit(base: LearnedModel, corpus: Sequence[Labelled], own: Sequence[Labelled]) -> Weights:
    """The base model's coefficients fitted again on ``corpus`` and ``own`` together."""
    everything = [*corpus, *own]
    rows = matrix(base, [item.features for item in everything])
    weights = np.array([1.0] * len(corpus) + [OWN_WEIGHT] * len(own))
    coefs, intercepts = [], []
    for rule in base.rules:
        counted = np.array([rule in item.judged for item in everything])
        truth = np.array([rule in item.breaks for item in everything], dtype=int)
        model = LogisticRegression(
            C=REGULARISATION, class_weight="balanced", solver="liblinear", random_state=0,
            max_iter=1000,
        )  # fmt: skip
        model.fit(rows[counted], truth[counted], sample_weight=weights[counted])
        coefs.append(model.coef_[0])
        intercepts.append(model.intercept_[0])
    return Weights(np.vstack(coefs), np.array(intercepts))


def _flagged(model: LearnedModel, example: OwnExample) -> set[str]:
    """What the engine flags with ``model``: what it finds, and what the word rules found that
    it does not overrule."""
    scores = model.scores(example.labelled.features)
    overruled = {s.rule for s in scores if s.overrules}
    return {s.rule for s in scores if s.breaks} | (set(example.found_by_rules) - overruled)


def compare(
    base: LearnedModel,
    corpus: Sequence[Labelled],
    own: Sequence[OwnExample],
    *,
    refit_with: Callable[[LearnedModel, Sequence[Labelled], Sequence[Labelled]], Weights] = refit,
) -> dict[str, RuleComparison]:
    """Per rule, the school's examples as the engine would flag them with the corpus model
    (before) and with the school's model refitted without each one (after)."""
    folds = min(FOLDS, len(own))
    after: list[set[str]] = [set() for _ in own]
    for fold in range(folds):
        inside = [i for i in range(len(own)) if i % folds == fold]
        outside = [own[i].labelled for i in range(len(own)) if i % folds != fold]
        held_out = refit_with(base, corpus, outside).applied_to(base)
        for i in inside:
            after[i] = _flagged(held_out, own[i])
    report = {}
    for rule in (*LEARNED_RULES, *_judged_elsewhere(own)):
        judged = [i for i, example in enumerate(own) if rule in example.labelled.judged]
        if not judged:
            continue
        confirmed = {i for i in judged if rule in own[i].labelled.breaks}
        before_flagged = [i for i in judged if rule in _flagged(base, own[i])]
        after_flagged = [i for i in judged if rule in after[i]]
        report[rule] = RuleComparison(
            examples=len(judged),
            confirmed=len(confirmed),
            before=Outcome(len(before_flagged), len(set(before_flagged) - confirmed)),
            after=Outcome(len(after_flagged), len(set(after_flagged) - confirmed)),
        )
    return report


def _judged_elsewhere(own: Sequence[OwnExample]) -> list[str]:
    """Rules the examples were judged on that the model does not learn (word rules only)."""
    found = {rule for example in own for rule in example.labelled.judged}
    return sorted(found - set(LEARNED_RULES))


def report_data(comparison: Mapping[str, RuleComparison]) -> dict[str, object]:
    """The comparison as stored (JSON)."""
    return {
        rule: {
            "examples": c.examples,
            "confirmed": c.confirmed,
            "before": {"flagged": c.before.flagged, "not_a_breach": c.before.not_a_breach},
            "after": {"flagged": c.after.flagged, "not_a_breach": c.after.not_a_breach},
        }
        for rule, c in comparison.items()
    }


def corpus_labelled(lines: Sequence[str], engine: PolicyEngine) -> list[Labelled]:
    """The corpus as a school's refit reads it (read by an engine for the corpus's school, so
    that its names become the same placeholders); every line is judged on every rule."""
    judged = frozenset(LEARNED_RULES)
    out = []
    for line in lines:
        if not line.strip():
            continue
        row = json.loads(line)
        _, message = parse_line(line)
        features = engine.model_input(message)
        if features is not None:
            out.append(Labelled(features, frozenset(row["expected"]), judged))
    return out


@dataclass(frozen=True)
class SchoolTraining:
    weights: Weights | None
    """None: too few examples to learn from; the corpus model stays."""
    comparison: dict[str, RuleComparison]


def train_for_school(
    base: LearnedModel, corpus: Sequence[Labelled], own: Sequence[OwnExample]
) -> SchoolTraining:
    """The school's model and how it compares with the corpus model on the school's examples."""
    if len(own) < MIN_EXAMPLES:
        return SchoolTraining(None, {})
    comparison = compare(base, corpus, own)
    return SchoolTraining(refit(base, corpus, [e.labelled for e in own]), comparison)
