"""The one simulation pipeline: workload -> backend -> observers -> summary.

:func:`run` picks the backend the scenario's performance model needs
(:func:`backend_for`), gives it the same observers whatever the backend
(the request metrics, then the outputs of :func:`output_observers`), and builds the summary
with :mod:`kavier.summary`. With ``baseline`` the scenario runs a second time without its
prefix and response caches (outputs discarded) and the summary gains the savings.
"""

from __future__ import annotations

import time
from typing import Any

from kavier.engine.backend import Backend, Progress
from kavier.errors import ScenarioError, warn
from kavier.events import Observer, Observers
from kavier.io.sinks import NullSink, Sink
from kavier.metrics import SummaryAccumulator
from kavier.observers.context_window import ContextWindowCheck, context_limit
from kavier.registry import OUTPUTS
from kavier.scenario import Scenario
from kavier.summary import assemble, ordered, rate, with_bands, with_baseline
from kavier.workload.source import WorkloadSource


def backend_for(scenario: Scenario) -> Backend:
    """The backend that can time the scenario's performance model: the thesis model times whole
    requests (the sequential backend), the roofline model one iteration of a batch (the cluster)."""
    if scenario.perf_model == "thesis":
        from kavier.engine.sequential_backend import SequentialBackend

        return SequentialBackend()
    from kavier.engine.cluster import ClusterBackend

    return ClusterBackend()


def output_observers(scenario: Scenario, sink: Sink) -> list[Observer]:
    """The outputs a run writes into ``sink``: every registered output that wants this run
    (requests, time series with energy, OpenDC, and any a plugin registers)."""
    return [cls(scenario, sink) for _, cls in OUTPUTS.items() if cls.wanted(scenario, sink)]


def run(
    scenario: Scenario,
    sink: Sink,
    progress: Progress | None = None,
    source: WorkloadSource | None = None,
) -> dict[str, Any]:
    """Simulate ``scenario``, streaming its outputs into ``sink``; returns the summary.

    ``progress(requests_done, simulated_s)`` is called now and then. ``source`` replaces the
    scenario's workload (e.g. requests given in memory).
    """
    summary = run_once(scenario, sink, progress, source)
    if scenario.baseline:
        plain = scenario.model_copy(
            update={"prefix_cache": "off", "response_cache": False, "baseline": False}
        )
        base = run_once(plain, NullSink(), None, source)
        summary.update(with_baseline(summary, base))
        summary["wall_time_s"] += base["wall_time_s"]
    return summary


def run_once(
    scenario: Scenario,
    sink: Sink,
    progress: Progress | None = None,
    source: WorkloadSource | None = None,
) -> dict[str, Any]:
    """One simulation of ``scenario`` (no baseline); the summary in :data:`SUMMARY_KEYS` order."""
    wall_start = time.perf_counter()
    backend = backend_for(scenario)
    totals = SummaryAccumulator()
    outputs = output_observers(scenario, sink)
    checks: list[Observer] = []
    limit = context_limit(scenario)
    if limit is not None:
        checks.append(ContextWindowCheck(*limit))
    done = backend.run(scenario, source, Observers([totals, *outputs, *checks]), totals, progress)
    rejected = (done.summary or {}).get("rejected_requests") or 0
    if totals.num_requests == 0:
        if rejected:
            raise ScenarioError(
                f"all {rejected} requests hold more than --max-model-len {scenario.max_model_len:,} "
                "tokens (prompt + output) and were rejected; raise --max-model-len"
            )
        raise ScenarioError("the workload holds no requests; check the trace or generator settings")
    if rejected:
        warn(
            f"{rejected} of {rejected + totals.num_requests} requests hold more than --max-model-len "
            f"{scenario.max_model_len:,} tokens (prompt + output) and were rejected before scheduling, "
            "as vLLM's server answers them (HTTP 400); they are not in requests.parquet "
            "(summary: rejected_requests)"
        )
    observed: dict[str, Any] = {}
    for observer in outputs:
        observed.update(observer.summary())
    result = assemble(scenario, totals, done.info, done.summary, observed)
    if result.get("engine"):
        from kavier.registry import ENGINES

        result.update(with_bands(result, ENGINES.get(result["engine"]).profile_family))
    wall = time.perf_counter() - wall_start
    result["wall_time_s"] = wall
    events = result.get("engine_events")
    if events is not None:
        result["events_per_wall_s"] = rate(events, wall)
        result["simulated_s_per_wall_s"] = rate(result["simulated_time_s"], wall)
    return ordered(result)
