"""The request table (``requests.parquet``): one row per request, in the order they finish in
batches (sorted by request id within a batch), columns :data:`kavier.events.REQUEST_COLUMNS`."""

from __future__ import annotations

from kavier.events import REQUEST_COLUMNS, BaseObserver, Records
from kavier.io.columns import arrow_table
from kavier.io.sinks import Sink
from kavier.registry import OUTPUTS
from kavier.scenario import Scenario

OUTPUT = "requests"


@OUTPUTS.register("requests")
class RequestTable(BaseObserver):
    """``requests.parquet``: one row per request (every run)."""

    @staticmethod
    def wanted(scenario: Scenario, sink: Sink) -> bool:
        return True

    def __init__(self, scenario: Scenario, sink: Sink) -> None:
        self.sink = sink

    def on_requests(self, records: Records) -> None:
        self.sink.write(OUTPUT, arrow_table({name: records[name] for name in REQUEST_COLUMNS}))
