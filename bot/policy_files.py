"""Loading the engine's inputs from disk: the school file, the policy file, lexicons, the model.

Every failure becomes a ``ConfigError`` that names the file, the field and what is wrong, so a
school editing its YAML sees a sentence, never a traceback.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import yaml
from numpy.typing import NDArray
from pydantic import BaseModel, ValidationError

from bot.errors import ConfigError
from bot.policy.config import PolicyConfig
from bot.policy.engine import PolicyEngine
from bot.policy.learned import Block, Example, LearnedModel
from bot.policy.lexicon import LexiconData, LexiconError
from bot.policy.patterns import PatternError
from bot.policy.profanity import ProfanityModel, SigmoidCalibrated
from bot.policy.school import SchoolConfig

log = logging.getLogger(__name__)

Model = TypeVar("Model", bound=BaseModel)

_FRIENDLY = {
    "Field required": "is required",
    "Extra inputs are not permitted": "is not a known field (check the spelling)",
}


def describe_validation_error(error: ValidationError) -> list[str]:
    """One line per problem: ``staff[2].telegram: 'mr okafor' is not a handle like @mr_okafor``."""
    lines = []
    for problem in error.errors():
        where = ""
        for part in problem["loc"]:
            where += f"[{part}]" if isinstance(part, int) else (f".{part}" if where else str(part))
        message = problem["msg"].removeprefix("Value error, ")
        message = _FRIENDLY.get(message, message)
        if problem["type"] == "too_short":
            message = "needs at least one entry"
        value = problem.get("input")
        shown = (
            ""
            if problem["type"] in ("missing", "value_error") or isinstance(value, dict | list)
            else f" (got {value!r})"
        )
        lines.append(f"{where or 'the file'}: {message}{shown}")
    return lines


def read_yaml(path: Path, what: str) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{what} {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{what} {path} cannot be read: {error}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        place = f", line {mark.line + 1} column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or str(error)
        raise ConfigError(f"{what} {path}{place}: this is not valid YAML ({problem})") from None


def validate(model: type[Model], data: Any, path: Path, what: str) -> Model:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{what} {path} must be a mapping of fields, not {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as error:
        problems = "\n  ".join(describe_validation_error(error))
        raise ConfigError(f"{what} {path} has problems:\n  {problems}") from None


def load_school(path: Path) -> SchoolConfig:
    data = read_yaml(path, "school file")
    if data is None:
        raise ConfigError(f"school file {path} is empty")
    return validate(SchoolConfig, data, path, "school file")


def load_policy(path: Path | None) -> PolicyConfig:
    if path is None:
        return PolicyConfig()
    return validate(PolicyConfig, read_yaml(path, "policy file"), path, "policy file")


def load_lexicons(directory: Path) -> LexiconData:
    """Every ``*.yaml`` under ``directory``: lists become ``<file>.<list>``; ``classes`` merge."""
    if not directory.is_dir():
        raise ConfigError(f"lexicon directory {directory} does not exist")
    lists: dict[str, tuple[str, ...]] = {}
    classes: dict[str, tuple[str, ...]] = {}
    for path in sorted(directory.glob("*.yaml")):
        data = read_yaml(path, "lexicon")
        if not isinstance(data, dict):
            raise ConfigError(f"lexicon {path} must be a mapping of lists")
        for name, values in data.items():
            if name == "classes":
                if not isinstance(values, dict):
                    raise ConfigError(f"lexicon {path}: classes must be a mapping of word lists")
                for class_name, words in values.items():
                    classes[str(class_name)] = _word_list(words, path, f"classes.{class_name}")
            else:
                lists[f"{path.stem}.{name}"] = _word_list(values, path, str(name))
    return LexiconData(lists, classes)


def _word_list(values: Any, path: Path, name: str) -> tuple[str, ...]:
    if not isinstance(values, list) or not all(isinstance(v, str | int) for v in values):
        raise ConfigError(f"lexicon {path}: {name} must be a list of words or phrases")
    return tuple(str(v) for v in values)


def load_profanity_model() -> ProfanityModel | None:
    """The weights of alt-profanity-check's shipped model, or None if it cannot be loaded."""
    try:
        from profanity_check import profanity_check as shipped
    except Exception as error:  # a broken optional model must not stop the engine
        log.warning("profanity model unavailable, using lexicons only: %s", error)
        return None
    vocabulary: dict[str, int] = shipped.vectorizer.vocabulary_
    idf = shipped.vectorizer.idf_
    folds = []
    coefficients = []
    for calibrated in shipped.model.calibrated_classifiers_:
        estimator = calibrated.estimator
        calibrator = calibrated.calibrators[0]
        coefficients.append(estimator.coef_[0])
        folds.append(
            SigmoidCalibrated(
                float(estimator.intercept_[0]), float(calibrator.a_), float(calibrator.b_)
            )
        )
    return ProfanityModel(
        idf={word: float(idf[i]) for word, i in vocabulary.items()},
        weights={word: tuple(float(c[i]) for c in coefficients) for word, i in vocabulary.items()},
        folds=tuple(folds),
    )


LEARNED_JSON, LEARNED_ARRAYS = "learned.json", "learned.npz"


def learned_model_paths(config_dir: Path) -> tuple[Path, Path]:
    """Where ``schoolgate train`` writes the learned layer and the engine reads it."""
    return config_dir / "model" / LEARNED_JSON, config_dir / "model" / LEARNED_ARRAYS


def load_learned_model(config_dir: Path) -> LearnedModel | None:
    """The learned layer trained from the corpus (``schoolgate train``), or None when it has
    not been built. Its files are plain data: JSON and NumPy arrays, never a pickle."""
    json_path, arrays_path = learned_model_paths(config_dir)
    if not json_path.exists() or not arrays_path.exists():
        log.warning("no learned model in %s: word rules only (build it: schoolgate train)",
                    json_path.parent)  # fmt: skip
        return None
    try:
        raw = json_path.read_bytes()
        document = json.loads(raw)
        with np.load(arrays_path, allow_pickle=False) as arrays:
            word_idf, char_idf, coef = arrays["word_idf"], arrays["char_idf"], arrays["coef"]
        # The vocabulary (in the JSON) and the arrays together name the model a school's
        # refitted weights belong to.
        version = hashlib.sha256(raw + arrays_path.read_bytes()).hexdigest()[:16]
        return _learned_model(document, word_idf, char_idf, coef, version)
    except (OSError, ValueError, KeyError, IndexError, TypeError) as error:
        raise ConfigError(f"learned model in {json_path.parent} cannot be read: {error}") from None


def _learned_model(
    document: dict[str, Any],
    word_idf: NDArray[np.float64],
    char_idf: NDArray[np.float64],
    coef: NDArray[np.float64],
    version: str = "",
) -> LearnedModel:
    if document.get("format") != 1:
        raise ValueError(f"format {document.get('format')!r} is not one this version reads")
    word_terms: list[str] = document["word_terms"]
    char_terms: list[str] = document["char_terms"]
    rules = tuple(document["rules"])
    if len(word_terms) != len(word_idf) or len(char_terms) != len(char_idf):
        raise ValueError("the vocabularies and the arrays do not match")
    if coef.shape != (len(rules), len(word_terms) + len(char_terms)):
        raise ValueError(f"coefficients of shape {coef.shape} do not fit the vocabularies")
    # One column per rule, words' rows then characters'.
    by_term = np.ascontiguousarray(coef.T, dtype=np.float64)
    words = Block({t: i for i, t in enumerate(word_terms)}, word_idf, by_term[: len(word_terms)])
    chars = Block({t: i for i, t in enumerate(char_terms)}, char_idf, by_term[len(word_terms) :])
    examples = {
        rule: tuple(
            Example(item["text"], {word_terms[t]: v for t, v in item["terms"]}) for item in items
        )
        for rule, items in document["examples"].items()
    }
    return LearnedModel(
        rules=rules,
        words=words,
        chars=chars,
        intercepts=tuple(document["intercepts"]),
        thresholds=tuple(document["thresholds"]),
        # A model trained before vetoes were chosen never overrules the word rules.
        vetoes=tuple(document.get("vetoes", [-1.0] * len(rules))),
        examples=examples,
        version=version,
    )


def build_engine(
    school_file: Path,
    config_dir: Path,
    policy_file: Path | None = None,
    *,
    use_model: bool = True,
    use_learned: bool = True,
) -> PolicyEngine:
    school = load_school(school_file)
    policy = load_policy(policy_file)
    lexicons = load_lexicons(config_dir / "lexicons")
    model = load_profanity_model() if use_model else None
    learned = load_learned_model(config_dir) if use_learned else None
    try:
        return PolicyEngine(school, lexicons, policy, model, learned)
    except (LexiconError, PatternError) as error:
        raise ConfigError(f"lexicons in {config_dir / 'lexicons'}: {error}") from None
