"""The pure-Python scoring of alt-profanity-check's model gives the model's own answers."""

from __future__ import annotations

import pytest

from bot.policy.profanity import ProfanityModel
from bot.policy_files import load_profanity_model

SAMPLES = [
    "you are a stupid cow",
    "bloody hell its cold",
    "i could kill for a glass of wine",
    "what a lovely assembly",
    "fuck off",
    "",
    "the the the",
]


@pytest.fixture(scope="module")
def model() -> ProfanityModel:
    loaded = load_profanity_model()
    assert loaded is not None
    return loaded


def test_matches_scikit_learn(model: ProfanityModel) -> None:
    from profanity_check import predict_prob

    expected = predict_prob(SAMPLES)
    for text, probability in zip(SAMPLES, expected, strict=True):
        assert model.probability(text) == pytest.approx(float(probability), abs=1e-9)


def test_strongest_word(model: ProfanityModel) -> None:
    assert model.strongest_word("what a fucking lovely day") == "fucking"
    assert model.strongest_word("") is None
