"""``kavier sweep``: being built (issue 6)."""

from __future__ import annotations

import typer


def sweep() -> None:
    """Not built yet."""
    raise typer.Exit(2)
