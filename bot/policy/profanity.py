"""A linear text classifier (TF-IDF + calibrated linear SVMs), scored in pure Python.

The weights come from ``alt-profanity-check``'s shipped model; ``bot.policy_files`` extracts them
once at start-up. Scoring a message here costs microseconds, where a scikit-learn call per
message costs milliseconds of overhead.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

_TOKEN = re.compile(r"\b\w\w+\b")


@dataclass(frozen=True, slots=True)
class SigmoidCalibrated:
    """One fold of a calibrated classifier: P(profane) = 1 / (1 + exp(a * decision + b))."""

    intercept: float
    a: float
    b: float


@dataclass(frozen=True)
class ProfanityModel:
    idf: Mapping[str, float]
    weights: Mapping[str, Sequence[float]]
    """For each vocabulary word, its coefficient in each fold."""
    folds: Sequence[SigmoidCalibrated]

    def _features(self, text: str) -> dict[str, float]:
        counts = Counter(w for w in _TOKEN.findall(text.lower()) if w in self.idf)
        values = {w: n * self.idf[w] for w, n in counts.items()}
        norm = math.sqrt(sum(v * v for v in values.values()))
        return {w: v / norm for w, v in values.items()} if norm else {}

    def probability(self, text: str) -> float:
        features = self._features(text)
        total = 0.0
        for index, fold in enumerate(self.folds):
            decision = fold.intercept + sum(
                value * self.weights[word][index] for word, value in features.items()
            )
            total += 1.0 / (1.0 + math.exp(fold.a * decision + fold.b))
        return total / len(self.folds)

    def strongest_word(self, text: str) -> str | None:
        """The word that pushes the score up most."""
        features = self._features(text)
        if not features:
            return None
        return max(features, key=lambda w: features[w] * sum(self.weights[w]))
