"""Results folders for the report tests."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq


def bare_results(folder: Path) -> Path:
    """A runs.parquet with an axis and one metric, nothing else (no sweep.json, no run folders)."""
    folder.mkdir()
    table = pa.table(
        {
            "run_id": ["a", "b", "c"],
            "status": ["ok", "ok", "failed"],
            "error": [None, None, "boom"],
            "rate": [1.0, 2.0, 3.0],
            "ttft_p99_s": [0.1, float("nan"), None],
        }
    )
    pq.write_table(table, folder / "runs.parquet")
    return folder
