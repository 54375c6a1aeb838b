"""Commands around the labelled corpus and the learned layer: corpus build, train."""

from __future__ import annotations

from pathlib import Path

import click

from bot.cli.common import reports_errors
from bot.learning import corpus as corpus_files
from bot.learning import train as training
from bot.policy_files import build_engine, learned_model_paths, load_school
from bot.settings import get_settings

DIRECTORY = click.Path(exists=True, file_okay=False, path_type=Path)


def _corpus_dir(given: Path | None) -> Path:
    return given or get_settings().corpus_dir


@click.group()
def corpus() -> None:
    """The labelled corpus the learned layer is trained on."""


@corpus.command("build")
@click.option("--corpus", "corpus_dir", type=DIRECTORY, help="Default: the project's corpus/.")
@reports_errors
def corpus_build(corpus_dir: Path | None) -> None:
    """Settle the readers' labels into corpus/messages.jsonl and report their agreement."""
    directory = _corpus_dir(corpus_dir)
    school = load_school(directory / "school.yaml")
    try:
        rows = corpus_files.build_corpus(directory, school)
        agreement = corpus_files.agreement(directory)
    except corpus_files.CorpusError as error:
        raise click.ClickException(str(error)) from None
    corpus_files.write_jsonl(directory / "messages.jsonl", rows)
    click.echo(f"{len(rows)} messages by {len(corpus_files.authors(directory))} authors")
    click.echo(f"{'rule':<22} {'first':>6} {'second':>6} {'differ':>6}  kappa")
    for rule in agreement:
        click.echo(
            f"{rule.rule:<22} {rule.first:>6} {rule.second:>6} {rule.disagreements:>6}"
            f"  {rule.kappa:.3f}"
        )


@click.command()
@click.option("--corpus", "corpus_dir", type=DIRECTORY, help="Default: the project's corpus/.")
@reports_errors
def train(corpus_dir: Path | None) -> None:
    """Train the learned layer on corpus/messages.jsonl and write it to config/model/.

    Thresholds are chosen on authors the model never saw (each author's messages scored by a
    model trained on the others'); the figures printed are on those held-out authors.
    """
    directory = _corpus_dir(corpus_dir)
    engine = build_engine(directory / "school.yaml", get_settings().config_dir, use_learned=False)
    with (directory / "messages.jsonl").open(encoding="utf-8") as lines:
        rows = [line for line in lines if line.strip()]
    documents = training.documents(rows, engine)
    rules_found = training.rules_findings(rows, engine)
    click.echo(f"training on {len(documents)} messages (staff messages left out)...")
    trained = training.train(documents, rules_found)
    report = training.held_out_report(trained, rules_found)
    authors = report.authors
    trained_on = f"{len(documents)} labelled messages by {authors} authors"
    json_path, arrays_path = learned_model_paths(get_settings().config_dir)
    training.write_model(trained, trained_on, json_path, arrays_path)
    for title, evaluation in (
        ("word rules alone", report.rules_only),
        ("learned model alone (its five rules)", report.model_only),
        ("word rules and learned model (the engine)", report.combined),
    ):
        click.echo(f"\n{title}, each author held out in turn:")
        click.echo(evaluation.report())
    click.echo("\nthresholds: " + ", ".join(f"{r} {t:.3f}" for r, t in trained.thresholds.items()))
    click.echo("vetoes: " + ", ".join(f"{r} {v:.3f}" for r, v in trained.vetoes.items()))
    click.echo(f"wrote {json_path} and {arrays_path}")


def register(main: click.Group) -> None:
    main.add_command(corpus)
    main.add_command(train)
