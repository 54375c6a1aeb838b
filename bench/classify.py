"""Benchmark the policy engine: throughput of ``schoolgate classify``, latency in process, memory.

    .venv/bin/python bench/classify.py [--messages 20000]

Prints figures; it asserts nothing (this machine is shared and noisy, so targets are read by a
person: at least 1,000 messages/s through ``classify`` on one core with the learned layer on,
p99 under 10 ms in process). The same command with the word rules alone runs in the same
benchmark as the peer to compare with.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.channels.jsonl import parse_line  # noqa: E402
from bot.policy_files import build_engine  # noqa: E402

SCHOOL = ROOT / "config" / "school.example.yaml"


@dataclass(frozen=True)
class Sample:
    text: str
    mention: str | None = None
    reply: bool = False
    photo: str | None = None


LONG = " ".join(["the nativity rehearsal went on for ages and the kids were tired but happy"] * 12)

# A mix like a real chat: mostly harmless, some breaches, some obfuscated, a few long.
SAMPLES = [
    Sample("morning all, does anyone know if its PE tmrw or thurs this week?"),
    Sample("@mr_okafor hi, is the museum trip still going ahead on thursday?", "@mr_okafor"),
    Sample("found a navy jumper in the playground at drop off, handed it in to the office 👍"),
    Sample("Chloe can u let the office know noah will be in late, dentist at 9 🦷"),
    Sample("oh get over yourself becky, nobody wants to park near your sh*tty house", reply=True),
    Sample("that usеlеss сow in the office has lost our dinner money form AGAIN"),
    Sample("honestly emma you are an absolute i d i o t, it's in the letter", reply=True),
    Sample("fyi maisie's mum's new number is 07700 900456 if anyone needs it"),
    Sample("this school is an absolute joke. they do NOTHING about bullying"),
    Sample("lets ALL leave 1 star reviews on google tonight, this school is a shambles"),
    Sample("i could kill for a large glass of wine after this week 🍷"),
    Sample("the kids absolutely killed it at the cross country today!! so proud"),
    Sample("Mrs Patel's assembly about kindness was lovely, zara loved it"),
    Sample("look at them all!! 📚", photo="Year 1 class lined up in the playground"),
    Sample("thank you everyone for coming to oliver's party!! 🎂"),
    Sample("is shepherd = dressing gown + tea towel or do they want a proper costume? 🙏"),
    Sample("heard Mr Reilly's been suspended while they investigate. keep it quiet"),
    Sample("who's up for standing outside her classroom with signs? let's make her life hell"),
    Sample(f"long message: {LONG}"),
]


def make_lines(count: int) -> list[str]:
    lines = []
    for index in range(count):
        sample = SAMPLES[index % len(SAMPLES)]
        day, hour = 10 + index % 14, 7 + index % 14
        line: dict[str, object] = {
            "id": f"b{index}",
            "text": f"{sample.text} #{index}",
            "sent_at": f"2026-11-{day:02d}T{hour:02d}:{index % 60:02d}:00+00:00",
            "sender": {"id": f"p:{index % 40}", "name": f"Parent {index % 40}", "role": "parent"},
            "chat": {"id": "c:year3", "title": "Year 3 Parents"},
        }
        if sample.mention:
            line["mentions"] = [sample.mention]
        if sample.reply:
            line["reply_to"] = {"sender": {"id": "p:99", "name": "Becky Sutton", "role": "parent"}}
        if sample.photo:
            line["media"] = [{"kind": "photo", "caption": sample.photo}]
        lines.append(json.dumps(line, ensure_ascii=False))
    return lines


def run_cli(path: Path, *, learned: bool = True) -> tuple[float, int]:
    """Wall time of one ``schoolgate classify`` run pinned to one core, and its peak RSS (KiB)."""
    command = [sys.executable, "-m", "bot", "classify", "--school", str(SCHOOL)]
    if shutil.which("taskset"):
        command = ["taskset", "-c", "0", *command]
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    environment = os.environ | {"LEARNED_MODEL": "true" if learned else "false"}
    with path.open("rb") as stdin:
        started = time.perf_counter()
        subprocess.run(command, stdin=stdin, stdout=subprocess.DEVNULL, check=False, cwd=ROOT,
                       env=environment)  # fmt: skip
        elapsed = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return elapsed, max(peak, before)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3, help="CLI runs; the best is reported")
    args = parser.parse_args()
    lines = make_lines(args.messages)

    with tempfile.TemporaryDirectory() as folder:
        empty = Path(folder) / "empty.jsonl"
        empty.write_text("")
        data = Path(folder) / "messages.jsonl"
        data.write_text("\n".join(lines) + "\n", encoding="utf-8")
        startup = min(run_cli(empty)[0] for _ in range(args.repeats))
        runs = [run_cli(data) for _ in range(args.repeats)]
        # The peer in the same run: the same command with the word rules alone.
        rules_only = min(run_cli(data, learned=False)[0] for _ in range(args.repeats))
    best = min(elapsed for elapsed, _ in runs)
    peak_kib = max(peak for _, peak in runs)
    print(f"schoolgate classify, {args.messages:,} messages on one core (best of {args.repeats}):")
    print(f"  total {best:.2f} s, of which start-up {startup:.2f} s")
    after_startup = args.messages / max(best - startup, 1e-9)
    print(f"  throughput {args.messages / best:,.0f} messages/s overall, ", end="")
    print(f"{after_startup:,.0f} messages/s after start-up")
    print(f"  peak memory (RSS) {peak_kib / 1024:.0f} MiB")
    rules_rate = args.messages / max(rules_only - startup, 1e-9)
    print(f"  peer, word rules alone: {rules_rate:,.0f} messages/s after start-up; with the "
          f"learned layer {after_startup / rules_rate:.2f} x that")  # fmt: skip

    engine = build_engine(SCHOOL, ROOT / "config")
    messages = [parse_line(line)[1] for line in lines[: min(len(lines), 10_000)]]
    for message in messages[:200]:  # warm caches
        engine.classify(message)
    timings = []
    for message in messages:
        started = time.perf_counter_ns()
        engine.classify(message)
        timings.append((time.perf_counter_ns() - started) / 1e6)
    print(f"in process, {len(messages):,} messages (pid {os.getpid()}):")
    p50, p99 = statistics.median(timings), percentile(timings, 0.99)
    print(f"  latency p50 {p50:.3f} ms, p99 {p99:.3f} ms, max {max(timings):.3f} ms")


if __name__ == "__main__":
    main()
