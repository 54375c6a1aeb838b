"""Training the learned layer (``schoolgate train``): a TF-IDF and logistic-regression model per
rule on the labelled corpus, thresholds chosen on authors the model never saw, and the result
written as plain data (JSON and NumPy arrays, never a pickle) for ``bot.policy.learned``.

Everything here is deterministic: the same corpus gives the same numbers, so a test can check
that the stored model is what the corpus builds.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.sparse import csr_matrix, hstack
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from bot.channels.jsonl import parse_line
from bot.evaluation import Evaluation
from bot.policy import PolicyEngine, RuleId

LEARNED_RULES: tuple[str, ...] = (
    RuleId.ABUSIVE_TO_PARENT,
    RuleId.ABUSIVE_ABOUT_OTHERS,
    RuleId.CONFIDENTIAL_INFO,
    RuleId.DISREPUTE,
    RuleId.HARASSMENT_CAMPAIGN,
)
"""Rules whose breaches are a matter of meaning, where examples teach what word lists cannot."""
TARGET_PRECISION = 0.95
MIN_FLAGGED = 10
"""A threshold must flag at least this many held-out messages to be trusted."""
VETO_PRECISION = 0.95
"""The model overrules a word rule's finding only where, on held-out authors, at least 19 in 20
of the findings it would have dropped were false."""
VETOED_RULES: tuple[str, ...] = (RuleId.ABUSIVE_TO_PARENT, RuleId.CONFIDENTIAL_INFO)
"""The rules whose word-rule findings the model may overrule: those the word rules most often
raise wrongly. Never abuse about staff (it includes threats, whose menace is not in the words
a bag of n-grams weighs), disrepute or campaigns, where a wrongly dropped flag costs most."""
NO_VETO = -1.0
REGULARISATION = 8.0
WORD_MIN_DF, CHAR_MIN_DF = 2, 3
EXAMPLE_TERMS = 12
FORMAT = 1
DECIMALS = 6
"""Stored numbers are rounded, so that the files are the same on every machine."""


@dataclass(frozen=True)
class Document:
    id: str
    author: str
    text: str
    labels: frozenset[str]
    words: list[str]
    chars: list[str]


@dataclass
class Fitted:
    words: TfidfVectorizer
    chars: TfidfVectorizer
    coef: NDArray[np.float64]
    """One row per rule in ``LEARNED_RULES``, word terms first, then character terms."""
    intercepts: NDArray[np.float64]

    def decisions(self, documents: Sequence[Document]) -> NDArray[np.float64]:
        matrix = _matrix(self.words, self.chars, documents)
        result: NDArray[np.float64] = matrix @ self.coef.T + self.intercepts
        return result


@dataclass
class Training:
    fitted: Fitted
    thresholds: dict[str, float]
    held_out: NDArray[np.float64]
    """Each document's probabilities from the model trained without its author."""
    documents: list[Document] = field(default_factory=list)
    vetoes: dict[str, float] = field(default_factory=dict)
    """Per rule, the probability at or below which the model overrules the word rules."""

    def overruled(self, index: int, found: set[str]) -> set[str]:
        """Of the word rules' findings ``found`` for document ``index``, those its held-out
        score overrules."""
        return {
            rule
            for position, rule in enumerate(LEARNED_RULES)
            if rule in found and self.held_out[index, position] <= self.vetoes.get(rule, NO_VETO)
        }


def _identity(features: list[str]) -> list[str]:
    return features


def documents(lines: Sequence[str], engine: PolicyEngine) -> list[Document]:
    """The corpus lines as the model reads them (messages from staff are left out: the engine
    never reads them)."""
    out = []
    for line in lines:
        row = json.loads(line)
        _, message = parse_line(line)
        features = engine.model_input(message)
        if features is None:
            continue
        out.append(
            Document(
                row["id"],
                row.get("author", ""),
                message.text,
                frozenset(row["expected"]),
                features.word_features,
                features.char_features,
            )
        )
    return out


def rules_findings(lines: Sequence[str], engine: PolicyEngine) -> dict[str, set[str]]:
    """What the word rules (``engine``, built without the learned layer) find in each corpus
    line, by id: what the vetoes are chosen over."""
    found = {}
    for line in lines:
        message_id = json.loads(line)["id"]
        _, message = parse_line(line)
        found[message_id] = {str(rule) for rule in engine.classify(message).rules}
    return found


def _vectorizer(min_df: int) -> TfidfVectorizer:
    return TfidfVectorizer(analyzer=_identity, sublinear_tf=True, min_df=min_df, norm="l2")


def _matrix(words: TfidfVectorizer, chars: TfidfVectorizer, docs: Sequence[Document]) -> csr_matrix:
    return hstack(
        [words.transform([d.words for d in docs]), chars.transform([d.chars for d in docs])]
    ).tocsr()


def fit(docs: Sequence[Document]) -> Fitted:
    words, chars = _vectorizer(WORD_MIN_DF), _vectorizer(CHAR_MIN_DF)
    words.fit([d.words for d in docs])
    chars.fit([d.chars for d in docs])
    matrix = _matrix(words, chars, docs)
    coefs, intercepts = [], []
    for rule in LEARNED_RULES:
        truth = np.array([rule in d.labels for d in docs], dtype=int)
        model = LogisticRegression(
            C=REGULARISATION, class_weight="balanced", solver="liblinear", random_state=0,
            max_iter=1000,
        )  # fmt: skip
        model.fit(matrix, truth)
        coefs.append(model.coef_[0])
        intercepts.append(model.intercept_[0])
    return Fitted(words, chars, np.vstack(coefs), np.array(intercepts))


def _sigmoid(values: NDArray[np.float64]) -> NDArray[np.float64]:
    result: NDArray[np.float64] = 1.0 / (1.0 + np.exp(-values))
    return result


def held_out_probabilities(docs: Sequence[Document]) -> NDArray[np.float64]:
    """For each document, the probabilities of a model trained on every other author."""
    probabilities = np.zeros((len(docs), len(LEARNED_RULES)))
    for author in sorted({d.author for d in docs}):
        inside = [i for i, d in enumerate(docs) if d.author == author]
        outside = [d for d in docs if d.author != author]
        fitted = fit(outside)
        probabilities[inside] = _sigmoid(fitted.decisions([docs[i] for i in inside]))
    return probabilities


def choose_threshold(scores: NDArray[np.float64], truth: NDArray[np.bool_]) -> float:
    """The lowest score that keeps precision at ``TARGET_PRECISION`` on held-out authors (so the
    most recall at that precision); above every score (never flags) when none does."""
    order = np.argsort(-scores, kind="stable")
    hits = np.cumsum(truth[order])
    flagged = np.arange(1, len(scores) + 1)
    precision = hits / flagged
    best = None
    for position in range(MIN_FLAGGED - 1, len(scores)):
        if precision[position] >= TARGET_PRECISION and (
            position + 1 == len(scores) or scores[order[position + 1]] < scores[order[position]]
        ):
            best = position
    if best is None:
        return 1.0 + 1e-9
    return float(round(float(scores[order[best]]), DECIMALS))


def choose_veto(scores: NDArray[np.float64], truth: NDArray[np.bool_]) -> float:
    """Over the word rules' findings for a rule (their held-out ``scores``, and whether each
    really breaks it), the highest score at or below which at least ``VETO_PRECISION`` of the
    findings are false (so the most false findings dropped at that rate); ``NO_VETO`` when none
    is."""
    order = np.argsort(scores, kind="stable")
    false = np.cumsum(~truth[order])
    dropped = np.arange(1, len(scores) + 1)
    share = false / dropped
    best = None
    for position in range(MIN_FLAGGED - 1, len(scores)):
        if share[position] >= VETO_PRECISION and (
            position + 1 == len(scores) or scores[order[position + 1]] > scores[order[position]]
        ):
            best = position
    if best is None:
        return NO_VETO
    # Rounded down, so that the stored veto still covers the findings it was chosen on.
    return float(np.floor(float(scores[order[best]]) * 10**DECIMALS) / 10**DECIMALS)


def train(docs: list[Document], rules_found: dict[str, set[str]] | None = None) -> Training:
    """The model, with each rule's threshold and, given the word rules' findings on each
    document (``rules_found``, by id), each rule's veto, all chosen on held-out authors."""
    held_out = held_out_probabilities(docs)
    thresholds, vetoes = {}, {}
    for index, rule in enumerate(LEARNED_RULES):
        truth = np.array([rule in d.labels for d in docs])
        thresholds[rule] = choose_threshold(held_out[:, index], truth)
        if rules_found is not None and rule in VETOED_RULES:
            found = [i for i, d in enumerate(docs) if rule in rules_found[d.id]]
            vetoes[rule] = choose_veto(held_out[found, index], truth[found])
    return Training(fit(docs), thresholds, held_out, docs, vetoes)


# -- plain data --------------------------------------------------------------------------------


def _vocabulary(vectorizer: TfidfVectorizer) -> list[str]:
    return [str(term) for term in vectorizer.get_feature_names_out()]


def model_data(training: Training, trained_on: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The model as JSON (vocabularies, thresholds, examples) and arrays (idf, coefficients)."""
    fitted = training.fitted
    word_terms = _vocabulary(fitted.words)
    examples: dict[str, list[dict[str, Any]]] = {}
    word_matrix = fitted.words.transform([d.words for d in training.documents]).tocsr()
    for rule in LEARNED_RULES:
        examples[rule] = []
        for index, doc in enumerate(training.documents):
            if rule not in doc.labels:
                continue
            row = word_matrix.getrow(index)
            # Its weightiest terms are enough to find the example nearest a message.
            strongest = sorted(zip(row.data, row.indices, strict=True), reverse=True)
            terms = sorted(
                [int(term), round(float(value), DECIMALS)]
                for value, term in strongest[:EXAMPLE_TERMS]
            )
            examples[rule].append({"id": doc.id, "text": doc.text, "terms": terms})
    document = {
        "format": FORMAT,
        "trained_on": trained_on,
        "rules": list(LEARNED_RULES),
        "target_precision": TARGET_PRECISION,
        "thresholds": [training.thresholds[r] for r in LEARNED_RULES],
        "vetoes": [training.vetoes.get(r, NO_VETO) for r in LEARNED_RULES],
        "intercepts": [round(float(b), DECIMALS) for b in fitted.intercepts],
        "word_terms": word_terms,
        "char_terms": _vocabulary(fitted.chars),
        "examples": examples,
    }
    arrays = {
        "word_idf": np.round(fitted.words.idf_, DECIMALS),
        "char_idf": np.round(fitted.chars.idf_, DECIMALS),
        "coef": np.round(fitted.coef, DECIMALS),
    }
    return document, arrays


def write_model(training: Training, trained_on: str, json_path: Path, arrays_path: Path) -> None:
    document, arrays = model_data(training, trained_on)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(
        json.dumps(document, ensure_ascii=False, separators=(",", ":")) + "\n", encoding="utf-8"
    )
    with arrays_path.open("wb") as out:
        np.savez(out, **arrays)


# -- how well it does on authors it never saw ------------------------------------------------


@dataclass(frozen=True)
class HeldOutReport:
    rules_only: Evaluation
    model_only: Evaluation
    combined: Evaluation
    authors: int


def held_out_report(training: Training, rules_found: dict[str, set[str]]) -> HeldOutReport:
    """Author-split figures: the word rules alone, the model alone (trained without each
    message's author, at the chosen thresholds) and both together, which is what the engine
    does. ``rules_found`` is the word rules' verdict on each document."""
    rules_only, model_only, combined = Evaluation(), Evaluation(), Evaluation()
    for index, doc in enumerate(training.documents):
        model_says = {
            rule
            for position, rule in enumerate(LEARNED_RULES)
            if training.held_out[index, position] >= training.thresholds[rule]
        }
        found = rules_found[doc.id]
        rules_only.record(doc.id, doc.text, doc.labels, found)
        model_only.record(doc.id, doc.text, doc.labels & set(LEARNED_RULES), model_says)
        kept = found - training.overruled(index, found)
        combined.record(doc.id, doc.text, doc.labels, kept | model_says)
    return HeldOutReport(
        rules_only, model_only, combined, len({d.author for d in training.documents})
    )
