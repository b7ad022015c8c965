"""The results folder of a sweep: where every run, failure record and summary file lives.

::

    results/
      sweep.json                 axes, resolved base, mode, number of runs, the run list
      runs.parquet               one row per run (see kavier.sweep.collect)
      runs/<run_id>/             a normal kavier run folder (written atomically)
      runs/<run_id>.failed.json  the one-line error of a run that failed (retried on re-run)

A run is finished when its folder holds ``summary.json`` and its ``scenario.json`` equals the
planned scenario (so editing the sweep file's base re-runs what it changed).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kavier.errors import KavierError
from kavier.io.sinks import json_safe
from kavier.scenario import Scenario
from kavier.sweep.spec import PlannedRun, SweepSpec

IGNORED_SCENARIO_KEYS = ("output_folder",)


class SweepLayout:
    """Paths inside a sweep's results folder."""

    def __init__(self, out: str | Path) -> None:
        self.out = Path(out).absolute()
        self.runs_dir = self.out / "runs"
        self.sweep_json = self.out / "sweep.json"
        self.parquet = self.out / "runs.parquet"

    def folder(self, run_id: str) -> Path:
        """The run folder of one run."""
        return self.runs_dir / run_id

    def failed_path(self, run_id: str) -> Path:
        """The failure record of one run."""
        return self.runs_dir / f"{run_id}.failed.json"

    def check(self) -> None:
        """Refuse an output folder that holds other things than a sweep's results."""
        if self.out.exists():
            if not self.out.is_dir():
                raise KavierError(f"--out {self.out} is a file; choose a folder")
            known = {"sweep.json", "runs", "runs.parquet"}
            if any(self.out.iterdir()) and not any((self.out / k).exists() for k in known):
                raise KavierError(
                    f"--out {self.out} exists and is not a sweep results folder; "
                    "choose an empty or new folder"
                )

    def prepare(self) -> None:
        """Create the results folders."""
        try:
            self.runs_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise KavierError(f"cannot create {self.runs_dir}: {exc.strerror or exc}") from exc

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold an exclusive lock on the results folder (one sweep process writes into it)."""
        try:
            import fcntl
        except ImportError:  # not POSIX: no lock
            yield
            return
        with open(self.out / ".sweep.lock", "a+") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                raise KavierError(
                    f"another kavier sweep is writing into {self.out}; wait for it or choose another --out"
                ) from None
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def clean_partials(self) -> None:
        """Remove ``.<run>.partial-<pid>`` and ``.<run>.old-<pid>`` folders of killed runs."""
        if not self.runs_dir.is_dir():
            return
        for entry in self.runs_dir.iterdir():
            if entry.name.startswith(".") and (".partial-" in entry.name or ".old-" in entry.name):
                shutil.rmtree(entry, ignore_errors=True)

    def is_finished(self, run: PlannedRun) -> bool:
        """True when the run's folder is complete and was made from the same scenario."""
        folder = self.folder(run.run_id)
        if not (folder / "summary.json").is_file():
            return False
        try:
            stored = json.loads((folder / "scenario.json").read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return False
        return comparable_scenario(stored) == comparable_scenario(run.scenario.to_json_dict())

    def read_summary(self, run_id: str) -> dict[str, Any]:
        """The run's summary.json."""
        return json.loads((self.folder(run_id) / "summary.json").read_text(encoding="utf-8"))

    def read_failed(self, run_id: str) -> dict[str, Any] | None:
        """The run's failure record, or None."""
        path = self.failed_path(run_id)
        if not path.is_file():
            return None
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return {"error": "unreadable failure record"}

    def record_failure(self, run: PlannedRun, error: str, detail: str | None) -> None:
        """Write the failure record and drop any stale folder of the same run."""
        shutil.rmtree(self.folder(run.run_id), ignore_errors=True)
        record = {"run_id": run.run_id, "index": run.index, "params": run.params, "error": error}
        if detail:
            record["traceback"] = detail
        write_json_atomic(self.failed_path(run.run_id), record)

    def clear_failure(self, run_id: str) -> None:
        """Forget an earlier failure of a run that has now finished."""
        self.failed_path(run_id).unlink(missing_ok=True)


def comparable_scenario(data: dict[str, Any]) -> dict[str, Any]:
    """A scenario dict without the keys that do not change results (the output folder)."""
    return {k: v for k, v in json_safe(data).items() if k not in IGNORED_SCENARIO_KEYS}


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to a temporary file beside ``path`` and rename it into place."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(json_safe(data), indent=2, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def sweep_manifest(spec: SweepSpec, planned: list[PlannedRun]) -> dict[str, Any]:
    """The content of ``sweep.json``: axes (column names), resolved base, mode, runs."""
    from kavier.scenario import build_scenario

    try:
        base: dict[str, Any] = comparable_scenario(build_scenario(spec.base_file, spec.base).to_json_dict())
    except KavierError:
        base = dict(spec.base)
    return {
        "axes": spec.axis_names,
        "base": base,
        "mode": spec.mode,
        "num_runs": len(planned),
        "sweep_file": str(spec.path.absolute()),
        "runs": [{"index": r.index, "run_id": r.run_id, "params": r.params} for r in planned],
    }


def axis_value(run: PlannedRun, key: str) -> Any:
    """The value of an axis column for a run: as given, else the resolved scenario's value."""
    if key in run.params:
        return run.params[key]
    return _scenario_value(run.scenario, key)


def _scenario_value(scenario: Scenario, key: str) -> Any:
    return scenario.to_json_dict().get(key)
