"""What every command shares: showing a SchoolgateError as one sentence, never a traceback."""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click

from bot.errors import SchoolgateError

F = TypeVar("F", bound=Callable[..., Any])

FILE = click.Path(exists=False, dir_okay=False, path_type=Path)


def reports_errors(command: F) -> F:
    """Show a SchoolgateError as one sentence on stderr with its exit code."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except SchoolgateError as error:
            click.echo(f"schoolgate: {error}", err=True)
            sys.exit(error.exit_code)

    return wrapper  # type: ignore[return-value]
