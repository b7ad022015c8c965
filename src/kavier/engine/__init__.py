"""The engine: backends that simulate a scenario's cluster and emit events (:mod:`.backend`).

It imports nothing from the outputs (:mod:`kavier.observers`, :mod:`kavier.io`): what it
simulates reaches them only as events (:mod:`kavier.events`).
"""

from __future__ import annotations

from kavier.engine.backend import Backend
from kavier.scenario import Scenario


def backend_for(scenario: Scenario) -> Backend:
    """The backend that can time the scenario's performance model."""
    if scenario.perf_model == "thesis":
        from kavier.engine.sequential_backend import SequentialBackend

        return SequentialBackend()
    from kavier.engine.cluster import ClusterBackend

    return ClusterBackend()
