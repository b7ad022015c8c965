"""The Python entry points: ``simulate`` (in memory) and ``run_to_folder`` (the CLI's job)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from kavier.driver import run
from kavier.io.sinks import FolderSink, MemorySink
from kavier.scenario import Scenario, build_scenario
from kavier.workload.memory import ColumnsSource


@dataclass
class Result:
    """A run's outputs as objects: the summary, every output table by name (``requests``,
    ``timeseries``, ``opendc/tasks``, ``opendc/fragments``, ...), with the usual ones also as
    attributes, and every output that is a document rather than a table (``timeline.json``)
    as its text by file name in ``texts``."""

    scenario: Scenario
    summary: dict[str, Any]
    tables: dict[str, pa.Table] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    texts: dict[str, str] = field(default_factory=dict)

    @property
    def requests(self) -> pa.Table | None:
        """``requests.parquet``: one row per request."""
        return self.tables.get("requests")

    @property
    def timeseries(self) -> pa.Table | None:
        """``timeseries.parquet``: per replica and export interval."""
        return self.tables.get("timeseries")

    @property
    def opendc_tasks(self) -> pa.Table | None:
        """OpenDC tasks (with ``opendc=True``), else None."""
        return self.tables.get("opendc/tasks")

    @property
    def opendc_fragments(self) -> pa.Table | None:
        """OpenDC fragments (with ``opendc=True``), else None."""
        return self.tables.get("opendc/fragments")

    @property
    def timeline(self) -> dict[str, Any] | None:
        """``timeline.json`` (with ``timeline=True``) parsed: the Chrome/Perfetto trace, whose
        ``traceEvents`` list holds the events; else None."""
        text = self.texts.get("timeline.json")
        return None if text is None else json.loads(text)


def _scenario(scenario: Scenario | str | Path | None, overrides: dict[str, Any]) -> Scenario:
    if isinstance(scenario, Scenario):
        return scenario.with_values(overrides) if overrides else scenario
    return build_scenario(scenario, overrides)


def simulate(
    scenario: Scenario | str | Path | None = None,
    *,
    requests: Mapping[str, Any] | pa.Table | None = None,
    **overrides: Any,
) -> Result:
    """Run a scenario in memory, without touching the disk (besides reading a trace).

    ``scenario`` is a :class:`Scenario`, a path to a scenario file, or None for the built-in
    default; keyword arguments override its fields, e.g. ``simulate(preset="thesis",
    llm="Llama-3-8B", gpu="A10", trace="t.csv", kv_cache=False)``. ``requests`` gives the
    workload as columns instead (``num_input_tokens``, ``num_output_tokens``, optional
    ``arrival_s``, ``session_id``). OpenDC tables are kept only with ``opendc=True``.
    """
    if not isinstance(scenario, Scenario):
        overrides.setdefault("opendc", False)
    resolved = _scenario(scenario, overrides)
    sink = MemorySink()
    source = None
    if requests is not None:
        from kavier.workload.scale import scale_arrivals

        source = scale_arrivals(ColumnsSource(requests), resolved.rate_scale)
    summary = run(resolved, sink, source=source)
    return Result(scenario=resolved, summary=summary, tables=sink.tables(), texts=sink.texts())


def run_to_folder(
    scenario: Scenario,
    progress: Callable[[int, float], None] | None = None,
    after: Callable[[Path, dict[str, Any]], None] | None = None,
    force: bool = False,
) -> tuple[Path, dict[str, Any]]:
    """Run a scenario and write its outputs into ``scenario.output_folder`` atomically.

    ``after(tmp_folder, summary)`` may add files (plots) before the folder is moved into place.
    ``force`` replaces a previous run folder even when it holds files Kavier did not write.
    """
    sink = FolderSink(scenario.output_folder, force)
    try:
        summary = run(scenario, sink, progress)
        sink.close()
        if after is not None:
            after(sink.tmp, summary)
        folder = sink.commit(scenario.to_json_dict(), summary)
    except BaseException:
        sink.abort()
        raise
    return folder, summary
