"""Backends: the ways of simulating a scenario's cluster, behind one protocol.

A backend reads the workload, simulates and emits events to an observer
(:mod:`kavier.events`); the driver (:mod:`kavier.driver`) gives every backend the same
observers and builds the same summary from what they report. Two backends exist, chosen by the
scenario's performance model, because that model decides what can be timed:

- ``sequential`` (:mod:`kavier.engine.sequential_backend`): the thesis's per-request model
  times a whole request at once, so GPUs run one request at a time and every request's start
  and finish follow in closed form (the thesis preset; ``perf_model = "thesis"``);
- ``serving`` (:mod:`kavier.engine.cluster`): the roofline model times one iteration of a
  batch, so replicas run scheduler-formed batches in an event loop behind a router
  (``perf_model = "serving"``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from kavier.events import Observer, RunInfo
from kavier.metrics import SummaryAccumulator
from kavier.scenario import Scenario
from kavier.workload.source import WorkloadSource

# progress(requests_done, simulated_s), called now and then while a run goes on.
Progress = Callable[[int, float], None]


@dataclass
class BackendRun:
    """What a backend reports when it is done: the run's replicas and its own summary keys."""

    info: RunInfo
    summary: dict[str, Any]


class Backend(Protocol):
    """Simulates a scenario, emitting events to ``observer``.

    Contract: it calls ``observer.on_start`` once before any other event and ``observer.on_end``
    once at the end (with the last request's finish); every request of the workload reaches
    ``observer.on_requests`` exactly once; ``totals`` is the request-metrics observer among the
    observers, which the backend may read for its summary keys at the end.
    """

    def run(
        self,
        scenario: Scenario,
        source: WorkloadSource | None,
        observer: Observer,
        totals: SummaryAccumulator,
        progress: Progress | None,
    ) -> BackendRun: ...
