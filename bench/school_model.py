"""How long a school's own model takes to retrain, and the memory it takes.

    .venv/bin/python bench/school_model.py [--examples 300]

Refits the corpus model on the whole corpus plus ``--examples`` of a school's decisions (here:
corpus messages, half confirmed and half not a breach), with the five-fold before/after
comparison the Rules page shows, as the trainer in ``schoolgate serve`` does. Prints figures;
asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.channels.jsonl import parse_line  # noqa: E402
from bot.learning import school_model  # noqa: E402
from bot.learning.train import LEARNED_RULES  # noqa: E402
from bot.policy_files import build_engine, load_learned_model  # noqa: E402

CONFIG = ROOT / "config"
CORPUS = ROOT / "corpus"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--examples", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    base = load_learned_model(CONFIG)
    if base is None:
        sys.exit("no learned model: run schoolgate train first")
    corpus_engine = build_engine(CORPUS / "school.yaml", CONFIG, use_learned=False)
    lines = (CORPUS / "messages.jsonl").read_text(encoding="utf-8").splitlines()
    own: list[school_model.OwnExample] = []
    for index, line in enumerate(lines[: args.examples * 3]):
        row = json.loads(line)
        _, message = parse_line(line)
        features = corpus_engine.model_input(message)
        if features is None or len(own) >= args.examples:
            continue
        judged = frozenset(row["expected"]) & set(LEARNED_RULES) or frozenset(LEARNED_RULES[:1])
        breaks = judged if index % 2 else frozenset()
        found = frozenset(str(rule) for rule in corpus_engine.classify(message).rules)
        own.append(school_model.OwnExample(school_model.Labelled(features, breaks, judged), found))
    reading, training = [], []
    for _ in range(args.repeats):
        started = time.perf_counter()
        corpus = school_model.corpus_labelled(lines, corpus_engine)
        read = time.perf_counter()
        school_model.train_for_school(base, corpus, own)
        reading.append(read - started)
        training.append(time.perf_counter() - read)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"school model: {len(corpus):,} corpus messages + {len(own)} of the school's examples")
    print(f"  reading the corpus: median {statistics.median(reading):.1f} s")
    print(
        f"  refitting (five folds for before/after, then the model): "
        f"median {statistics.median(training):.1f} s"
    )
    print(f"  peak memory (RSS) {peak:.0f} MiB")


if __name__ == "__main__":
    main()
