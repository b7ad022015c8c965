"""Run a sweep: plan and validate every run, skip finished ones, execute the rest, gather results.

``prepare`` does everything that needs no simulation (parse, validate, decide what is left);
``execute`` runs what is left on a backend and writes ``runs.parquet``; ``run_sweep`` does both.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from kavier.sweep.collect import runs_table, write_runs_parquet
from kavier.sweep.runners import RunJob, RunOutcome, make_runner
from kavier.sweep.spec import PlannedRun, SweepSpec, load_sweep, plan_runs
from kavier.sweep.store import SweepLayout, sweep_manifest, write_json_atomic


@dataclass
class SweepPlan:
    """A validated sweep: its runs, which are already finished, and where results go."""

    spec: SweepSpec
    layout: SweepLayout
    runs: list[PlannedRun]
    todo: list[PlannedRun]
    finished: list[PlannedRun]

    def status(self, run: PlannedRun) -> str:
        """``done``, ``failed`` (an earlier attempt; it is retried) or ``todo``."""
        if run.run_id in {r.run_id for r in self.finished}:
            return "done"
        return "failed" if self.layout.read_failed(run.run_id) is not None else "todo"


@dataclass
class SweepReport:
    """What a sweep did: counts, failures (run id -> one-line error), wall time (s), output."""

    num_runs: int
    skipped: int
    ok: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    wall_s: float = 0.0
    parquet: Path | None = None
    interrupted: bool = False
    backend: str = "local"
    workers: int = 1

    @property
    def pending(self) -> int:
        """Runs neither finished before, nor finished or failed now."""
        return self.num_runs - self.skipped - len(self.ok) - len(self.failed)


class SweepInterrupted(Exception):  # noqa: N818 - raised for Ctrl-C, carries the report
    """Ctrl-C during a sweep: finished runs are kept; ``report`` says what was done."""

    def __init__(self, report: SweepReport) -> None:
        super().__init__("sweep interrupted")
        self.report = report


def prepare(sweep_file: str | Path, out: str | Path, *, force: bool = False) -> SweepPlan:
    """Parse and validate the sweep (one-line errors) and find the runs still to do."""
    spec = load_sweep(sweep_file)
    layout = SweepLayout(out)
    layout.check()
    runs = plan_runs(spec, layout.runs_dir)
    finished = [] if force else [r for r in runs if layout.is_finished(r)]
    done_ids = {r.run_id for r in finished}
    todo = [r for r in runs if r.run_id not in done_ids]
    return SweepPlan(spec=spec, layout=layout, runs=runs, todo=todo, finished=finished)


def default_workers(num_todo: int) -> int:
    """One worker per CPU, no more than there are runs to do (at least one)."""
    return max(1, min(os.cpu_count() or 1, num_todo))


def execute(
    plan: SweepPlan,
    *,
    workers: int | None = None,
    backend: str = "local",
    address: str | None = None,
    on_outcome: Callable[[RunOutcome], None] | None = None,
) -> SweepReport:
    """Run the plan's remaining runs, record failures, write ``sweep.json`` and ``runs.parquet``.

    Raises :class:`SweepInterrupted` on Ctrl-C after stopping the runs in flight and writing
    ``runs.parquet`` for the runs finished so far.
    """
    start = time.perf_counter()
    n_workers = workers if workers is not None else default_workers(len(plan.todo))
    n_workers = max(1, min(n_workers, len(plan.todo)))  # no idle workers to start
    report = SweepReport(
        num_runs=len(plan.runs), skipped=len(plan.finished), backend=backend, workers=n_workers
    )
    layout = plan.layout
    runner = make_runner(backend, n_workers, address) if plan.todo else None
    layout.prepare()
    with layout.locked():
        layout.clean_partials()
        write_json_atomic(layout.sweep_json, sweep_manifest(plan.spec, plan.runs))
        by_id = {r.run_id: r for r in plan.runs}
        jobs = [RunJob(r.index, r.run_id, r.scenario) for r in plan.todo]
        try:
            if runner is not None:
                for outcome in runner.run(jobs):
                    run = by_id[outcome.run_id]
                    if outcome.ok:
                        layout.clear_failure(run.run_id)
                        report.ok.append(run.run_id)
                    else:
                        layout.record_failure(run, outcome.error or "failed", outcome.detail)
                        report.failed[run.run_id] = outcome.error or "failed"
                    if on_outcome is not None:
                        on_outcome(outcome)
        except KeyboardInterrupt:
            if runner is not None:
                runner.abort()
            layout.clean_partials()
            report.interrupted = True
            report.parquet = _collect(plan, complete=False)
            report.wall_s = time.perf_counter() - start
            raise SweepInterrupted(report) from None
        report.parquet = _collect(plan)
    report.wall_s = time.perf_counter() - start
    return report


def _collect(plan: SweepPlan, *, complete: bool = True) -> Path:
    table = runs_table(plan.spec, plan.runs, plan.layout)
    return write_runs_parquet(table, plan.layout.parquet, num_runs=len(plan.runs), complete=complete)


def finished_runs(parquet: Path) -> int:
    """The runs ``runs.parquet`` holds as finished (status ok): what an interrupted sweep kept,
    counted from disk, so a run that finished while the backend was being stopped counts too."""
    import pyarrow.parquet as pq

    status = pq.read_table(parquet, columns=["status"]).column("status").to_pylist()
    return sum(1 for s in status if s == "ok")


def run_sweep(
    sweep_file: str | Path,
    out: str | Path,
    *,
    workers: int | None = None,
    backend: str = "local",
    address: str | None = None,
    force: bool = False,
    on_outcome: Callable[[RunOutcome], None] | None = None,
) -> SweepReport:
    """Plan, validate and execute a sweep file into ``out`` (see :mod:`kavier.sweep`)."""
    plan = prepare(sweep_file, out, force=force)
    return execute(plan, workers=workers, backend=backend, address=address, on_outcome=on_outcome)
