"""The learned layer: a linear model per rule over word and character n-grams, scored with NumPy
from plain data (``bot.learning`` trains it; ``bot.policy_files`` loads it).

It reproduces scikit-learn's pipeline exactly: sublinear TF-IDF, each block (words, characters)
scaled to unit length, then a logistic regression per rule. A message breaks a rule when the
model's probability reaches the rule's threshold, chosen for precision on authors the model
never saw (see ``bot.learning.train``).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from itertools import repeat
from typing import Any

import numpy as np
from numpy.typing import NDArray

from bot.policy.features import PLACEHOLDER_PREFIX, STAFF, ModelInput


@dataclass(frozen=True)
class Block:
    """One TF-IDF block (words or characters): each term's row, its idf, and the rules'
    coefficients for it (one column per rule)."""

    rows: Mapping[str, int]
    idf: NDArray[np.float64]
    coef: NDArray[np.float64]
    _last: list[Any] = field(default_factory=lambda: [None], compare=False, repr=False)

    def values(self, features: Sequence[str]) -> tuple[NDArray[np.intp], NDArray[np.float64]]:
        """The rows of the terms present, and their unit-length TF-IDF values (remembered for
        the last feature list asked about: scoring and explaining ask about the same one)."""
        # One tuple, read and replaced whole: engines are shared by worker threads.
        last = self._last[0]
        if last is not None and last[0] is features:
            return last[1], last[2]
        rows, values = self._values(features)
        self._last[0] = (features, rows, values)
        return rows, values

    def _values(self, features: Sequence[str]) -> tuple[NDArray[np.intp], NDArray[np.float64]]:
        counts = Counter(features)
        found = np.fromiter(
            map(self.rows.get, counts, repeat(-1)), dtype=np.intp, count=len(counts)
        )
        known = found >= 0
        rows = found[known]
        if not len(rows):
            return rows, np.zeros(0)
        tf = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))[known]
        values = (1.0 + np.log(tf)) * self.idf[rows]
        norm = math.sqrt(float(values @ values))
        return rows, values / norm

    def vector(self, features: Sequence[str]) -> dict[str, float]:
        """The block's unit-length TF-IDF values, by term (terms it does not know are skipped)."""
        rows, values = self.values(features)
        terms = self.terms
        return {
            terms[row]: value for row, value in zip(rows.tolist(), values.tolist(), strict=True)
        }

    def decisions(self, features: Sequence[str], rules: int) -> NDArray[np.float64]:
        rows, values = self.values(features)
        if not len(rows):
            return np.zeros(rules)
        result: NDArray[np.float64] = values @ self.coef[rows]
        return result

    @cached_property
    def terms(self) -> list[str]:
        terms = [""] * len(self.rows)
        for term, row in self.rows.items():
            terms[row] = term
        return terms


@dataclass(frozen=True, slots=True)
class Example:
    """A labelled corpus message, shown as what a flagged message "reads like"."""

    text: str
    vector: Mapping[str, float]
    """Its unit-length word TF-IDF vector."""


@dataclass(frozen=True, slots=True)
class Score:
    rule: str
    probability: float
    threshold: float
    veto: float = -1.0
    """At or below this the model overrules the word rules for its rule (-1: never)."""

    @property
    def breaks(self) -> bool:
        return self.probability >= self.threshold

    @property
    def overrules(self) -> bool:
        """The model is sure enough that the message does not break the rule to drop what the
        word rules found for it (chosen on authors it never saw, see ``bot.learning.train``)."""
        return self.probability <= self.veto


@dataclass(frozen=True)
class LearnedModel:
    rules: tuple[str, ...]
    words: Block
    chars: Block
    intercepts: Sequence[float]
    thresholds: Sequence[float]
    vetoes: Sequence[float]
    """Per rule, the probability at or below which the model overrules the word rules."""
    examples: Mapping[str, Sequence[Example]]
    """For each rule, the corpus messages that break it."""
    version: str = ""
    """Names the files it was read from: a school's refitted weights fit this version only."""
    _index: dict[str, dict[str, list[tuple[int, float]]]] = field(
        default_factory=dict, compare=False, repr=False
    )

    def scores(self, features: ModelInput) -> list[Score]:
        words = self.words.decisions(features.word_features, len(self.rules))
        chars = self.chars.decisions(features.char_features, len(self.rules))
        out = []
        for index, rule in enumerate(self.rules):
            decision = self.intercepts[index] + float(words[index] + chars[index])
            out.append(Score(rule, _sigmoid(decision), self.thresholds[index], self.vetoes[index]))
        return out

    def with_weights(
        self, coef: NDArray[np.float64], intercepts: NDArray[np.float64]
    ) -> LearnedModel:
        """The same model (vocabulary, idf, thresholds, examples) with other coefficients, as a
        school's refit gives them: one row per rule, word terms then character terms."""
        words, chars = len(self.words.rows), len(self.chars.rows)
        if coef.shape != (len(self.rules), words + chars) or len(intercepts) != len(self.rules):
            raise ValueError(f"weights of shape {coef.shape} do not fit this model")
        by_term = np.ascontiguousarray(coef.T, dtype=np.float64)
        return LearnedModel(
            rules=self.rules,
            words=Block(self.words.rows, self.words.idf, by_term[:words]),
            chars=Block(self.chars.rows, self.chars.idf, by_term[words:]),
            intercepts=[float(b) for b in intercepts],
            thresholds=self.thresholds,
            vetoes=self.vetoes,
            examples=self.examples,
            version=self.version,
        )

    def weightiest_words(self, features: ModelInput, rule: str, count: int = 3) -> list[str]:
        """The message's words that pushed its score for ``rule`` up most: each word's own
        features (the word, the bigram it starts, its character n-grams) summed."""
        index = self.rules.index(rule)
        pushes: dict[str, float] = {}
        blocks = ((self.words, features.word_features), (self.chars, features.char_features))
        contribution: dict[str, float] = {}
        for block, block_features in blocks:
            rows, values = block.values(block_features)
            terms = block.terms
            for row, push in zip(rows.tolist(), (values * block.coef[rows, index]).tolist(),
                                 strict=True):  # fmt: skip
                contribution[terms[row]] = contribution.get(terms[row], 0.0) + push
        for word, origins in features.word_origins().items():
            if word.startswith(PLACEHOLDER_PREFIX) and word != STAFF:
                continue
            push = sum(contribution.get(feature, 0.0) for feature in dict.fromkeys(origins))
            shown = "(a staff name)" if word == STAFF else word
            pushes[shown] = max(pushes.get(shown, push), push)
        ranked = sorted(pushes.items(), key=lambda item: item[1], reverse=True)
        return [word for word, push in ranked[:count] if push > 0]

    def nearest_example(self, features: ModelInput, rule: str) -> Example | None:
        """The labelled message breaking ``rule`` whose words are most like these (cosine
        similarity, summed over the message's own terms through an index of the examples)."""
        examples = self.examples.get(rule, ())
        postings = self._postings(rule)
        similarity: dict[int, float] = {}
        for term, value in self.words.vector(features.word_features).items():
            for index, weight in postings.get(term, ()):
                similarity[index] = similarity.get(index, 0.0) + value * weight
        if not similarity:
            return None
        best = max(similarity, key=lambda index: (similarity[index], -index))
        return examples[best]

    def _postings(self, rule: str) -> dict[str, list[tuple[int, float]]]:
        cached = self._index.get(rule)
        if cached is None:
            cached = {}
            for index, example in enumerate(self.examples.get(rule, ())):
                for term, weight in example.vector.items():
                    cached.setdefault(term, []).append((index, weight))
            self._index[rule] = cached
        return cached


def _sigmoid(value: float) -> float:
    if value >= 0:
        return 1.0 / (1.0 + math.exp(-value))
    exp = math.exp(value)
    return exp / (1.0 + exp)
