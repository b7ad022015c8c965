"""What a scheduler is: a policy that forms a replica's next batch from a view of the replica.

A scheduler is a class registered in :data:`kavier.registry.SCHEDULERS`, built once per replica
as ``cls(settings)`` from the scenario's :class:`SchedulerSettings`. Each time the replica is
about to run, it calls :meth:`Scheduler.form_batch` with itself as a :class:`ReplicaState`; the
scheduler decides which waiting requests to admit, which prefill chunks to run and whether the
decoding sequences take a step, using only the replica operations listed in
:class:`ReplicaState` (which keep the KV blocks consistent). The replica then runs that
iteration, or advances a decode-only stretch in closed form, and keeps the counters.

Contract (checked by the contract tests for every registered scheduler):

- the batch never holds more than ``max_running`` sequences nor more KV blocks than the replica
  has (the replica's operations refuse what does not fit);
- a request is admitted at most once per stay in the queue, in an order the policy defines;
- the same inputs give the same batches (no hidden randomness);
- every request eventually finishes (a batch is formed whenever work is waiting and memory
  allows).

:class:`BatchScheduler` holds the admission loop that continuous and static batching share; a
variant overrides its two hooks, :meth:`BatchScheduler.may_admit` (may requests join now?) and
:meth:`BatchScheduler.fits` (is there KV memory for this request?), and, where its iterations
differ, :meth:`BatchScheduler.form_batch`.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any, Protocol

# A prefill chunk: the sequence and how many of its prompt tokens the iteration processes.
Chunk = tuple[Any, int]


@dataclass(frozen=True)
class SchedulerSettings:
    """A replica's scheduler knobs (the engine preset resolves those a scenario leaves unset):
    ``max_num_seqs`` (sequences per batch), ``max_batched_tokens`` (tokens per iteration),
    ``chunked_prefill`` (split prompts across iterations), ``admit_after_preemption`` (may
    waiting requests join in a step that preempted? vLLM v1: no) and ``watermark_fraction``
    (the share of KV blocks an admission must leave free; vLLM v0: 0.01)."""

    max_num_seqs: int = 256
    max_batched_tokens: int = 8192
    chunked_prefill: bool = True
    admit_after_preemption: bool = True
    watermark_fraction: float = 0.0


# An iteration to run: whether the decoding sequences take a step, and the prefill chunks (a
# plain tuple: one is made per iteration, and a tuple costs a fifth of a dataclass to make).
Batch = tuple[bool, list[Chunk]]


class ReplicaState(Protocol):
    """The replica as a scheduler sees it (:class:`kavier.engine.replica.ServingReplica`).

    Attributes are read-only for the scheduler; it changes the replica only through the methods.
    """

    waiting: deque[Any]  # queued requests, FCFS (preempted ones go back to the front)
    running: dict[int, Any]  # admitted requests in admission order (the last is the newest)
    prefilling: list[Any]  # running requests with prompt tokens left to prefill
    n_decoding: int  # running requests that decode this iteration
    free_blocks: int  # KV blocks not in use (cached-but-evictable ones count as free)
    total_blocks: int  # KV blocks of the replica
    block_size: int  # tokens per KV block
    cache: Any  # the block prefix cache, or None

    preempted_this_step: bool  # make_room_for_decode preempted a request in this step

    decode_steps: int  # decode steps the replica has taken

    def make_room_for_decode(self, reserve: bool, fewest_generated: bool = False) -> int:
        """Preempt the newest requests until every decoding sequence has a block for its token;
        with ``reserve``, set those blocks aside (before prefills take any) and return how many.
        With ``fewest_generated`` the victims are SGLang's (fewest generated tokens, then the
        longest prompt) and go to the tail of the queue instead of its front."""

    def generated(self, seq: Any) -> int:
        """Output tokens ``seq`` has generated so far."""

    def release_blocks(self, blocks: int) -> None:
        """Give back blocks set aside by :meth:`make_room_for_decode`."""

    def look_up(self, seq: Any) -> None:
        """Match the prefix cache for a request about to be admitted (pins its hits)."""

    def undo_look_up(self, seq: Any) -> None:
        """The request is not admitted after all: release what its lookup pinned."""

    def fit_chunk(self, seq: Any, tokens: int) -> int:
        """Allocate KV blocks for a prefill chunk of ``tokens``; returns the tokens that fit."""

    def chunk_fits(self, seq: Any, tokens: int) -> bool:
        """Are there free KV blocks for the whole chunk of ``tokens`` (nothing allocated)?"""

    def admit(self, seq: Any) -> None:
        """Move a queued request (normally the head of the queue) into the batch."""


class Scheduler(Protocol):
    """Forms each iteration's batch (see the module docstring).

    Optional: ``refusal(prompt_tokens: int) -> str | None``, why the policy can never run a
    prompt of that many new tokens (the end of a one-line error), or None; the replica asks it
    as each request arrives, so that such a request stops the run at once instead of waiting
    forever (:meth:`BatchScheduler.refusal`). A scheduler without it runs every prompt.
    """

    max_running: int

    def __init__(self, settings: SchedulerSettings) -> None: ...

    def form_batch(self, replica: ReplicaState) -> Batch: ...


class BatchScheduler:
    """Iteration-level batching: each iteration every decoding sequence gets a token, prefills
    continue, and waiting requests join FCFS within the token budget and the free KV memory."""

    # Hooks a variant overrides.
    def may_admit(self, forming: bool) -> bool:
        """May waiting requests join now? ``forming``: nothing was running when the batch began."""
        return True

    def fits(self, replica: ReplicaState, seq: Any) -> bool:
        """Is there KV memory to admit ``seq`` (beyond what its first chunk takes)?"""
        return True

    def refusal(self, prompt_tokens: int) -> str | None:
        """Without chunked prefill a prompt is prefilled whole in one iteration, so one longer
        than the token budget can never run (vLLM refuses such prompts): the reason, else None."""
        if self.chunked_prefill or prompt_tokens <= self.max_batched_tokens:
            return None
        return (
            f"an iteration holds {self.max_batched_tokens} tokens and chunked prefill is off (vLLM "
            "refuses such prompts); raise --max-batched-tokens to the longest prompt or use "
            "--chunked-prefill on"
        )

    def __init__(self, settings: SchedulerSettings) -> None:
        self.max_running = settings.max_num_seqs
        self.max_batched_tokens = settings.max_batched_tokens
        self.chunked_prefill = settings.chunked_prefill
        self.admit_after_preemption = settings.admit_after_preemption
        self.watermark_fraction = settings.watermark_fraction

    def form_batch(self, replica: ReplicaState) -> Batch:
        """Decode steps first, then the running prefills' chunks, then new requests FCFS."""
        forming = not replica.running
        reserved = replica.make_room_for_decode(reserve=True)
        decode_now = replica.n_decoding > 0
        chunks: list[Chunk] = []
        budget = self.max_batched_tokens - replica.n_decoding
        if replica.prefilling:
            budget = self.continue_prefills(replica, budget, chunks)
        if replica.waiting and (self.admit_after_preemption or not replica.preempted_this_step):
            self.admit(replica, budget, forming, chunks, decode_now)
        if reserved:
            replica.release_blocks(reserved)  # taken again when the iteration is applied
        return decode_now, chunks

    def continue_prefills(self, replica: ReplicaState, budget: int, chunks: list[Chunk]) -> int:
        """The running prefills' next chunks, in admission order, into ``chunks`` within
        ``budget`` tokens (each shrunk to the free KV blocks); returns the budget left."""
        fit_chunk = replica.fit_chunk
        for s in replica.prefilling:
            if budget <= 0:
                break
            chunk = fit_chunk(s, min(s.prompt_len - s.prefilled, budget))
            if chunk > 0:
                chunks.append((s, chunk))
                budget -= chunk
        return budget

    def admit(
        self, replica: ReplicaState, budget: int, forming: bool, chunks: list[Chunk], has_decodes: bool
    ) -> int:
        """Admit waiting requests FCFS into ``chunks`` within ``budget`` tokens; returns the rest.

        Without chunked prefill a prompt is prefilled whole: it joins only if it fits the budget,
        or alone (no other chunk, no decodes) when it is longer than the budget (a preempted
        request's recompute, its prompt and the tokens it generated), and only when the free KV
        blocks hold all of it (vLLM v0's ``can_allocate``); a prompt shrunk to the free blocks
        would be preempted again before it ever emitted a token.
        """
        waiting, running = replica.waiting, replica.running
        chunked = self.chunked_prefill
        cache = replica.cache
        while budget > 0 and waiting and len(running) < self.max_running and self.may_admit(forming):
            s = waiting[0]
            if cache is not None and not s.looked:
                replica.look_up(s)
            remaining = s.prompt_len - s.prefilled
            if chunked:
                chunk = min(remaining, budget)
            elif remaining <= budget or (not chunks and not has_decodes):
                chunk = remaining  # a prompt longer than the budget runs alone
            else:
                replica.undo_look_up(s)
                break
            if not self.fits(replica, s) or (not chunked and not replica.chunk_fits(s, chunk)):
                replica.undo_look_up(s)
                break
            chunk = replica.fit_chunk(s, chunk)
            if chunk <= 0:
                replica.undo_look_up(s)
                break
            replica.admit(s)
            chunks.append((s, chunk))
            budget -= chunk
        return budget
