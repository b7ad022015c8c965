"""Read the runs a report is built from: a sweep results folder or one or more run folders.

A sweep results folder (written by ``kavier sweep``) holds ``runs.parquet`` (one row per run:
``run_id``, ``status``, ``error``, one column per sweep axis, then every ``summary.json`` key),
optionally ``sweep.json`` (``axes``, ``base``, ``mode``, ``num_runs``) and ``runs/<run_id>/``
with each run's own output folder. A run folder (written by ``kavier run``) holds
``summary.json`` and ``scenario.json``; several of them form the same table, with the scenario
keys that differ between them as the axes.

Everything here is plain Python values (rows are dicts), so the report needs no data-frame
library.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kavier.errors import KavierError

__all__ = [
    "CACHE_AXES",
    "LOAD_AXES",
    "SEED_AXIS",
    "ReportError",
    "RunSet",
    "load_runs",
    "is_number",
]

RUNS_FILE = "runs.parquet"
SWEEP_FILE = "sweep.json"
SUMMARY_FILE = "summary.json"
SCENARIO_FILE = "scenario.json"
RUNS_DIR = "runs"

SEED_AXIS = "seed"
# The first of these that is a sweep axis is the x axis of the load curves (offered load).
LOAD_AXES = ("rate", "rate_scale", "session_rate", "concurrency", "num_requests", "num_sessions")
# The first of these that is a sweep axis is the x axis of the cache-hit curves.
CACHE_AXES = (
    "cache_capacity_tokens",
    "cache_capacity_bytes",
    "prefix_cache_size",
    "cache_eviction",
    "prefix_cache",
    "prefix_len",
    "cache_scope",
    "prefix_cache_scope",
    "cache_tiers",
    "cache_tier_policy",
    "cache_ttl",
    "response_cache",
)
_BOOKKEEPING = ("run_id", "status", "error")
# Scenario keys that never count as axes when they are inferred (they differ by construction).
_NOT_AXES = frozenset({"output_folder", "name"})


class ReportError(KavierError):
    """The report's input is missing, empty or unreadable (shown as one line)."""


@dataclass
class RunSet:
    """The runs of one report.

    ``rows`` hold one dict per run with at least ``run_id``, ``status`` ("ok" or "failed") and
    ``error`` (str or None); ``axes`` are the swept scenario keys in sweep order; ``run_dirs``
    maps a run id to its output folder when one exists.
    """

    rows: list[dict[str, Any]]
    axes: list[str]
    source: str
    mode: str | None = None
    run_dirs: dict[str, Path] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    # A sweep's number of runs when its runs.parquet was written by an interrupted sweep
    # (None: complete, or not a sweep).
    planned_runs: int | None = None

    @property
    def ok_rows(self) -> list[dict[str, Any]]:
        return [r for r in self.rows if r.get("status") == "ok"]

    @property
    def failed_rows(self) -> list[dict[str, Any]]:
        return [r for r in self.rows if r.get("status") != "ok"]

    def columns(self) -> list[str]:
        """Every column that appears in some row, in first-seen order."""
        seen: dict[str, None] = {}
        for row in self.rows:
            for key in row:
                seen.setdefault(key, None)
        return list(seen)

    def values(self, axis: str, rows: Iterable[dict[str, Any]] | None = None) -> list[Any]:
        """Distinct values of ``axis`` (sorted: numbers numerically, then the rest as text)."""
        found: dict[Any, None] = {}
        for row in self.rows if rows is None else rows:
            found.setdefault(_hashable(row.get(axis)), None)
        return sort_values(list(found))

    def varying_axes(self) -> list[str]:
        """The axes that take more than one value across all runs, in sweep order."""
        return [a for a in self.axes if len(self.values(a)) > 1]


def is_number(value: Any) -> bool:
    """True for ints and floats (not bools), finite or not."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def finite(value: Any) -> bool:
    """True for a finite int or float (not a bool)."""
    return is_number(value) and math.isfinite(value)


def sort_values(values: Sequence[Any]) -> list[Any]:
    """Numbers ascending first, then everything else by its text (None last)."""
    nums = sorted(v for v in values if is_number(v) and not math.isnan(v))
    nan = [v for v in values if is_number(v) and math.isnan(v)]
    rest = sorted((v for v in values if not is_number(v) and v is not None), key=str)
    tail = [None] if any(v is None for v in values) else []
    return [*nums, *rest, *nan, *tail]


def _hashable(value: Any) -> Any:
    if isinstance(value, list | dict):
        return json.dumps(value, sort_keys=True)
    return value


# ------------------------------------------------------------------------------------ loading


def load_runs(paths: Sequence[str | Path]) -> RunSet:
    """Read a sweep results folder, or one or more run folders, into a :class:`RunSet`.

    Raises:
        ReportError: no path, a path that is not a folder, a folder with neither ``runs.parquet``
            nor ``summary.json``, an unreadable or empty ``runs.parquet``, or a mix of a sweep
            folder with other folders.
    """
    if not paths:
        raise ReportError("no results folder given: pass a sweep results folder or run folders")
    folders = [Path(p) for p in paths]
    for folder in folders:
        if not folder.exists():
            raise ReportError(f"{folder} does not exist: pass a sweep results folder or a run folder")
        if not folder.is_dir():
            raise ReportError(f"{folder} is not a folder: pass a sweep results folder or a run folder")
    sweeps = [f for f in folders if (f / RUNS_FILE).exists()]
    if sweeps:
        if len(folders) > 1:
            raise ReportError(
                f"{sweeps[0]} is a sweep results folder: report on it alone, not with other folders"
            )
        return _load_sweep(sweeps[0])
    for folder in folders:
        if not (folder / SUMMARY_FILE).exists():
            raise ReportError(
                f"{folder}/ has neither {RUNS_FILE} nor {SUMMARY_FILE}: "
                "pass the output folder of `kavier sweep` or `kavier run`"
            )
    return _load_run_folders(folders)


def _load_sweep(folder: Path) -> RunSet:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = folder / RUNS_FILE
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise ReportError(f"cannot read {path}: {_one_line(exc)}") from exc
    if table.num_rows == 0:
        raise ReportError(f"{path} holds no runs: did the sweep run?")
    from kavier.io.sweep_marks import sweep_progress

    complete, num_runs = sweep_progress(table.schema)
    rows = [_clean_row(r) for r in table.to_pylist()]
    for i, row in enumerate(rows):
        row["run_id"] = str(row["run_id"]) if row.get("run_id") is not None else f"run-{i:04d}"
        status = row.get("status")
        row["status"] = "ok" if status is None or str(status) == "ok" else str(status)
        row.setdefault("error", None)
    notes: list[str] = []
    mode: str | None = None
    axes: list[str] | None = None
    meta_path = folder / SWEEP_FILE
    if meta_path.exists():
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            if not isinstance(meta, dict):
                raise ValueError("not a JSON object")
            raw_axes = meta.get("axes")
            if isinstance(raw_axes, list):
                axes = [str(a) for a in raw_axes]
            mode = str(meta["mode"]) if meta.get("mode") is not None else None
        except (OSError, ValueError) as exc:
            notes.append(f"{SWEEP_FILE} is unreadable ({_one_line(exc)}); axes were inferred")
    columns = {k for r in rows for k in r}
    if axes is None:
        axes = _infer_axes(rows)
    else:
        missing = [a for a in axes if a not in columns]
        if missing:
            notes.append(f"axes {', '.join(missing)} named in {SWEEP_FILE} have no column in {RUNS_FILE}")
        axes = [a for a in axes if a in columns]
    run_dirs = {}
    runs_dir = folder / RUNS_DIR
    for row in rows:
        d = runs_dir / row["run_id"]
        if d.is_dir():
            run_dirs[row["run_id"]] = d
    planned = None
    if not complete:
        planned = num_runs if num_runs is not None else len(rows)
        notes.append(
            f"the sweep was interrupted: {sum(r['status'] == 'ok' for r in rows)} of {planned} runs "
            "finished; re-run kavier sweep to finish it"
        )
    return RunSet(
        rows=rows,
        axes=axes,
        source=str(folder),
        mode=mode,
        run_dirs=run_dirs,
        notes=notes,
        planned_runs=planned,
    )


def _load_run_folders(folders: list[Path]) -> RunSet:
    summaries: list[dict[str, Any]] = []
    scenarios: list[dict[str, Any]] = []
    for folder in folders:
        summaries.append(_read_json_object(folder / SUMMARY_FILE))
        scen_path = folder / SCENARIO_FILE
        scenarios.append(_read_json_object(scen_path) if scen_path.exists() else {})
    keys: dict[str, None] = {}
    for scen in scenarios:
        keys.update(dict.fromkeys(scen))
    axes = []
    for key in keys:
        if key in _NOT_AXES:
            continue
        distinct = {json.dumps(s.get(key), sort_keys=True, default=str) for s in scenarios}
        if len(distinct) > 1:
            axes.append(key)
    ids = _unique_ids(folders)
    rows: list[dict[str, Any]] = []
    for run_id, summary, scen in zip(ids, summaries, scenarios, strict=True):
        row: dict[str, Any] = {"run_id": run_id, "status": "ok", "error": None}
        for axis in axes:
            row[axis] = _jsonish(scen.get(axis))
        for key, value in summary.items():
            if key not in row:
                row[key] = _jsonish(value)
        rows.append(row)
    source = str(folders[0]) if len(folders) == 1 else f"{len(folders)} run folders"
    run_dirs = dict(zip(ids, folders, strict=True))
    return RunSet(rows=rows, axes=axes, source=source, mode=None, run_dirs=run_dirs)


def _unique_ids(folders: list[Path]) -> list[str]:
    names = [f.resolve().name or str(f) for f in folders]
    if len(set(names)) == len(names):
        return names
    return [str(f) for f in folders]


def _read_json_object(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ReportError(f"cannot read {path}: {_one_line(exc)}") from exc
    if not isinstance(data, dict):
        raise ReportError(f"{path} is not a JSON object: is this a kavier run folder?")
    return data


def _infer_axes(rows: list[dict[str, Any]]) -> list[str]:
    """Axes of a ``runs.parquet`` without ``sweep.json``: varying scenario keys before the metrics.

    The sweep writer puts the axis columns right after ``run_id, status, error`` and before the
    summary keys, so the axes are the varying columns of that leading block of scenario keys (the
    block ends at the first column that is not a scenario key, or at the summary's leading
    ``num_requests, simulated_time_s``). Summary keys that share a scenario key's name and follow
    from another axis (``gpu_idle_w`` varies with ``gpu``) are therefore not taken for axes.
    """
    try:
        from kavier.scenario import Scenario

        scenario_keys = set(Scenario.model_fields)
    except Exception:  # pragma: no cover - the scenario module always imports in practice
        scenario_keys = set()
    scenario_keys |= {"rate_scale"}
    columns: dict[str, None] = {}
    for row in rows:
        columns.update(dict.fromkeys(row))
    names = [c for c in columns if c not in _BOOKKEEPING]
    block: list[str] = []
    for i, col in enumerate(names):
        nxt = names[i + 1] if i + 1 < len(names) else None
        if col not in scenario_keys or (col == "num_requests" and nxt == "simulated_time_s"):
            break
        block.append(col)
    return [c for c in block if c not in _NOT_AXES and len({_hashable(r.get(c)) for r in rows}) > 1]


def _clean_row(row: dict[str, Any]) -> dict[str, Any]:
    return {k: _jsonish(v) for k, v in row.items()}


def _jsonish(value: Any) -> Any:
    """Lists and dicts become JSON text (as the sweep writer stores them); NaN floats stay."""
    if isinstance(value, list | dict | tuple):
        return json.dumps(value, sort_keys=True, default=str)
    return value


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
