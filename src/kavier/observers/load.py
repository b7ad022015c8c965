"""The run's load state (``stable``, ``backlogged`` or ``overloaded``) and its queue growth:
summary keys only, no file (see :mod:`kavier.load` for the classification).

It keeps each request's arrival and start (arrival + ``queue_s``) times and replica (20 bytes per request) and
classifies the run at the end.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from kavier.events import BaseObserver, Records, RunInfo
from kavier.io.sinks import Sink
from kavier.load import classify_load
from kavier.registry import OUTPUTS
from kavier.scenario import Scenario


@OUTPUTS.register("load")
class LoadObserver(BaseObserver):
    """``load_state`` and the queue growth keys of the summary, from the request records."""

    @staticmethod
    def wanted(scenario: Scenario, sink: Sink) -> bool:
        return True

    def __init__(self, scenario: Scenario, sink: Sink) -> None:
        self.arrival: list[np.ndarray] = []
        self.start: list[np.ndarray] = []
        self.replica: list[np.ndarray] = []
        self.num_replicas: int | None = None

    def on_start(self, info: RunInfo) -> None:
        self.num_replicas = len(info.replicas)

    def on_requests(self, records: Records) -> None:
        arrival = np.asarray(records["arrival_s"], dtype=np.float64)
        self.arrival.append(arrival)
        self.start.append(arrival + records["queue_s"])  # as kavier plan does from requests.parquet
        self.replica.append(np.asarray(records["replica"], dtype=np.int32))

    def summary(self) -> dict[str, Any]:
        """``load_state``, ``queue_growth_requests_per_s`` and the rest of the load keys."""
        cat = (lambda parts: np.concatenate(parts)) if self.arrival else (lambda parts: np.zeros(0))
        report = classify_load(cat(self.arrival), cat(self.start), cat(self.replica), self.num_replicas)
        return report.summary()
