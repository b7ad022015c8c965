"""Sweeps: a base scenario plus axes, run on a local process pool or Ray, gathered into parquet.

``run_sweep("sweep.toml", "results/")`` runs every combination into ``results/runs/<run_id>/``
and writes ``results/runs.parquet`` (one row per run) and ``results/sweep.json``.
"""

from kavier.sweep.driver import SweepInterrupted, SweepPlan, SweepReport, execute, prepare, run_sweep
from kavier.sweep.spec import load_sweep, plan_runs

__all__ = [
    "SweepInterrupted",
    "SweepPlan",
    "SweepReport",
    "execute",
    "load_sweep",
    "plan_runs",
    "prepare",
    "run_sweep",
]
