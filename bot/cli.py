"""The ``schoolgate`` command."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, TypeVar

import click

from bot import __version__
from bot.channels.jsonl import LineError, error_json, parse_line, verdict_json
from bot.errors import SchoolgateError
from bot.evaluation import Evaluation
from bot.policy import PolicyEngine
from bot.policy.engine import MessageTooLongError
from bot.policy_files import build_engine, load_school
from bot.settings import get_settings

F = TypeVar("F", bound=Callable[..., Any])

_FILE = click.Path(exists=False, dir_okay=False, path_type=Path)


def _reports_errors(command: F) -> F:
    """Show a SchoolgateError as one sentence on stderr with its exit code, never a traceback."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except SchoolgateError as error:
            click.echo(f"schoolgate: {error}", err=True)
            sys.exit(error.exit_code)

    wrapper.__name__ = command.__name__
    wrapper.__doc__ = command.__doc__
    return wrapper  # type: ignore[return-value]


def _engine(school: Path, policy: Path | None) -> PolicyEngine:
    return build_engine(school, get_settings().config_dir, policy)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="schoolgate")
def main() -> None:
    """Schoolgate: a consent-first guardian for school parent group chats."""


@main.command()
@click.option("--school", "school_file", type=_FILE, required=True, help="The school file (YAML).")
@click.option("--policy", "policy_file", type=_FILE, help="Rule settings and extra terms (YAML).")
@_reports_errors
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


@main.command()
@click.option("--school", "school_file", type=_FILE, required=True, help="The school file (YAML).")
@click.option("--policy", "policy_file", type=_FILE, help="Rule settings and extra terms (YAML).")
@click.option("--mistakes", is_flag=True, help="List every message the engine got wrong.")
@click.argument("data", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_reports_errors
def evaluate(school_file: Path, policy_file: Path | None, mistakes: bool, data: Path) -> None:
    """Compare the engine with labelled messages (JSON Lines with an ``expected`` list of rules).

    Prints precision, recall and F1 per rule and overall.
    """
    engine = _engine(school_file, policy_file)
    evaluation = Evaluation()
    unreadable = 0
    with data.open("rb") as stream:
        for number, line in enumerate(_lines(stream), start=1):
            try:
                labels = json.loads(line).get("expected")
                message_id, message = parse_line(line)
                if not isinstance(labels, list):
                    raise LineError(message_id, "expected must be a list of rule ids")
                verdict = engine.classify(message)
            except (LineError, MessageTooLongError, AttributeError) as error:
                unreadable += 1
                click.echo(f"line {number}: skipped: {error}", err=True)
                continue
            evaluation.record(message.id, message.text, labels, [str(r) for r in verdict.rules])
    if mistakes:
        for mistake in evaluation.mistakes:
            missed = ", ".join(sorted(mistake.expected - mistake.predicted)) or "-"
            extra = ", ".join(sorted(mistake.predicted - mistake.expected)) or "-"
            click.echo(f"{mistake.message_id}: missed {missed}; wrongly flagged {extra}")
            click.echo(f"    {mistake.text}")
        click.echo()
    click.echo(evaluation.report())
    if unreadable:
        sys.exit(1)


@main.group()
def school() -> None:
    """Work with school files."""


@school.command("check")
@click.argument("school_file", type=_FILE)
@_reports_errors
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


@main.command()
@click.option("--host", help="Address to listen on (default from HOST, 127.0.0.1).")
@click.option("--port", type=int, help="Port to listen on (default from PORT, 8000).")
@_reports_errors
def serve(host: str | None, port: int | None) -> None:
    """Run Schoolgate: the admin backend and API on one port."""
    import uvicorn

    from api.app import create_app

    settings = get_settings()
    app = create_app(settings)
    uvicorn.run(
        app,
        host=host or settings.host,
        port=port or settings.port,
        log_level=settings.log_level.lower(),
    )
