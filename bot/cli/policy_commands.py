"""Commands around the policy engine: classify, evaluate, school check."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import click

from bot.channels.jsonl import LineError, error_json, parse_line, verdict_json
from bot.cli.common import FILE, reports_errors
from bot.evaluation import Evaluation
from bot.policy import PolicyEngine
from bot.policy.engine import MessageTooLongError
from bot.policy_files import build_engine, load_school
from bot.settings import get_settings


def _engine(school: Path, policy: Path | None) -> PolicyEngine:
    settings = get_settings()
    return build_engine(school, settings.config_dir, policy, use_learned=settings.learned_model)


@click.command()
@click.option("--school", "school_file", type=FILE, required=True, help="The school file (YAML).")
@click.option("--policy", "policy_file", type=FILE, help="Rule settings and extra terms (YAML).")
@reports_errors
def classify(school_file: Path, policy_file: Path | None) -> None:
    """Check messages (JSON Lines on stdin) and write one verdict per line on stdout.

    Exit status 1 if any line could not be read, else 0.
    """
    engine = _engine(school_file, policy_file)
    source = sys.stdin.buffer
    interactive = source.isatty()
    out = sys.stdout
    had_error = False
    for line in _lines(source):
        result, failed = _classify_line(engine, line)
        had_error |= failed
        out.write(json.dumps(result, ensure_ascii=False))
        out.write("\n")
        if interactive:
            out.flush()
    out.flush()
    sys.exit(1 if had_error else 0)


def _lines(stream: IO[bytes]) -> Iterator[bytes]:
    for raw in stream:
        line = raw.strip()
        if line:
            yield line


def _classify_line(engine: PolicyEngine, line: bytes) -> tuple[dict[str, Any], bool]:
    try:
        message_id, message = parse_line(line)
    except LineError as error:
        return error_json(error.message_id, error.reason), True
    try:
        return verdict_json(message_id, engine.classify(message)), False
    except MessageTooLongError as error:
        return error_json(message_id, str(error)), True


@click.command()
@click.option("--school", "school_file", type=FILE, required=True, help="The school file (YAML).")
@click.option("--policy", "policy_file", type=FILE, help="Rule settings and extra terms (YAML).")
@click.option("--mistakes", is_flag=True, help="List every message the engine got wrong.")
@click.argument("data", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@reports_errors
def evaluate(school_file: Path, policy_file: Path | None, mistakes: bool, data: Path) -> None:
    """Compare the engine with labelled messages (JSON Lines with an ``expected`` list of rules).

    Prints precision, recall and F1 per rule and overall.
    """
    combined = _engine(school_file, policy_file)
    engines = {"word rules and learned model (the engine)": combined}
    if combined.learned is not None:
        rules_only = build_engine(
            school_file, get_settings().config_dir, policy_file, use_learned=False
        )
        engines = {"word rules alone": rules_only, **engines}
    evaluations = {title: Evaluation() for title in engines}
    unreadable = 0
    with data.open("rb") as stream:
        for number, line in enumerate(_lines(stream), start=1):
            try:
                labels = json.loads(line).get("expected")
                message_id, message = parse_line(line)
                if not isinstance(labels, list):
                    raise LineError(message_id, "expected must be a list of rule ids")
                verdicts = {title: engine.classify(message) for title, engine in engines.items()}
            except (LineError, MessageTooLongError, AttributeError) as error:
                unreadable += 1
                click.echo(f"line {number}: skipped: {error}", err=True)
                continue
            for title, verdict in verdicts.items():
                predicted = [str(r) for r in verdict.rules]
                evaluations[title].record(message.id, message.text, labels, predicted)
    final = evaluations["word rules and learned model (the engine)"]
    if mistakes:
        for mistake in final.mistakes:
            missed = ", ".join(sorted(mistake.expected - mistake.predicted)) or "-"
            extra = ", ".join(sorted(mistake.predicted - mistake.expected)) or "-"
            click.echo(f"{mistake.message_id}: missed {missed}; wrongly flagged {extra}")
            click.echo(f"    {mistake.text}")
        click.echo()
    sections = [
        f"{title}:\n{evaluation.report()}" if len(evaluations) > 1 else evaluation.report()
        for title, evaluation in evaluations.items()
    ]
    click.echo("\n\n".join(sections))
    if unreadable:
        sys.exit(1)


@click.group()
def school() -> None:
    """Work with school files."""


@school.command("check")
@click.argument("school_file", type=FILE)
@reports_errors
def school_check(school_file: Path) -> None:
    """Validate a school file and summarise what Schoolgate understood from it."""
    config = load_school(school_file)
    info = config.school
    click.echo(f"{info.name} ({info.timezone})")
    click.echo(f"  working hours: {info.working_hours.describe()}")
    click.echo(f"  bank holidays: {info.bank_holidays or 'none'}")
    for closure in info.closures:
        click.echo(f"  closed: {closure.start} to {closure.end} ({closure.name})")
    click.echo(f"  permitted platforms: {'; '.join(config.permitted_platforms)}")
    for member in config.staff:
        roles = ", ".join(r for r, on in (("SLT", member.slt), ("DSL", member.dsl)) if on)
        handles = " ".join(member.all_handles)
        click.echo(f"  staff: {member.name} - {member.role} {handles} {roles}".rstrip())
    click.echo("The school file is valid.")


def register(main: click.Group) -> None:
    main.add_command(classify)
    main.add_command(evaluate)
    main.add_command(school)
