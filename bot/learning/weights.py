"""A school's refitted coefficients as stored: plain arrays, never a pickle.

Kept apart from the training code so that reading them needs NumPy only, not scikit-learn.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from bot.policy.learned import LearnedModel


@dataclass(frozen=True)
class Weights:
    """A model's coefficients without its vocabulary: what a school's refit changes."""

    coef: NDArray[np.float64]
    """One row per rule of the base model, word terms then character terms."""
    intercepts: NDArray[np.float64]

    def to_bytes(self) -> bytes:
        """As a compressed .npz of single-precision arrays (plain data, never a pickle)."""
        out = io.BytesIO()
        np.savez_compressed(
            out, coef=self.coef.astype(np.float32), intercepts=self.intercepts.astype(np.float32)
        )
        return out.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> Weights:
        with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
            return cls(np.asarray(arrays["coef"]), np.asarray(arrays["intercepts"]))

    def applied_to(self, model: LearnedModel) -> LearnedModel:
        return model.with_weights(self.coef, self.intercepts)
