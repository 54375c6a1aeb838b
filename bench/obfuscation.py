"""How much disguise costs: abuse recall on the hold-out sets, plain and disguised.

    .venv/bin/python bench/obfuscation.py

Prints, for each way of disguising the rude words (leetspeak, spacing, dots, zero-width
characters, look-alike letters, asterisks), how many abusive messages are still caught.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.policy_files import build_engine  # noqa: E402
from tests.conftest import CONFIG_DIR, DATA  # noqa: E402
from tests.policy.test_obfuscation import (  # noqa: E402
    DISGUISES,
    abusive_messages,
    caught,
    disguise,
)


def main() -> None:
    engine = build_engine(DATA / "school-holdout.yaml", CONFIG_DIR)
    messages = abusive_messages()
    plain = [m for m in messages if caught(engine, m)]
    print(f"abusive messages in the hold-out sets: {len(messages)}")
    print(f"  plain:        {len(plain)} caught ({len(plain) / len(messages):.1%})")
    for name, how in DISGUISES.items():
        changed = [(m, d) for m in plain if (d := disguise(engine, m, how)).text != m.text]
        kept = sum(caught(engine, d) for _, d in changed)
        share = kept / len(changed) if changed else 1.0
        print(
            f"  {name:<12}  {kept} of the {len(changed)} with a rude word disguised ({share:.1%})"
        )


if __name__ == "__main__":
    main()
