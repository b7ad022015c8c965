"""Kavier: cache-aware discrete-event simulation of LLM inference ecosystems.

``kavier.simulate(...)`` runs a scenario in memory and returns a :class:`Result` with the
per-request table, the time series and the summary.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["Result", "Scenario", "build_scenario", "run_to_folder", "simulate", "__version__"]

_LAZY = {
    "Result": "kavier.api",
    "simulate": "kavier.api",
    "run_to_folder": "kavier.api",
    "Scenario": "kavier.scenario",
    "build_scenario": "kavier.scenario",
}


def __getattr__(name: str) -> Any:
    """Import the public API on first use, so ``import kavier`` and the CLI start fast."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'kavier' has no attribute {name!r}")
