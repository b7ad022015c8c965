"""The OpenDC workload of a run: ``opendc/tasks.parquet`` (one task per request),
``opendc/fragments.parquet`` (its GPU use at the export rate) and, in an output folder, the
bundle (topology, experiment, carbon trace) that lets OpenDC replay it.

A request's GPU use over its service time follows the backend's
:attr:`~kavier.events.RunInfo.request_utilization`: the thesis's per-request profile (fragments
built on the sink's writer thread) or a batched request's share of its replica.
"""

from __future__ import annotations

from functools import partial

from kavier.events import BaseObserver, Records, RunInfo
from kavier.io.opendc import batched_fragment_table, fragment_tables, tasks_table
from kavier.io.sinks import NullSink, Sink
from kavier.perf.utilization import UtilizationProfile
from kavier.registry import OUTPUTS
from kavier.scenario import Scenario
from kavier.units import MIB

TASKS = "opendc/tasks"
FRAGMENTS = "opendc/fragments"


@OUTPUTS.register("opendc")
class OpenDcExport(BaseObserver):
    """``opendc/``: the OpenDC workload (tasks, fragments) and its replay bundle (``opendc = true``)."""

    @staticmethod
    def wanted(scenario: Scenario, sink: Sink) -> bool:
        return scenario.opendc and not isinstance(sink, NullSink)  # a discarded run writes none

    def __init__(self, scenario: Scenario, sink: Sink) -> None:
        self.scenario = scenario
        self.sink = sink
        self.start_epoch_ms = int(round(scenario.start_time.timestamp() * 1000))

    def on_start(self, info: RunInfo) -> None:
        gpu = info.replicas[0].gpu
        self.capacity_mhz = gpu.capacity_mhz
        self.memory_mib = int(gpu.memory_bytes // MIB)
        self.utilization = info.request_utilization

    def on_requests(self, records: Records) -> None:
        sink, rate = self.sink, self.scenario.export_rate
        sink.write(TASKS, tasks_table(records, self.start_epoch_ms, self.capacity_mhz, self.memory_mib))
        shape = self.utilization
        if isinstance(shape, UtilizationProfile):
            sink.write_from(FRAGMENTS, partial(fragment_tables, records, rate, shape, self.capacity_mhz))
        else:
            sink.write(FRAGMENTS, batched_fragment_table(records, rate, self.capacity_mhz, shape.busy))

    def on_end(self, end_s: float) -> None:
        if self.sink.folder is not None:
            from kavier.observers.opendc_bundle import write_opendc_bundle

            write_opendc_bundle(self.sink.folder, self.scenario, end_s)
