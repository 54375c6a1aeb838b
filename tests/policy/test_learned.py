"""The learned layer in the engine: what it reads, how it explains itself, how it is loaded."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from bot.errors import ConfigError
from bot.policy import PolicyEngine
from bot.policy.features import ADDRESSEE, SCHOOL, STAFF
from bot.policy.verdict import FROM_MODEL, FROM_RULES
from bot.policy_files import build_engine, learned_model_paths, load_learned_model
from tests.conftest import CONFIG_DIR, MODEL_ONLY_CAMPAIGN, SCHOOL_FILE, message

CAMPAIGN = MODEL_ONLY_CAMPAIGN


@pytest.fixture(scope="module")
def rules_only() -> PolicyEngine:
    return build_engine(SCHOOL_FILE, CONFIG_DIR, use_learned=False)


def test_names_are_read_as_what_they_are(engine: PolicyEngine) -> None:
    features = engine.model_input(
        message("Mrs Patel told Kerry that Peartree is rubbish", reply_to="Kerry Marsh")
    )
    assert features is not None
    assert features.words == ("__staff__", "told", ADDRESSEE, "that", SCHOOL, "is", "rubbish")
    assert STAFF in features.words
    assert "__reply_to_parent__" in features.context


def test_staff_messages_are_never_read(engine: PolicyEngine) -> None:
    from bot.policy import Role

    assert engine.model_input(message("anything at all", role=Role.STAFF)) is None


def test_a_flag_the_model_raised_explains_itself(
    engine: PolicyEngine, rules_only: PolicyEngine
) -> None:
    assert rules_only.classify(message(CAMPAIGN)).rules == ()
    [explanation] = engine.classify(message(CAMPAIGN)).explanations
    assert explanation.rule == "harassment-campaign"
    assert explanation.source == FROM_MODEL
    assert explanation.clause.startswith("Creating or joining private groups")
    assert explanation.evidence.startswith("raised by the learned model, not a word rule: score ")
    assert "words that weighed most: " in explanation.evidence
    assert 'reads like: "' in explanation.evidence


def test_what_the_rules_found_is_credited_to_them(engine: PolicyEngine) -> None:
    [explanation] = engine.classify(
        message("you absolute idiot", reply_to="Kerry Marsh")
    ).explanations
    assert (explanation.rule, explanation.source) == ("abusive-to-parent", FROM_RULES)


def test_without_its_files_the_engine_runs_on_the_word_rules(tmp_path: Path) -> None:
    shutil.copytree(CONFIG_DIR / "lexicons", tmp_path / "lexicons")
    assert load_learned_model(tmp_path) is None
    engine = build_engine(SCHOOL_FILE, tmp_path)
    assert engine.learned is None
    assert engine.classify(message(CAMPAIGN)).rules == ()


def test_damaged_files_are_a_clear_error(tmp_path: Path) -> None:
    json_path, arrays_path = learned_model_paths(tmp_path)
    json_path.parent.mkdir()
    shutil.copy(learned_model_paths(CONFIG_DIR)[1], arrays_path)
    document = json.loads(learned_model_paths(CONFIG_DIR)[0].read_text(encoding="utf-8"))
    for broken in (
        "{not json",
        json.dumps(document | {"format": 99}),
        json.dumps(document | {"word_terms": document["word_terms"][:-1]}),
    ):
        json_path.write_text(broken, encoding="utf-8")
        with pytest.raises(ConfigError, match="learned model"):
            load_learned_model(tmp_path)
    json_path.write_text(json.dumps(document), encoding="utf-8")
    arrays_path.write_bytes(b"not an array file")
    with pytest.raises(ConfigError, match="learned model"):
        load_learned_model(tmp_path)


EVERYDAY = [
    "see you at pick up",
    "the office number is 01632 960000 btw",
    "thanks so much everyone x",
    "is it pe tomorrow?",
    "I'll kill him if he loses another jumper 😂",
    "you're a lifesaver thank you",
    "Becky Sutton is lovely",
    "does anyone have a spare book bag? ours has vanished",
    "the kids smashed the cross country today, so proud",
    "we're going to the summer fair if anyone wants to meet up",
]


@pytest.mark.parametrize("text", EVERYDAY)
def test_the_learned_layer_leaves_everyday_chat_alone(engine: PolicyEngine, text: str) -> None:
    assert engine.classify(message(text)).rules == ()
    assert engine.classify(message(text, reply_to="Kerry Marsh")).rules == ()


JOINS = ["add me", "count me in", "add me 👍"]
CALLS = {
    "Need volunteers for the cake sale on Friday, who's in?": (),
    "Setting up a lift share rota for the Lime Road side, message me and I'll add you": (),
    "Starting a petition to get Mr Okafor out, who's in? share it everywhere": (
        "harassment-campaign",
    ),
}


@pytest.mark.parametrize("join", JOINS)
@pytest.mark.parametrize(("call", "expected"), CALLS.items())
def test_a_join_is_read_with_what_it_joins(
    engine: PolicyEngine, join: str, call: str, expected: tuple[str, ...]
) -> None:
    replying = message(join, reply_to="Kerry Marsh")
    assert replying.reply_to is not None
    joined = replace(replying, reply_to=replace(replying.reply_to, text=call))
    assert tuple(str(rule) for rule in engine.classify(joined).rules) == expected
