"""Redacting other people from a subject access export's free text."""

from __future__ import annotations

import pytest

from bot.policy.redaction import (
    REDACTED,
    Redactor,
    handle_forms,
    name_forms,
    staff_forms,
)
from bot.policy.school import SchoolConfig

R = REDACTED


@pytest.fixture(scope="module")
def redact(school: SchoolConfig) -> Redactor:
    """Becky Sutton's export: Kerry Marsh is another parent; the staff are the school file's."""
    others = name_forms("Kerry Marsh") | handle_forms("kerry_m") | name_forms("Zoë Ångström")
    others |= name_forms("Sarah (Ollie's mum)") | staff_forms(school.staff)
    return Redactor(others, name_forms("Becky Sutton") | handle_forms("becky_s"))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Kerry Marsh is a liar", f"{R} is a liar"),
        ("KERRY said so, and kerry's kids too", f"{R} said so, and {R}'s kids too"),
        ("zoe angstrom and ZOË", f"{R} and {R}"),  # accents folded either way
        ("Sarah's mum knows", f"{R}'s mum knows"),  # "mum" in a display name is no name
        ("Mrs Patel, Mrs. Anita Patel and Anita", f"{R}, {R} and {R}"),  # names, titles, aliases
        ("ask mr okafor or Mr O", f"ask {R} or Mr O"),
        ("Chloe can you help", f"{R} can you help"),
        ("the class was fun", "the class was fun"),  # whole words only
        ("Scunthorpe and Marshall", "Scunthorpe and Marshall"),
    ],
)
def test_other_peoples_names_are_redacted(redact: Redactor, text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    "number",
    [
        "07700 900123",
        "07700900123",
        "+44 7700 900123",
        "+44 (0)7700 900123",
        "0044 7700 900123",
        "020 7946 0018",
        "(020) 7946 0018",
        "(0161) 496 0000",
        "0161-496-0000",
    ],
)
def test_uk_phone_numbers_are_redacted(redact: Redactor, number: str) -> None:
    assert redact(f"ring {number} after six") == f"ring {R} after six"


def test_emails_and_handles_are_redacted_but_not_the_subjects_own(redact: Redactor) -> None:
    text = "mail kerry.marsh@example.com or ask @kerry_m, @anita_patel; I'm @becky_s"
    assert redact(text) == f"mail {R} or ask {R}, {R}; I'm @becky_s"
    # Unknown handles too: anyone's handle is someone's.
    assert redact("cc @somebody_else") == f"cc {R}"


def test_the_subjects_own_name_is_kept(redact: Redactor) -> None:
    assert redact("Becky Sutton here, Becky to friends") == "Becky Sutton here, Becky to friends"


def test_a_name_shared_with_the_subject_is_kept_but_not_someone_elses_full_name() -> None:
    redact = Redactor(name_forms("Becky Jones"), name_forms("Becky Sutton"))
    assert redact("Becky Jones and Becky") == f"{R} and Becky"


def test_dates_times_and_counts_are_not_phone_numbers(redact: Redactor) -> None:
    text = "on 2026-11-24 at 14:00, 12 of 20 agreed, ref 123456, 3/4 done"
    assert redact(text) == text


def test_text_without_anyone_in_it_is_unchanged() -> None:
    assert Redactor(()).__call__("nothing to see") == "nothing to see"
    assert Redactor(()).__call__("") == ""


def test_name_forms_skip_titles_and_family_words() -> None:
    assert name_forms("Mrs Anita Patel") == {"anita patel", "anita", "patel"}
    assert name_forms("Dad of twins") == {"dad of twins"}
    assert name_forms("🌸") == set()
    assert handle_forms("@Mr_Okafor") == {"mr_okafor", "@mr_okafor"}


def test_another_name_inside_the_subjects_own_is_kept() -> None:
    redact = Redactor(name_forms("Anne Smith"), name_forms("Mary Anne Smith"))
    assert redact("Mary Anne Smith, not Anne Smith") == f"Mary Anne Smith, not {R}"
