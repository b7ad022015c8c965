"""``runs.parquet``: one row per run, the axes and every summary metric, for pandas/polars/DuckDB.

Columns, in order: ``run_id`` (string), ``status`` (``"ok"`` | ``"failed"``), ``error``
(string, null when ok), one column per axis named exactly as the axis key (values as given;
lists and tables as JSON strings), then every key of the runs' ``summary.json`` in first-seen
order (types kept; null where a run lacks the key or failed). A summary key that equals an
axis name or one of the first three columns is stored as ``summary_<key>``. Rows follow the
run index. The file's schema metadata says whether the sweep finished (``kavier.complete``:
``true``, or ``false`` after an interrupt) and how many runs it has (``kavier.num_runs``). Only
wall-clock columns (names containing ``wall``: ``wall_time_s``,
``events_per_wall_s``, ``simulated_s_per_wall_s``) differ between identical sweeps.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from kavier.io.sweep_marks import COMPLETE_KEY, NUM_RUNS_KEY
from kavier.sweep.spec import PlannedRun, SweepSpec
from kavier.sweep.store import SweepLayout, axis_value

FIXED_COLUMNS = ("run_id", "status", "error")


def is_wall_clock(column: str) -> bool:
    """True for columns that measure the machine, not the simulated system."""
    return "wall" in column


def _jsonish(value: Any) -> Any:
    if isinstance(value, list | tuple | dict):
        return json.dumps(value, sort_keys=True, default=str)
    return value


def _array(values: list[Any], null_type: pa.DataType) -> pa.Array:
    """An Arrow column keeping the values' types; mixed types fall back to strings."""
    values = [_jsonish(v) for v in values]
    if all(v is None for v in values):
        return pa.nulls(len(values), type=null_type)
    kinds = {type(v) for v in values if v is not None}
    if bool in kinds and kinds != {bool}:  # True/1 mixtures: keep what was written
        return pa.array([None if v is None else str(v) for v in values], type=pa.string())
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError):
        return pa.array([None if v is None else str(v) for v in values], type=pa.string())


def run_rows(
    spec: SweepSpec, planned: Sequence[PlannedRun], layout: SweepLayout
) -> list[tuple[PlannedRun, str, str | None, dict[str, Any]]]:
    """(run, status, error, summary) for every run that is finished or has failed, by index."""
    rows = []
    for run in sorted(planned, key=lambda r: r.index):
        if layout.is_finished(run):
            rows.append((run, "ok", None, layout.read_summary(run.run_id)))
            continue
        failed = layout.read_failed(run.run_id)
        if failed is not None:
            rows.append((run, "failed", str(failed.get("error", "failed")), {}))
    return rows


def runs_table(spec: SweepSpec, planned: Sequence[PlannedRun], layout: SweepLayout) -> pa.Table:
    """The table of ``runs.parquet`` for the runs finished or failed so far."""
    rows = run_rows(spec, planned, layout)
    axes = spec.axis_names
    taken = set(FIXED_COLUMNS) | set(axes)
    metric_keys: dict[str, None] = {}
    for _, _, _, summary in rows:
        for key in summary:
            metric_keys.setdefault(key, None)
    columns: dict[str, pa.Array] = {
        "run_id": pa.array([r.run_id for r, *_ in rows], type=pa.string()),
        "status": pa.array([s for _, s, _, _ in rows], type=pa.string()),
        "error": pa.array([e for _, _, e, _ in rows], type=pa.string()),
    }
    for axis in axes:
        columns[axis] = _array([axis_value(r, axis) for r, *_ in rows], pa.string())
    for key in metric_keys:
        name = f"summary_{key}" if key in taken else key
        columns[name] = _array([summary.get(key) for *_, summary in rows], pa.float64())
    return pa.table(columns)


def write_runs_parquet(
    table: pa.Table, path: Path, *, num_runs: int | None = None, complete: bool = True
) -> Path:
    """Write ``runs.parquet`` atomically (temporary file, then rename), marked complete or not
    and with the sweep's number of runs (default: the table's rows) in its schema metadata."""
    marks = {
        COMPLETE_KEY: b"true" if complete else b"false",
        NUM_RUNS_KEY: str(table.num_rows if num_runs is None else num_runs).encode(),
    }
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), **marks})
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    pq.write_table(table, tmp, compression="snappy")
    os.replace(tmp, path)
    return path


def comparable(table: pa.Table) -> pa.Table:
    """The table without wall-clock columns: equal for identical sweeps on any backend."""
    return table.select([c for c in table.column_names if not is_wall_clock(c)])
