"""Training the learned layer: the stored model is what the corpus builds, and the engine scores
it exactly as scikit-learn does."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bot.channels.jsonl import parse_line
from bot.learning import train as training
from bot.policy_files import build_engine, learned_model_paths, load_learned_model
from tests.conftest import CONFIG_DIR, ROOT

CORPUS = ROOT / "corpus"


@pytest.fixture(scope="module")
def trained() -> training.Training:
    engine = build_engine(CORPUS / "school.yaml", CONFIG_DIR, use_learned=False)
    with (CORPUS / "messages.jsonl").open(encoding="utf-8") as lines:
        rows = [line for line in lines if line.strip()]
    docs = training.documents(rows, engine)
    return training.train(docs, training.rules_findings(rows, engine))


def test_the_stored_model_is_what_the_corpus_builds(trained: training.Training) -> None:
    """Rebuild it with: schoolgate train."""
    json_path, arrays_path = learned_model_paths(CONFIG_DIR)
    stored = json.loads(json_path.read_text(encoding="utf-8"))
    document, arrays = training.model_data(trained, stored["trained_on"])
    assert document == stored
    with np.load(arrays_path, allow_pickle=False) as saved:
        for name, values in arrays.items():
            assert np.allclose(saved[name], values, rtol=0, atol=2e-6), name


def test_the_engine_scores_as_scikit_learn_does(trained: training.Training) -> None:
    model = load_learned_model(CONFIG_DIR)
    assert model is not None
    sample = trained.documents[::40]
    expected = 1.0 / (1.0 + np.exp(-trained.fitted.decisions(sample)))
    engine = build_engine(CORPUS / "school.yaml", CONFIG_DIR)
    with (CORPUS / "messages.jsonl").open(encoding="utf-8") as lines:
        by_id = {json.loads(line)["id"]: line for line in lines if line.strip()}
    for doc, probabilities in zip(sample, expected, strict=True):
        features = engine.model_input(parse_line(by_id[doc.id])[1])
        assert features is not None
        scores = [score.probability for score in model.scores(features)]
        assert scores == pytest.approx(list(probabilities), abs=1e-4), doc.id


def test_thresholds_hold_precision_on_authors_the_model_never_saw(
    trained: training.Training,
) -> None:
    for position, rule in enumerate(training.LEARNED_RULES):
        truth = np.array([rule in d.labels for d in trained.documents])
        flagged = trained.held_out[:, position] >= trained.thresholds[rule]
        assert flagged.sum() >= training.MIN_FLAGGED, rule
        assert (flagged & truth).sum() / flagged.sum() >= training.TARGET_PRECISION, rule


def test_vetoes_drop_mostly_false_findings_on_authors_the_model_never_saw(
    trained: training.Training,
) -> None:
    engine = build_engine(CORPUS / "school.yaml", CONFIG_DIR, use_learned=False)
    with (CORPUS / "messages.jsonl").open(encoding="utf-8") as lines:
        found = training.rules_findings([line for line in lines if line.strip()], engine)
    for rule in training.LEARNED_RULES:
        dropped = [
            rule in doc.labels
            for index, doc in enumerate(trained.documents)
            if rule in trained.overruled(index, found[doc.id])
        ]
        if trained.vetoes.get(rule, training.NO_VETO) == training.NO_VETO:
            assert not dropped, rule
            continue
        assert len(dropped) >= training.MIN_FLAGGED, rule
        assert dropped.count(False) / len(dropped) >= training.VETO_PRECISION, rule


def test_only_the_rules_chosen_for_it_are_ever_overruled(trained: training.Training) -> None:
    vetoed = {rule for rule, veto in trained.vetoes.items() if veto != training.NO_VETO}
    assert vetoed <= set(training.VETOED_RULES)
    assert vetoed, "a veto was chosen for at least one rule"


def test_a_veto_is_the_highest_score_at_which_findings_are_mostly_false() -> None:
    scores = np.array([0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07, 0.08, 0.09, 0.10, 0.5, 0.6])
    truth = np.array([False] * 10 + [True, True])
    assert training.choose_veto(scores, truth) == pytest.approx(0.10)  # 10 of 10 false
    truth = np.array([False] * 9 + [True, True, True])
    assert training.choose_veto(scores, truth) == training.NO_VETO  # 9 in 10 is not enough
    assert training.choose_veto(scores, np.ones(len(scores), dtype=bool)) == training.NO_VETO


def test_a_threshold_is_the_lowest_score_that_keeps_precision() -> None:
    scores = np.array([0.99, 0.98, 0.97, 0.96, 0.95, 0.94, 0.93, 0.92, 0.91, 0.90, 0.5, 0.4])
    truth = np.array([True] * 10 + [False, True])
    assert training.choose_threshold(scores, truth) == pytest.approx(0.90)
    never = training.choose_threshold(scores, np.zeros(len(scores), dtype=bool))
    assert never > 1.0
