"""Where the measurement files are: ``--data DIR``, ``KAVIER_DATA``, or ``shared/data`` beside the
working directory or the source tree.

The measurements are not shipped with Kavier (their licences and size keep them beside it); a
suite whose file is absent is skipped with a line saying which file and how to give it.
"""

from __future__ import annotations

import os
from pathlib import Path

DATA_VARIABLE = "KAVIER_DATA"


def candidates(given: str | Path | None = None) -> list[Path]:
    """Folders that may hold the measurements, most specific first."""
    found: list[Path] = []
    if given:
        found.append(Path(given))
    if os.environ.get(DATA_VARIABLE):
        found.append(Path(os.environ[DATA_VARIABLE]))
    here = Path.cwd()
    source = Path(__file__).resolve().parents[3]  # the repository of an editable install
    for base in (here, here.parent, source.parent):
        found.append(base / "shared" / "data")
    return found


def find(relative: str, given: str | Path | None = None) -> Path | None:
    """The first existing ``<folder>/<relative>`` (e.g. ``measurements/x.csv``), or None."""
    for folder in candidates(given):
        path = folder / relative
        if path.is_file():
            return path
    return None
