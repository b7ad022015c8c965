"""Static batching: a batch is formed, runs to completion, and only then is the next formed."""

from __future__ import annotations

from typing import Any

from kavier.engine.schedulers.base import BatchScheduler, ReplicaState
from kavier.registry import SCHEDULERS


@SCHEDULERS.register("static")
class StaticBatching(BatchScheduler):
    """A batch is formed from the queue (up to ``max_num_seqs``, each request's whole KV
    reserved at admission) and runs to completion before the next is formed."""

    def may_admit(self, forming: bool) -> bool:
        return forming

    def fits(self, replica: ReplicaState, seq: Any) -> bool:
        reserve = -(-(seq.n_in + seq.n_out) // replica.block_size)  # the whole sequence
        return reserve - seq.shared - seq.blocks <= replica.free_blocks
