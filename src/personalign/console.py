"""The consoles every command prints to, and the one way a command fails."""

from __future__ import annotations

from typing import NoReturn

import typer
from rich.console import Console
from rich.markup import escape

# Wide enough for the leaderboard when output goes to a file or pipe (rich assumes 80).
console = Console(width=None if Console().is_terminal else 140)
err = Console(stderr=True)


def fail(message: str, code: int = 2) -> NoReturn:
    """Print ``error: message`` on stderr and exit with ``code`` (2 = bad input).

    The message is escaped (dataset text and paths may contain rich markup characters) and
    soft-wrapped: no line breaks inside paths and messages that users copy and grep.
    """
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, markup=True,
              soft_wrap=True)
    raise typer.Exit(code)
