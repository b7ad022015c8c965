"""Backends that execute a sweep's runs: in this process, a local process pool, or Ray tasks.

Every backend takes :class:`RunJob` objects and yields a :class:`RunOutcome` per job as it
finishes (in completion order). A job writes its own run folder through
:func:`kavier.api.run_to_folder` (atomically); the driver records failures. ``abort()`` stops
the runs still going (their temporary folders are removed by the driver afterwards).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
import traceback
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from kavier.errors import KavierError
from kavier.scenario import Scenario

BACKENDS = ("local", "ray")
RAY_HINT = "pip install -e '.[ray]'"


@dataclass(frozen=True)
class RunJob:
    """One run to execute: its position and id and the resolved scenario (with its output folder)."""

    index: int
    run_id: str
    scenario: Scenario


@dataclass(frozen=True)
class RunOutcome:
    """What happened to a run: ``ok``, else a one-line ``error`` (and a traceback for bugs)."""

    index: int
    run_id: str
    ok: bool
    error: str | None = None
    detail: str | None = None
    wall_s: float = 0.0  # s of wall-clock time the run took in its worker


def _plots_after(folder: Path, summary: dict[str, Any]) -> None:
    from kavier.report.plots import write_plots

    write_plots(folder)


def execute_run(job: RunJob) -> RunOutcome:
    """Run one scenario into its folder; errors become a failed outcome, never an exception.

    A :class:`KavierError` (bad input, model does not fit ...) is reported by its one-line
    message; any other exception by its type and message, with the traceback as detail.
    KeyboardInterrupt and SystemExit propagate.
    """
    from kavier.api import run_to_folder

    start = time.perf_counter()
    try:
        run_to_folder(job.scenario, after=_plots_after if job.scenario.plots else None)
    except KavierError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return RunOutcome(job.index, job.run_id, False, first, None, time.perf_counter() - start)
    except Exception as exc:  # noqa: BLE001 - a sweep records a crashing run and goes on
        text = str(exc).splitlines()[0] if str(exc) else ""
        error = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
        return RunOutcome(
            job.index, job.run_id, False, error, traceback.format_exc(), time.perf_counter() - start
        )
    return RunOutcome(job.index, job.run_id, True, None, None, time.perf_counter() - start)


class InProcessRunner:
    """Runs the jobs one after another in this process (``--workers 1``)."""

    name = "in-process"

    def run(self, jobs: Iterable[RunJob]) -> Iterator[RunOutcome]:
        for job in jobs:
            yield execute_run(job)

    def abort(self) -> None:
        """Nothing to stop: an interrupt ends the current run (its temporary folder is removed)."""


def _worker_init() -> None:
    # Ctrl-C is the driver's business: it stops the pool; workers must not die half-way on
    # their own and break the pool.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class LocalPoolRunner:
    """A pool of ``workers`` spawned processes; each imports kavier once and runs many jobs."""

    name = "local process pool"

    def __init__(self, workers: int) -> None:
        self.workers = max(1, workers)
        self._pool: ProcessPoolExecutor | None = None

    def run(self, jobs: Iterable[RunJob]) -> Iterator[RunOutcome]:
        pool = ProcessPoolExecutor(
            max_workers=self.workers, mp_context=get_context("spawn"), initializer=_worker_init
        )
        self._pool = pool
        try:
            futures: dict[Future[RunOutcome], RunJob] = {pool.submit(execute_run, j): j for j in jobs}
            pending = set(futures)
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in sorted(done, key=lambda f: futures[f].index):
                    job = futures[future]
                    try:
                        yield future.result()
                    except Exception as exc:  # noqa: BLE001 - e.g. a worker killed by the OS
                        msg = f"worker process failed ({type(exc).__name__}: {exc}); killed or out of memory?"
                        yield RunOutcome(job.index, job.run_id, False, msg.splitlines()[0])
        except BaseException:  # Ctrl-C or the consumer stopped: do not wait for running jobs
            self.abort()
            raise
        pool.shutdown(wait=True)
        self._pool = None

    def abort(self) -> None:
        """Cancel queued jobs and terminate the worker processes this pool started."""
        pool = self._pool
        if pool is None:
            return
        processes = list(getattr(pool, "_processes", {}).values())  # the pool's own workers
        pool.shutdown(wait=False, cancel_futures=True)
        for proc in processes:
            if proc.is_alive():
                proc.terminate()
        for proc in processes:
            proc.join(timeout=10)
        self._pool = None


class RayRunner:
    """Ray remote tasks of one CPU each, on a cluster (``address``) or a local Ray instance.

    Without an address a local instance with ``workers`` CPUs is started and shut down again.
    The results folder must be reachable by every Ray worker at the same path (a shared
    filesystem on a multi-node cluster).
    """

    name = "ray"

    def __init__(self, workers: int, address: str | None = None) -> None:
        try:
            import ray  # noqa: F401
        except ImportError:
            raise KavierError(f"--backend ray needs Ray; install it with {RAY_HINT}") from None
        self.workers = max(1, workers)
        self.address = address
        self._pending: list[Any] = []

    def run(self, jobs: Iterable[RunJob]) -> Iterator[RunOutcome]:
        import ray

        started = False
        if not ray.is_initialized():
            options: dict[str, Any] = {"log_to_driver": False, "logging_level": "ERROR"}
            if self.address:
                ray.init(address=self.address, **options)
            else:
                os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
                ray.init(num_cpus=self.workers, include_dashboard=False, **options)
            started = True
        try:
            task = ray.remote(num_cpus=1, max_retries=0)(execute_run)
            refs = {task.remote(job): job for job in jobs}
            self._pending = list(refs)
            while self._pending:
                done, self._pending = ray.wait(self._pending, num_returns=1)
                for ref in done:
                    job = refs[ref]
                    try:
                        yield ray.get(ref)
                    except Exception as exc:  # noqa: BLE001 - a worker died or the task was lost
                        first = str(exc).splitlines()[0] if str(exc) else ""
                        error = f"ray task failed: {type(exc).__name__}: {first}"
                        yield RunOutcome(job.index, job.run_id, False, error)
        except BaseException:
            self.abort()
            raise
        finally:
            self._pending = []
            if started:
                ray.shutdown()

    def abort(self) -> None:
        """Cancel the tasks not yet finished."""
        import ray

        for ref in list(self._pending):
            with contextlib.suppress(Exception):  # best effort while stopping
                ray.cancel(ref, force=True)


def make_runner(backend: str, workers: int, address: str | None = None) -> Any:
    """The runner for ``--backend`` (``local``: in-process for one worker, else a process pool)."""
    if backend == "local":
        if address:
            raise KavierError("--address is for --backend ray")
        return InProcessRunner() if workers <= 1 else LocalPoolRunner(workers)
    if backend == "ray":
        return RayRunner(workers, address)
    raise KavierError(f"--backend {backend!r}: use local or ray")
