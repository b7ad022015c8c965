"""The command line's consoles and tables, made on first use: a quiet run never imports rich.

The consoles print text as it is (no rich markup): a message holding a user's path or a
literal ``[ray]`` is never rewritten. Kavier's own styling goes through :func:`styled`.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

_CONSOLES: dict[str, Console] = {}


def console(name: str) -> Console:
    """The stdout (``out``) or stderr (``err``) console; wide tables when piped (rich would
    otherwise wrap at 80 columns and split names)."""
    found = _CONSOLES.get(name)
    if found is None:
        from rich.console import Console

        if name == "out":
            found = Console(width=None if sys.stdout.isatty() else 200, markup=False)
        else:
            found = Console(stderr=True, width=None if sys.stderr.isatty() else 1000, markup=False)
        _CONSOLES[name] = found
    return found


def styled(*parts: str | tuple[str, str]) -> Text:
    """Text made of plain strings and ``(text, style)`` pairs (no markup is parsed)."""
    from rich.text import Text

    return Text.assemble(*parts)


def new_table(**kwargs: Any) -> Table:
    """A rich table (rich imported now)."""
    from rich.table import Table

    return Table(**kwargs)
