"""The school file: a mistake is reported by field and reason, never as a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.errors import ConfigError
from bot.policy_files import load_policy, load_school
from tests.conftest import CONFIG_DIR

MINIMAL = """
school:
  name: Test Primary
  working_hours: {monday: "08:00-17:00"}
permitted_platforms: [the office]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "school.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def problem(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as raised:
        load_school(write(tmp_path, text))
    return str(raised.value)


def test_the_shipped_example_is_valid() -> None:
    config = load_school(CONFIG_DIR / "school.example.yaml")
    assert config.school.name == "Peartree Spring Primary School"
    assert config.staff[0].all_handles == ("@anita_patel",)


def test_minimal_file_gets_defaults(tmp_path: Path) -> None:
    config = load_school(write(tmp_path, MINIMAL))
    assert config.school.timezone == "Europe/London"
    assert config.school.bank_holidays == "england-and-wales"
    assert config.school.working_hours.describe() == "Mon 08:00-17:00"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            ('"08:00-17:00"', '"8-5"'),
            "school.working_hours.monday: '8-5' is not a time range like \"08:00-17:00\"",
        ),
        (('"08:00-17:00"', '"17:00-08:00"'), "ends before it starts"),
        (('"08:00-17:00"', '"08:00-25:00"'), "impossible time of day"),
        (("monday:", "mondy:"), "school.working_hours.mondy: is not a known field"),
        (
            ("name: Test Primary", "name: Test Primary\n  timezone: Europe/Londn"),
            "school.timezone: 'Europe/Londn' is not a time zone name",
        ),
        (
            ("name: Test Primary", "name: Test Primary\n  bank_holidays: narnia-and-wales"),
            "is not a bank-holiday region",
        ),
        (("permitted_platforms: [the office]", "permitted_platforms: []"), "permitted_platforms"),
        (("name: Test Primary", "name: ''"), "school.name"),
        (
            (
                "name: Test Primary",
                "name: Test Primary\n  closures: [{from: 2026-12-20, to: 2026-12-01}]",
            ),
            "ends (2026-12-01) before it starts",
        ),
    ],
)
def test_field_errors_are_named(tmp_path: Path, change: tuple[str, str], expected: str) -> None:
    text = MINIMAL.replace(*change)
    assert expected in problem(tmp_path, text)


def test_bad_staff_entry_names_the_list_position(tmp_path: Path) -> None:
    text = MINIMAL + "staff:\n  - {name: Mr A, telegram: 'mr a'}\n  - {role: TA}\n"
    message = problem(tmp_path, text)
    assert "staff[0].telegram: 'mr a' is not a handle like @mr_okafor" in message
    assert "staff[1].name: is required" in message


def test_a_handle_cannot_belong_to_two_people(tmp_path: Path) -> None:
    text = (
        MINIMAL
        + "staff:\n  - {name: Mr A, telegram: '@same'}\n  - {name: Mr B, telegram: '@same'}\n"
    )
    assert "handle @same belongs to both Mr A and Mr B" in problem(tmp_path, text)


def test_broken_yaml_gives_the_line(tmp_path: Path) -> None:
    message = problem(tmp_path, "school:\n  name: [unclosed\n")
    assert "not valid YAML" in message
    assert "line" in message


@pytest.mark.parametrize(
    ("text", "expected"), [("", "is empty"), ("- a\n- b\n", "must be a mapping")]
)
def test_wrong_shape(tmp_path: Path, text: str, expected: str) -> None:
    assert expected in problem(tmp_path, text)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_school(tmp_path / "nope.yaml")


def test_policy_file_is_validated(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("rules:\n  disrepute: {severity: catastrophic}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"rules\.disrepute\.severity"):
        load_policy(path)
    path.write_text("rules:\n  not-a-rule: {enabled: false}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not-a-rule"):
        load_policy(path)
