"""An in-memory workload: requests given as columns (a dict of arrays or an Arrow table)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import pyarrow as pa

from kavier.errors import WorkloadError
from kavier.workload.chunk import RequestChunk


class ColumnsSource:
    """Requests from columns ``num_input_tokens``, ``num_output_tokens`` and optionally
    ``arrival_s`` (seconds, default 0), ``session_id``, ``turn_id``, ``input_tokens`` (token-id
    lists) and ``hash_ids`` (Mooncake block-id lists of ``hash_block_tokens`` = 512 tokens each);
    sorted by arrival."""

    name = "in-memory"

    def __init__(self, columns: Mapping[str, Any] | pa.Table) -> None:
        if isinstance(columns, pa.Table):
            columns = {name: columns.column(name).to_numpy() for name in columns.column_names}
        for required in ("num_input_tokens", "num_output_tokens"):
            if required not in columns:
                raise WorkloadError(f"in-memory workload: missing column {required!r}")
        n_in = np.asarray(columns["num_input_tokens"])
        n_out = np.asarray(columns["num_output_tokens"])
        n = n_in.shape[0]
        arrival = np.asarray(columns.get("arrival_s", np.zeros(n)), dtype=np.float64)
        for name, values in (("num_input_tokens", n_in), ("num_output_tokens", n_out)):
            values = values.astype(np.float64)
            bad = np.flatnonzero(~np.isfinite(values) | (values < 0) | (values != np.floor(values)))
            if bad.size:
                raise WorkloadError(
                    f"in-memory workload: row {bad[0] + 1}: {name} = {values[bad[0]]!r}; "
                    "token counts must be whole numbers >= 0"
                )
        if not np.all(np.isfinite(arrival)):
            raise WorkloadError("in-memory workload: arrival_s holds NaN or inf")
        order = np.argsort(arrival, kind="stable")
        self._arrival = arrival[order] - (arrival.min() if n else 0.0)
        self._n_in = n_in.astype(np.int64)[order]
        self._n_out = n_out.astype(np.int64)[order]
        self._session = np.asarray(columns.get("session_id", np.full(n, -1)), dtype=np.int64)[order]
        self._turn = np.asarray(columns.get("turn_id", np.full(n, -1)), dtype=np.int64)[order]
        self._lists: dict[str, list | None] = {}
        for name in ("input_tokens", "hash_ids"):
            values = columns.get(name)
            self._lists[name] = None if values is None else [list(values[i]) for i in order.tolist()]
        self._session_prefix = "session_id" in columns and all(v is None for v in self._lists.values())

    def chunks(self, chunk_size: int) -> Iterator[RequestChunk]:
        """Yield the requests in chunks of ``chunk_size``."""
        n = self._n_in.shape[0]
        for a in range(0, n, chunk_size):
            b = min(a + chunk_size, n)
            yield RequestChunk(
                request_id=np.arange(a, b, dtype=np.int64),
                arrival_s=self._arrival[a:b],
                num_input_tokens=self._n_in[a:b],
                num_output_tokens=self._n_out[a:b],
                session_id=self._session[a:b],
                turn_id=self._turn[a:b],
                input_tokens=self._list_array("input_tokens", a, b),
                hash_ids=self._list_array("hash_ids", a, b),
                session_prefix=self._session_prefix,
            )

    def _list_array(self, name: str, a: int, b: int) -> pa.ListArray | None:
        values = self._lists[name]
        return None if values is None else pa.array(values[a:b], type=pa.list_(pa.int64()))
