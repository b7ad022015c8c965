"""``kavier sweep SWEEP_FILE --out DIR``: run a grid of scenarios, resumable, into one parquet."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated, Any

import typer


def sweep(
    sweep_file: Annotated[
        Path, typer.Argument(help="sweep file (TOML/YAML/JSON): a base scenario and its axes")
    ],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="results folder (runs/, runs.parquet, sweep.json)")
    ],
    workers: Annotated[
        int | None,
        typer.Option("--workers", "-j", min=1, help="parallel runs; default: CPUs, at most the runs"),
    ] = None,
    backend: Annotated[str, typer.Option("--backend", help="local (process pool) | ray")] = "local",
    address: Annotated[
        str | None, typer.Option("--address", help="Ray cluster address; default: a local Ray instance")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="list the runs and their state; run nothing")
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="re-run finished runs too")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bar or table")] = False,
) -> None:
    """Run every combination of a sweep file's axes; re-running skips finished runs.

    Each run writes its own folder DIR/runs/<run_id>/ atomically; a failing run is recorded
    (DIR/runs/<run_id>.failed.json) while the others go on, and is retried on the next
    invocation. DIR/runs.parquet gets one row per run: the axes plus every summary metric.
    Exit code 1 when a run failed.
    """
    from kavier.commands.console import console as _console
    from kavier.errors import KavierError
    from kavier.sweep.driver import SweepInterrupted, default_workers, finished_runs, prepare
    from kavier.sweep.runners import BACKENDS

    err, console = _console("err"), _console("out")

    if backend not in BACKENDS:
        raise KavierError(f"--backend {backend!r}: use {' or '.join(BACKENDS)}")
    plan = prepare(sweep_file, out, force=force)
    n_workers = max(1, min(workers or default_workers(len(plan.todo)), len(plan.todo)))
    resume = shlex.join(["kavier", "sweep", str(sweep_file), "--out", str(out)])

    if dry_run:
        console.print(_plan_table(sweep_file, plan, force))
        console.print(
            f"{len(plan.finished)} finished, {len(plan.todo)} to run on {backend} with {n_workers} worker(s) "
            f"into {plan.layout.out}"
        )
        return
    try:
        report = _execute(plan, n_workers, backend, address, quiet, err)
    except SweepInterrupted as stop:
        done = finished_runs(stop.report.parquet)
        err.print(
            f"interrupted: {done} of {stop.report.num_runs} runs finished and kept in {plan.layout.runs_dir} "
            f"({stop.report.parquet} is marked incomplete); resume with: {resume}",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(130) from None
    if not quiet:
        console.print(_report_table(sweep_file, backend, report), highlight=False)
    if report.failed:
        for run_id, error in report.failed.items():
            print(f"failed: {run_id}: {error}", file=sys.stderr)
        print(
            f"{len(report.failed)} run(s) failed; fix and re-run `{resume}` to retry only them",
            file=sys.stderr,
        )
        raise typer.Exit(1)


def _plan_table(sweep_file: Path, plan: Any, force: bool) -> Any:
    """The runs of a sweep and their state (``--dry-run``)."""
    from rich.table import Table

    table = Table(title=f"{sweep_file}: {len(plan.runs)} runs ({plan.spec.mode})", title_justify="left")
    table.add_column("run_id", no_wrap=True)
    table.add_column("state")
    for run in plan.runs:
        table.add_row(run.run_id, "todo" if force else plan.status(run))
    return table


def _execute(plan: Any, workers: int, backend: str, address: str | None, quiet: bool, err: Any) -> Any:
    """Run the sweep's runs, with a progress bar unless ``quiet``; failures are printed as they come."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from kavier.commands.console import styled
    from kavier.sweep.driver import execute
    from kavier.sweep.runners import RunOutcome

    failures = 0

    def show(outcome: RunOutcome) -> None:
        nonlocal failures
        if not outcome.ok:
            failures += 1
            if not quiet:
                err.print(
                    styled(("failed", "red"), f" {outcome.run_id}: {outcome.error}"),
                    highlight=False,
                    soft_wrap=True,
                )

    if quiet or not plan.todo:
        return execute(plan, workers=workers, backend=backend, address=address, on_outcome=show)
    with Progress(
        TextColumn("[bold]sweep"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("runs, {task.fields[failed]} failed"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    ) as bar:
        task = bar.add_task("sweep", total=len(plan.runs), completed=len(plan.finished), failed=0)

        def progress(outcome: RunOutcome) -> None:
            show(outcome)
            bar.update(task, advance=1, failed=failures)

        return execute(plan, workers=workers, backend=backend, address=address, on_outcome=progress)


def _report_table(sweep_file: Path, backend: str, report: Any) -> Any:
    """What a sweep did: runs, successes, failures, skips, wall time and where the results are."""
    from rich.table import Table

    table = Table(
        title=f"Kavier sweep {sweep_file} ({backend}, {report.workers} worker(s))",
        title_justify="left",
        show_header=False,
    )
    table.add_column("", style="bold")
    table.add_column("", justify="right")
    table.add_row("runs", f"{report.num_runs:,}")
    table.add_row("ok (this time)", f"{len(report.ok):,}")
    table.add_row("failed", f"{len(report.failed):,}")
    table.add_row("skipped (finished before)", f"{report.skipped:,}")
    table.add_row("wall time", f"{report.wall_s:,.1f} s")
    table.add_row("results", str(report.parquet))
    return table
