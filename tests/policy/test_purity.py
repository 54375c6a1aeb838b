"""bot/policy stays pure: the lint rule that forbids I/O and transports there really fires."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT


def ruff(source: str, filename: str) -> subprocess.CompletedProcess[str]:
    executable = shutil.which("ruff", path=str(Path(sys.executable).parent)) or "ruff"
    return subprocess.run(
        [executable, "check", "--no-cache", "--stdin-filename", filename, "-"],
        input=source, capture_output=True, text=True, cwd=ROOT, check=False,
    )  # fmt: skip


@pytest.mark.parametrize(
    "source",
    [
        "import sqlalchemy\n",
        "from telegram import Bot\n",
        "import os\n",
        "from pathlib import Path\n",
        "import twilio\n",
        "from fastapi import FastAPI\n",
        "import builtins\nbuiltins.open('f')\n",
    ],
)
def test_policy_may_not_import_transports_or_do_io(source: str) -> None:
    result = ruff(source, "bot/policy/probe.py")
    assert result.returncode != 0
    assert "bot/policy is pure" in result.stdout


def test_the_same_imports_are_fine_outside_policy() -> None:
    assert ruff("import os\n\nprint(os.sep)\n", "bot/probe.py").returncode == 0


def test_policy_source_calls_no_io_builtins() -> None:
    """Bare ``open``/``print``/``input`` cannot be banned by ruff, so look for them here."""
    forbidden = {"open", "print", "input", "exec", "eval", "__import__"}
    for path in (ROOT / "bot" / "policy").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        calls = {
            node.func.id
            for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
        }
        assert not calls & forbidden, f"{path} calls {calls & forbidden}"
