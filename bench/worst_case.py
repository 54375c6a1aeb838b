"""Worst-case cost of checking one message: ms per message by length, for each adversarial family.

    .venv/bin/python bench/worst_case.py [--repeats 5]

Prints the median of ``--repeats`` runs per cell, and each family's 4,096 / 512 ratio (about 8
when the cost is linear). It asserts nothing: this machine is shared and noisy; the target, read
by a person, is under 20 ms at 4,096 characters for every family on one core.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.adversarial import FAMILIES  # noqa: E402
from bot.policy.message import ChatMessage, Person, ReplyTo, Role  # noqa: E402
from bot.policy_files import build_engine  # noqa: E402

SCHOOL = ROOT / "config" / "school.example.yaml"
LENGTHS = (256, 512, 1024, 2048, 4096)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    engine = build_engine(SCHOOL, ROOT / "config")
    parent = Person("p:1", "Pat Jones", Role.PARENT)
    reply = ReplyTo(Person("p:2", "Sam Lee", Role.PARENT), "what do you mean?")
    print(f"{'family':<18}" + "".join(f"{n:>9,}" for n in LENGTHS) + "   4096/512")
    for name, build in FAMILIES.items():
        cells = []
        for length in LENGTHS:
            message = ChatMessage("m", build(length), datetime(2026, 11, 24, 20, tzinfo=UTC),
                                  parent, reply_to=reply)  # fmt: skip
            engine.classify(message)  # warm the caches, as a running service has them
            times = []
            for _ in range(args.repeats):
                started = time.perf_counter()
                engine.classify(message)
                times.append((time.perf_counter() - started) * 1000)
            cells.append(statistics.median(times))
        ratio = cells[-1] / cells[1] if cells[1] else float("nan")
        print(f"{name:<18}" + "".join(f"{ms:>9.2f}" for ms in cells) + f"   {ratio:>6.1f}")
    print("ms per message, median; target: every family under 20 ms at 4,096 characters")


if __name__ == "__main__":
    main()
