"""The public measurements shipped with Kavier: ``data/public/measurements.csv``,
``data/public/vllm_serving.csv``, ``data/public/xla_collectives.csv`` and
``data/public/xla_gemm.csv``.

One row per metric of one measured configuration, every value read from the source its
``source_id`` names (``data/public/SOURCES.md`` cites each source and says what was measured and
how). Unlike the measurement files beside the repository (:mod:`kavier.validate.data`), this file
ships in the package, so the suites reading it always run.
"""

from __future__ import annotations

import csv
from functools import cache
from pathlib import Path

PUBLIC = Path(__file__).resolve().parent / "data" / "public"
MEASUREMENTS = PUBLIC / "measurements.csv"


VLLM_SERVING = PUBLIC / "vllm_serving.csv"


@cache
def _rows_of(path: Path) -> tuple[dict[str, str], ...]:
    with path.open(newline="", encoding="utf-8") as fh:
        return tuple(csv.DictReader(fh))


def shipped_rows(path: Path = MEASUREMENTS) -> list[dict[str, str]]:
    """A shipped file's rows as text, each a fresh dict (the file is read once per process)."""
    return [dict(r) for r in _rows_of(path)]


def public_rows(source_id: str | None = None) -> list[dict[str, str]]:
    """The rows of ``measurements.csv`` as text (each a fresh dict), only ``source_id``'s when
    given."""
    return [r for r in shipped_rows() if source_id is None or r["source_id"] == source_id]
