"""The columnar request batch every workload reader and generator yields."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa


@dataclass
class RequestChunk:
    """A batch of requests in arrival order, as numpy columns (SI units).

    - ``request_id``: int64, global and increasing from 0 across chunks.
    - ``arrival_s``: float64 seconds relative to the first request of the workload (>= 0, sorted).
    - ``num_input_tokens`` / ``num_output_tokens``: int64 >= 0 (output >= 1 for generated work).
    - ``session_id`` / ``turn_id``: int64, -1 when the workload has no sessions.
    - ``input_tokens``: optional list of prompt token ids per request (pyarrow ListArray).
    - ``hash_ids``: optional list of prefix-block ids per request (Mooncake style), each id
      covering ``hash_block_tokens`` tokens; equal leading ids mean identical prefixes.
    - ``session_prefix``: True when a session's turns extend each other's prompts (each prompt
      = previous prompt + previous answer + new text), so turns of a session share a prefix.
    """

    request_id: np.ndarray
    arrival_s: np.ndarray
    num_input_tokens: np.ndarray
    num_output_tokens: np.ndarray
    session_id: np.ndarray
    turn_id: np.ndarray
    input_tokens: pa.ListArray | None = None
    hash_ids: pa.ListArray | None = None
    hash_block_tokens: int = 512
    session_prefix: bool = False

    def __len__(self) -> int:
        return int(self.request_id.shape[0])
