"""``kavier plan``: being built (issue 6)."""

from __future__ import annotations

import typer


def plan() -> None:
    """Not built yet."""
    raise typer.Exit(2)
