"""``KAVIER_MAX_REQUESTS``: cap every workload at its first N requests (for quick checks).

When the environment variable is set to a positive integer N, every run (``kavier run``,
``sweep``, ``plan``, ``kavier.simulate``) simulates only the first N requests, in arrival order,
of its trace or generator (closed-loop clients stop after N requests in all) and warns that it
did. Unset, workloads are untouched and outputs byte-identical. The README's test sets it so that
every command block of the README runs as printed, in seconds; it is not a scenario key, so it
is not recorded in ``scenario.json``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

from kavier.errors import WorkloadError
from kavier.workload.chunk import RequestChunk
from kavier.workload.source import WorkloadSource, slice_chunk

MAX_REQUESTS_VARIABLE = "KAVIER_MAX_REQUESTS"


def max_requests() -> int | None:
    """The cap from ``KAVIER_MAX_REQUESTS`` (None when unset or empty; one-line error when bad)."""
    value = os.environ.get(MAX_REQUESTS_VARIABLE, "").strip()
    if not value:
        return None
    if not value.isdigit() or int(value) < 1:
        raise WorkloadError(
            f"{MAX_REQUESTS_VARIABLE}={value!r}: give a positive whole number of requests, or unset it"
        )
    cap = int(value)
    global _told
    if not _told:
        note = f"note: {MAX_REQUESTS_VARIABLE}={cap}: simulating at most the first {cap} requests"
        print(note, file=sys.stderr)
        _told = True
    return cap


_told = False  # the note is printed once per process


class FirstRequests:
    """The first ``limit`` requests of a workload source (chunks cut at the limit)."""

    def __init__(self, source: WorkloadSource, limit: int) -> None:
        self.source = source
        self.limit = limit
        self.name = source.name

    @property
    def notes(self) -> list[str]:
        return getattr(self.source, "notes", [])

    def chunks(self, chunk_size: int) -> Iterator[RequestChunk]:
        left = self.limit
        for chunk in self.source.chunks(chunk_size):
            if left <= 0:
                return
            if len(chunk) > left:
                chunk = slice_chunk(chunk, 0, left)
            left -= len(chunk)
            yield chunk


def limit_requests(source: WorkloadSource) -> WorkloadSource:
    """``source`` itself unless ``KAVIER_MAX_REQUESTS`` is set, else its first N requests."""
    cap = max_requests()
    return source if cap is None else FirstRequests(source, cap)
