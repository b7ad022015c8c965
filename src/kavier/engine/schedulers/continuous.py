"""Continuous batching, as vLLM schedules: requests join and leave the batch every iteration."""

from __future__ import annotations

from typing import Any

from kavier.engine.schedulers.base import Batch, BatchScheduler, Chunk, ReplicaState, SchedulerSettings
from kavier.errors import ScenarioError
from kavier.registry import SCHEDULERS


@SCHEDULERS.register("continuous")
class ContinuousBatching(BatchScheduler):
    """vLLM-like continuous batching: every iteration each decoding sequence gets a token,
    prefills continue and waiting requests join FCFS while ``max_num_seqs``,
    ``max_batched_tokens`` and free KV blocks allow.

    With ``chunked_prefill`` a prompt may be split across iterations that also decode; without
    it, prefills go first in iterations of their own (vLLM v0's default) and a prompt is
    prefilled whole.
    """

    def __init__(self, settings: SchedulerSettings) -> None:
        super().__init__(settings)
        if settings.max_batched_tokens < settings.max_num_seqs:
            raise ScenarioError(
                f"max_batched_tokens ({settings.max_batched_tokens}) must be >= max_num_seqs "
                f"({settings.max_num_seqs}): every running sequence decodes one token per iteration"
            )

    def fits(self, replica: ReplicaState, seq: Any) -> bool:
        """With a watermark (vLLM v0), the whole remaining prompt must fit and leave that share of
        the blocks free; without one (vLLM v1), the first chunk's blocks suffice (fit_chunk)."""
        if not self.watermark_fraction:
            return True
        need = -(-(seq.prompt_len - seq.prefilled) // replica.block_size)
        return replica.free_blocks - need >= self.watermark_fraction * replica.total_blocks

    def form_batch(self, replica: ReplicaState) -> Batch:
        if self.chunked_prefill:
            return super().form_batch(replica)
        forming = not replica.running
        replica.make_room_for_decode(reserve=False)
        chunks: list[Chunk] = []
        if replica.waiting and (self.admit_after_preemption or not replica.preempted_this_step):
            self.admit(replica, self.max_batched_tokens, forming, chunks, has_decodes=False)
        if chunks:
            return False, chunks  # a prefill-only iteration
        return replica.n_decoding > 0, chunks
