"""``kavier report``: being built (issue 6)."""

from __future__ import annotations

import typer


def report() -> None:
    """Not built yet."""
    raise typer.Exit(2)
