"""Arrival-rate scaling of a workload source (the scenario's ``rate_scale``).

``rate_scale = k`` divides every arrival time by ``k`` (so inter-arrival times too): the same
requests, in the same order, arrive ``k`` times as fast. Token counts, sessions and prefix ids are
untouched. Generators scale their rate parameter instead (see :func:`kavier.workload.build`),
which for Poisson and gamma arrivals is the same thing.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

from kavier.workload.chunk import RequestChunk
from kavier.workload.source import WorkloadSource


class ScaledArrivals:
    """A workload source whose arrival times (seconds) are divided by ``rate_scale`` (> 0)."""

    def __init__(self, source: WorkloadSource, rate_scale: float) -> None:
        if not rate_scale > 0:
            raise ValueError(f"rate_scale must be > 0, got {rate_scale!r}")
        self.source = source
        self.rate_scale = float(rate_scale)
        self.name = source.name

    @property
    def notes(self) -> list[str]:
        """The wrapped source's notes (e.g. a trace that had to be sorted)."""
        return getattr(self.source, "notes", [])

    def chunks(self, chunk_size: int) -> Iterator[RequestChunk]:
        """The wrapped source's chunks with ``arrival_s / rate_scale``."""
        for chunk in self.source.chunks(chunk_size):
            yield replace(chunk, arrival_s=chunk.arrival_s / self.rate_scale)


def scale_arrivals(source: WorkloadSource, rate_scale: float) -> WorkloadSource:
    """``source`` itself when ``rate_scale`` is 1 (outputs stay byte-identical), else wrapped."""
    return source if rate_scale == 1.0 else ScaledArrivals(source, rate_scale)
