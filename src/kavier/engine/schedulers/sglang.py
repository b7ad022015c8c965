"""SGLang's batching (0.5): prefill first, admission that reserves room for future decode tokens,
retraction of the requests that generated least (docs/engines.md, "SGLang").

Each step the partly prefilled request continues, then waiting requests join FCFS within the
chunk budget (``max_batched_tokens``: SGLang's ``chunked_prefill_size``) while the KV memory
holds, for each, its whole remaining prompt, its remaining output (at most 4,096 tokens) and a
page, beyond what the running requests are expected to still need (their remaining outputs,
each at most 4,096 tokens, times ``new_token_ratio``). If any prompt tokens were scheduled the
iteration prefills only; otherwise the running requests decode, retracting the one with the
fewest generated tokens (then the longest prompt) to the tail of the queue until every one has
room for its next token.

``new_token_ratio`` starts at 0.7 and falls by (0.7 - 0.098) / 600 per decode step to 0.098;
after a retraction it is reset to ``(generated + 20 n) / (max_new + 1)`` over the requests still
running (at most 1), and to 0.7 when the replica is idle. A request's ``max_new_tokens`` is its
output length (benchmark clients send the length they want, with EOS ignored).

Approximations: a decode stretch that the replica advances in closed form is not interrupted
when the falling ratio alone would let a waiting request in (only an arrival or a finish ends
it); the requests running and being prefilled both count in the running reservation.
"""

from __future__ import annotations

from typing import Any

from kavier.engine.schedulers.base import Batch, BatchScheduler, Chunk, ReplicaState, SchedulerSettings
from kavier.registry import SCHEDULERS

# sglang/srt/environ.py and new_token_ratio_tracker.py (0.5.23), with schedule_conservativeness 1
INIT_NEW_TOKEN_RATIO = 0.7
MIN_NEW_TOKEN_RATIO = INIT_NEW_TOKEN_RATIO * 0.14
NEW_TOKEN_RATIO_DECAY_STEPS = 600
CLIP_MAX_NEW_TOKENS = 4096  # SGLANG_CLIP_MAX_NEW_TOKENS_ESTIMATION
RETRACT_DECODE_STEPS = 20


@SCHEDULERS.register("sglang")
class SglangBatching(BatchScheduler):
    """SGLang's prefill-first batching with decode-token reservation (see the module docstring)."""

    def __init__(self, settings: SchedulerSettings) -> None:
        super().__init__(settings)
        self._ratio_at_reset = INIT_NEW_TOKEN_RATIO
        self._steps_at_reset = 0
        self._offset_tokens = 0.0  # the running requests' expected future tokens, this step

    def refusal(self, prompt_tokens: int) -> str | None:
        """SGLang runs a prompt longer than the budget alone, chunking on or off: never refused."""
        return None

    def new_token_ratio(self, replica: ReplicaState) -> float:
        """The share of their remaining outputs the running requests are expected to still need."""
        decay = (INIT_NEW_TOKEN_RATIO - MIN_NEW_TOKEN_RATIO) / NEW_TOKEN_RATIO_DECAY_STEPS
        steps = replica.decode_steps - self._steps_at_reset
        return max(MIN_NEW_TOKEN_RATIO, self._ratio_at_reset - steps * decay)

    def _remaining_output(self, replica: ReplicaState, seq: Any) -> int:
        return min(seq.n_out - replica.generated(seq), CLIP_MAX_NEW_TOKENS)

    def fits(self, replica: ReplicaState, seq: Any) -> bool:
        """Room for the whole remaining prompt, the remaining output (clipped) and a page beyond
        the running requests' reservation (and that of requests admitted earlier this step)."""
        bs = replica.block_size
        reserve = self._remaining_output(replica, seq) + bs
        need = (seq.prompt_len - seq.prefilled) + reserve
        # an idle replica takes the head whatever it asks (it fits the KV memory: the replica
        # refuses requests that never can), so that no request waits forever
        if replica.running and need >= replica.free_blocks * bs - self._offset_tokens:
            return False
        self._offset_tokens += reserve
        return True

    def form_batch(self, replica: ReplicaState) -> Batch:
        if not replica.running:  # idle: the ratio starts over
            self._ratio_at_reset, self._steps_at_reset = INIT_NEW_TOKEN_RATIO, replica.decode_steps
        chunks: list[Chunk] = []
        # the chunked request continues first
        budget = self.continue_prefills(replica, self.max_batched_tokens, chunks)
        if replica.waiting and budget > 0:
            ratio = self.new_token_ratio(replica)
            self._offset_tokens = ratio * sum(
                self._remaining_output(replica, s) for s in replica.running.values()
            )
            self.admit(replica, budget, not replica.running, chunks, has_decodes=False)
        if chunks:
            return False, chunks  # prefill first: the decodes wait
        replica.make_room_for_decode(reserve=False, fewest_generated=True)
        if replica.preempted_this_step:
            self._reset_after_retraction(replica)
        return replica.n_decoding > 0, chunks

    def _reset_after_retraction(self, replica: ReplicaState) -> None:
        running = list(replica.running.values())
        generated = sum(replica.generated(s) for s in running)
        max_new = sum(s.n_out for s in running)
        ratio = (generated + RETRACT_DECODE_STEPS * len(running)) / (max_new + 1)
        self._ratio_at_reset, self._steps_at_reset = min(1.0, ratio), replica.decode_steps
