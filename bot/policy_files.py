"""Loading the engine's inputs from disk: the school file, the policy file, lexicons, the model.

Every failure becomes a ``ConfigError`` that names the file, the field and what is wrong, so a
school editing its YAML sees a sentence, never a traceback.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from bot.errors import ConfigError
from bot.policy.config import PolicyConfig
from bot.policy.engine import PolicyEngine
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


def build_engine(
    school_file: Path,
    config_dir: Path,
    policy_file: Path | None = None,
    *,
    use_model: bool = True,
) -> PolicyEngine:
    school = load_school(school_file)
    policy = load_policy(policy_file)
    lexicons = load_lexicons(config_dir / "lexicons")
    model = load_profanity_model() if use_model else None
    try:
        return PolicyEngine(school, lexicons, policy, model)
    except (LexiconError, PatternError) as error:
        raise ConfigError(f"lexicons in {config_dir / 'lexicons'}: {error}") from None
