"""``schoolgate classify`` and ``schoolgate evaluate`` end to end, as the contract describes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy.ext.asyncio import AsyncSession

from bot.cli import main
from bot.store.models import Chat
from tests.conftest import DATA, ROOT, SCHOOL_FILE

SCHOOL = str(SCHOOL_FILE)


def line(**fields: object) -> str:
    base: dict[str, object] = {
        "id": "m1",
        "text": "hello all",
        "sent_at": "2026-11-24T19:40:00+00:00",
        "sender": {"id": "p:17", "name": "Leanne Carter", "role": "parent"},
        "chat": {"id": "c:year3", "title": "Year 3 Parents"},
    }
    base.update(fields)
    return json.dumps(base)


def classify(*lines: str, args: tuple[str, ...] = ()) -> tuple[int, list[dict[str, object]]]:
    result = CliRunner().invoke(main, ["classify", "--school", SCHOOL, *args],
                                input="\n".join(lines) + "\n")  # fmt: skip
    return result.exit_code, [json.loads(out) for out in result.stdout.splitlines()]


def test_contract_example() -> None:
    code, (verdict,) = classify(line(text="@mr_okafor is the trip still on?",
                                     mentions=["@mr_okafor"], unknown_field=[1, 2]))  # fmt: skip
    assert code == 0
    assert verdict == {
        "id": "m1",
        "flagged": True,
        "rules": ["staff-contact", "out-of-hours"],
        "severity": "low",
        "explanations": [
            {
                "rule": "staff-contact",
                "clause": "All communications to school staff must be sent via the permitted"
                " school platforms",
                "evidence": "@mr_okafor",
            },
            {
                "rule": "out-of-hours",
                "clause": "Parents/carers should understand that staff should not be contacted"
                " outside of working hours",
                "evidence": "sent Tuesday 19:40, outside Mon-Fri 08:00-17:00 (Europe/London);"
                " Mr David Okafor's hours are Mon-Fri 08:00-17:00",
            },
        ],
    }


def test_harmless_message() -> None:
    code, (verdict,) = classify(line(id=7))
    assert code == 0
    assert verdict == {"id": 7, "flagged": False, "rules": [], "severity": None,
                       "explanations": []}  # fmt: skip


def test_bad_lines_get_errors_in_order_and_the_run_goes_on() -> None:
    code, verdicts = classify(
        line(id="a"),
        "{not json",
        json.dumps({"id": "b", "sent_at": "2026-11-24T10:00:00+00:00"}),
        json.dumps({"id": "c", "text": "hi", "sent_at": "yesterday"}),
        json.dumps(["a list"]),
        line(id="d", text="x" * 70_000),
        line(
            id="e", text="you absolute idiot", reply_to={"sender": {"name": "Al", "role": "parent"}}
        ),
    )
    assert code == 1
    assert [v["id"] for v in verdicts] == ["a", None, "b", "c", None, "d", "e"]
    assert "not valid JSON" in str(verdicts[1]["error"])
    assert verdicts[2] == {"id": "b", "error": "text is missing"}
    assert "sent_at" in str(verdicts[3]["error"])
    assert "JSON object" in str(verdicts[4]["error"])
    assert "70,000 characters" in str(verdicts[5]["error"])
    assert verdicts[6]["rules"] == ["abusive-to-parent"]


def test_blank_lines_are_skipped_and_an_empty_input_is_fine() -> None:
    assert classify("", "   ") == (0, [])


def test_other_roles_are_parents_and_staff_are_exempt() -> None:
    carer = line(text="you absolute idiot", sender={"name": "Nan", "role": "grandparent"})
    staff = line(text="you absolute idiot", sender={"id": "s:okafor", "role": "unknown"})
    _, (as_parent, as_staff) = classify(carer, staff)
    assert as_parent["flagged"] is True
    assert as_staff["flagged"] is False


def test_policy_file_disables_rules_and_changes_severity(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "rules:\n  out-of-hours: {enabled: false}\n  staff-contact: {severity: high}\n"
        "lexicons:\n  abuse.insults: [nincompoop]\n",
        encoding="utf-8",
    )
    _, (contact, insult) = classify(
        line(text="@mr_okafor hi"),
        line(text="what a nincompoop", sender={"name": "A", "role": "parent"}),
        args=("--policy", str(policy)),
    )
    assert contact["rules"] == ["staff-contact"]
    assert contact["severity"] == "high"
    assert insult["rules"] == ["abusive-about-others"]


def test_a_bad_school_file_is_one_clear_sentence(tmp_path: Path) -> None:
    bad = tmp_path / "school.yaml"
    bad.write_text("school: {name: X, working_hours: {monday: 9am}}\npermitted_platforms: [x]\n")
    result = CliRunner().invoke(main, ["classify", "--school", str(bad)], input="")
    assert result.exit_code == 2
    assert "school.working_hours.monday: '9am' is not a time range" in result.stderr
    assert "Traceback" not in result.output


def test_evaluate_reports_precision_and_recall() -> None:
    result = CliRunner().invoke(
        main, ["evaluate", "--school", SCHOOL, "--mistakes", str(DATA / "labelled.jsonl")]
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[-1] == "messages: 4, all rules right: 3 (75.0%)"
    # The word rules alone first, then the engine as it runs (with the learned layer).
    assert "word rules alone:" in lines
    assert lines.index("word rules alone:") < lines.index(
        "word rules and learned model (the engine):"
    )
    staff_row = next(row for row in lines if row.startswith("staff-contact"))
    assert staff_row.split()[1:4] == ["1", "0", "0"]
    overall = next(row for row in lines if row.startswith("overall (micro)"))
    # 2 true positives, 1 false negative (the missed disrepute label planted in the file).
    assert overall.split()[2:] == ["2", "0", "1", "1.000", "0.667", "0.800"]
    assert "l4: missed disrepute; wrongly flagged -" in result.stdout


def test_installed_command_reads_stdin_and_writes_stdout() -> None:
    """The real process, as another tool would call it."""
    result = subprocess.run(
        [sys.executable, "-m", "bot", "classify", "--school", SCHOOL],
        input=line(text="Chloe can u tell the office noah will be late") + "\n",
        capture_output=True, text=True, cwd=ROOT, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["rules"] == ["staff-contact", "out-of-hours"]


@pytest.mark.parametrize("command", [["--help"], ["classify", "--help"], ["--version"]])
def test_help(command: list[str]) -> None:
    assert CliRunner().invoke(main, command).exit_code == 0


def test_the_example_policy_file_is_valid() -> None:
    result = CliRunner().invoke(
        main,
        ["classify", "--school", SCHOOL, "--policy", str(ROOT / "config/policy.example.yaml")],
        input=line(text="hello") + "\n",
    )
    assert result.exit_code == 0, result.output


def test_admin_commands_on_a_fresh_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.settings import get_settings

    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        loaded = runner.invoke(main, ["school", "load", SCHOOL])
        assert loaded.exit_code == 0, loaded.output
        assert "loaded Peartree Spring Primary School (5 staff)" in loaded.stdout
        invite = runner.invoke(main, ["chats", "invite", "--class", "Year 3"])
        assert invite.exit_code == 0, invite.output
        assert len(invite.stdout.splitlines()[-1]) == 9  # the code alone on the last line
        link = runner.invoke(main, ["staff", "link-code", "--name", "Mrs Anita Patel"])
        assert link.exit_code == 0, link.output
        nobody = runner.invoke(main, ["staff", "link-code", "--name", "Mr Nobody"])
        assert nobody.exit_code == 1
        assert "there is no staff member 'Mr Nobody'" in nobody.stderr
        close = runner.invoke(main, ["chats", "close", "99", "--reason", "x", "--by", "Mrs Patel"])
        assert close.exit_code == 1
        assert "there is no chat 99" in close.stderr
        listed = runner.invoke(main, ["flags", "list", "--json"])
        assert (listed.exit_code, listed.stdout) == (0, "")
    finally:
        get_settings.cache_clear()


def test_closing_a_chat_and_cancelling_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    from sqlalchemy import select

    from bot.cli.database import in_transaction
    from bot.services.closure import record_step
    from bot.settings import get_settings
    from bot.store.models import ChatClosure, ClosureStatus, OutboxMessage, utcnow
    from bot.store.repositories.schools import SchoolRepository
    from tests.factories import a_chat

    url = f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}"
    monkeypatch.setenv("DATABASE_URL", url)
    get_settings.cache_clear()

    async def a_registered_chat(session: AsyncSession) -> int:
        [school] = await SchoolRepository(session).all()
        return (await a_chat(session, school)).id

    async def notice_posted(session: AsyncSession) -> None:
        closure = await session.scalar(select(ChatClosure))
        assert closure is not None
        chat = await session.get(Chat, closure.chat_id)
        assert chat is not None
        await record_step(session, closure, chat, ClosureStatus.NOTICE_POSTED, utcnow())

    async def withdrawn_notices(session: AsyncSession) -> list[str]:
        rows = await session.scalars(
            select(OutboxMessage).where(OutboxMessage.purpose == "closure")
        )
        return [row.text for row in rows]

    try:
        runner = CliRunner()
        assert runner.invoke(main, ["school", "load", SCHOOL]).exit_code == 0
        chat_id = str(asyncio.run(in_transaction(url, a_registered_chat)))
        close = runner.invoke(
            main, ["chats", "close", chat_id, "--reason", "abuse", "--by", "Mrs Anita Patel"]
        )
        assert close.exit_code == 0, close.output
        asyncio.run(in_transaction(url, notice_posted))
        cancel = runner.invoke(main, ["chats", "cancel-close", chat_id, "--by", "Mrs Patel"])
        assert cancel.exit_code == 0, cancel.output
        assert "the closure of Year 3 Parents is cancelled" in cancel.stdout
        [told] = asyncio.run(in_transaction(url, withdrawn_notices))
        assert "the request to close this chat has been withdrawn" in told
        again = runner.invoke(main, ["chats", "cancel-close", chat_id, "--by", "Mrs Patel"])
        assert again.exit_code == 1
        assert "no closure under way" in again.stderr
    finally:
        get_settings.cache_clear()
