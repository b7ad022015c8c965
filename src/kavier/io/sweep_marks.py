"""Whether a sweep's ``runs.parquet`` is complete: two keys of its schema metadata.

``kavier.complete`` is ``true``, or ``false`` when an interrupted sweep wrote the file;
``kavier.num_runs`` is the sweep's number of runs (finished or not).
"""

from __future__ import annotations

import pyarrow as pa

COMPLETE_KEY = b"kavier.complete"
NUM_RUNS_KEY = b"kavier.num_runs"


def sweep_progress(schema: pa.Schema) -> tuple[bool, int | None]:
    """(complete, number of runs) from a ``runs.parquet`` schema; a file without the marks counts
    as complete with an unknown number of runs."""
    meta = schema.metadata or {}
    complete = meta.get(COMPLETE_KEY, b"true") != b"false"
    raw = meta.get(NUM_RUNS_KEY)
    return complete, int(raw) if raw is not None and raw.isdigit() else None
