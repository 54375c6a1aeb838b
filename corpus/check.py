"""Check a batch of authored or second-read corpus lines: python3 corpus/check.py FILE...

Standard library only, so authors and readers can run it with any python3, without the
project's environment; ``LABELS`` are ``bot.learning.corpus.JUDGED_RULES``.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime

LABELS = {
    "abusive-to-parent",
    "abusive-about-others",
    "staff-contact",
    "confidential-info",
    "disrepute",
    "images-consent",
    "harassment-campaign",
}
ROLES = {"parent", "staff", "unknown", "carer", "grandparent"}


def problems(line: str) -> list[str]:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as error:
        return [f"not JSON: {error}"]
    found = []
    if not isinstance(row.get("id"), str) or not row["id"]:
        found.append("id missing")
    expected = row.get("expected")
    if not isinstance(expected, list) or not set(expected) <= LABELS:
        found.append(f"expected must be a list drawn from {sorted(LABELS)}")
    if "text" not in row:
        return found  # a second reader's line: id and expected only
    if not isinstance(row["text"], str):
        found.append("text must be a string")
    try:
        sent = datetime.fromisoformat(row.get("sent_at", ""))
        if sent.tzinfo is None:
            found.append("sent_at needs an offset, e.g. +00:00 or +01:00")
    except (TypeError, ValueError):
        found.append("sent_at must be ISO 8601")
    sender = row.get("sender") or {}
    if sender.get("role") not in ROLES or not sender.get("name") or not sender.get("id"):
        found.append("sender needs id, name and role")
    if sender.get("role") == "staff" and expected:
        found.append("a staff member's message is never labelled")
    reply = row.get("reply_to")
    if reply is not None and (not isinstance(reply, dict) or "sender" not in reply):
        found.append("reply_to must be null or {sender, text}")
    for item in row.get("media") or []:
        if item.get("kind") not in {"photo", "video", "document", "sticker", "voice"}:
            found.append("media kind must be photo, video, document, sticker or voice")
    if not isinstance(row.get("mentions", []), list):
        found.append("mentions must be a list")
    return found


def main(paths: list[str]) -> int:
    bad = 0
    seen: set[str] = set()
    for path in paths:
        with open(path, encoding="utf-8") as lines:
            for number, line in enumerate(lines, 1):
                if not line.strip():
                    continue
                issues = problems(line)
                try:
                    row_id = json.loads(line).get("id")
                except json.JSONDecodeError:
                    row_id = None
                if row_id in seen:
                    issues.append(f"duplicate id {row_id}")
                seen.add(row_id)
                for issue in issues:
                    bad += 1
                    print(f"{path}:{number}: {issue}")
    print(f"{len(seen)} lines, {bad} problems")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
