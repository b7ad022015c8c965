"""A serving replica: one model instance with a paged KV cache, running iterations.

A replica owns a paged KV cache of ``total_blocks`` blocks of ``block_size`` tokens, its queue,
its running requests and their decode counters. Which requests run in an iteration is its
scheduler's decision (:mod:`kavier.engine.schedulers`: continuous batching, static batching,
sequential); the replica offers the scheduler the operations that keep the KV blocks consistent
(:class:`~kavier.engine.schedulers.base.ReplicaState`), runs the iteration the scheduler formed
and keeps the counters. When a decoding sequence needs a block and none is free, the newest
running request is preempted: its blocks are freed and it is recomputed later (prompt + tokens
generated so far), counted in ``preemptions``.

Decode-only stretches in which the batch cannot change on its own (no prefill, nobody admissible)
are advanced in closed form up to the next sequence finishing or the KV cache filling, and cut
short at the first iteration boundary after a new arrival; so events grow with requests and batch
changes, not with output tokens.
"""

from __future__ import annotations

import heapq
import math
from array import array
from collections import deque
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from kavier.engine.schedulers.base import Scheduler
from kavier.errors import ScenarioError
from kavier.perf.linear_run import LinearRun
from kavier.perf.roofline import ServingPerfModel

# Iterations in a row in which a replica emits no token before the run is stopped as stuck: a
# prompt chunked at the smallest sensible budget (512 tokens) would need a 51 M-token prompt to
# go this long without a first token, so only a scheduling livelock gets here.
STALL_ITERATIONS = 100_000

NAN = float("nan")


@dataclass(slots=True)
class Seq:
    """A request inside a replica (token counts; times in seconds).

    While decoding, a sequence's KV tokens and generated tokens advance with the replica's decode
    step counter ``G``: ``kv = kv_base + (G - g_base)``, ``generated = gen_base + (G - g_base)``;
    so one decode step costs O(1) bookkeeping, not O(batch).
    """

    row: int
    request_id: int
    session_id: int
    arrival: float
    n_in: int
    n_out: int
    cached: int = 0
    prompt_len: int = 0  # tokens to prefill: the prompt, or prompt + generated after preemption
    prefilled: int = 0
    generated: int = 0  # while prefilling; see gen_base while decoding
    blocks: int = 0  # while prefilling; decoding sequences hold ceil(kv / block) blocks
    decoding: bool = False
    kv_base: int = 0
    gen_base: int = 0
    g_base: int = 0
    epoch: int = 0  # bumps on preemption (lazy deletion from the finish heap)
    start: float = NAN
    first_token: float = NAN
    finish: float = NAN
    preemptions: int = 0
    # block prefix cache (kavier.cache.hierarchy)
    ids: Any = None  # PrefixIds, or None when the workload gives no identity
    held: list | None = None  # GPU cache keys this request pins
    shared: int = 0  # KV blocks borrowed from the GPU cache (not counted in ``blocks``)
    load_s: float = 0.0  # lower-tier transfer to wait for before the first prefill chunk
    looked: bool = False  # looked up for the current admission
    counted: bool = False  # counted in the cache statistics
    response_key: Any = None
    thesis_key: Any = None


def _values() -> array:
    return array("d")


@dataclass
class ActivityLog:
    """What a replica did, as parallel columns (turned into segments and steps by the caller).

    Each column is an ``array('d')``: 8 bytes a value rather than a list's pointer and float
    object (32 bytes), so the log a long run holds between two emissions stays small.
    """

    t0: array = field(default_factory=_values)
    t1: array = field(default_factory=_values)
    kv0: array = field(default_factory=_values)
    kv1: array = field(default_factory=_values)
    compute_s: array = field(default_factory=_values)
    memory_s: array = field(default_factory=_values)
    tokens: array = field(default_factory=_values)  # tokens per iteration (mean over the piece)
    blocks: array = field(default_factory=_values)
    # what each piece did: prefill tokens and decoding sequences per iteration, decoding
    # sequences held back (running, but not in an iteration that prefills only), iterations, and
    # over the whole piece the seconds of communication, host overhead and waiting for prefix-cache
    # loads from lower tiers, FLOPs and bytes moved
    prefill_tokens: array = field(default_factory=_values)
    decode_seqs: array = field(default_factory=_values)
    held_seqs: array = field(default_factory=_values)
    iterations: array = field(default_factory=_values)
    comm_s: array = field(default_factory=_values)
    host_s: array = field(default_factory=_values)
    load_s: array = field(default_factory=_values)
    flops: array = field(default_factory=_values)
    bytes: array = field(default_factory=_values)
    step_t: array = field(default_factory=_values)
    step_running: array = field(default_factory=_values)
    step_waiting: array = field(default_factory=_values)

    def clear(self) -> None:
        for value in self.__dict__.values():
            del value[:]


@dataclass
class PendingRun:
    """A decode run computed but not yet applied (it may be cut short by an arrival)."""

    start: float
    steps: int
    run: LinearRun
    seqs: int
    end: float
    context0: float = 0.0  # the decoding sequences' total context at the run's first step


# When set (a list), every replica appends each iteration it runs: ``(t0, t1, args, steps)``,
# ``args`` the arguments of :meth:`ServingPerfModel.iteration` for one step and ``steps`` the
# number of equal-shaped steps (a decode run of ``k`` steps is one entry, its context the run's
# mean). For tools that re-time a run's iterations under other constants
# (kavier.validate.fit_rows); None (the default) records nothing.
ITERATION_LOG: ContextVar[list | None] = ContextVar("kavier_iteration_log", default=None)


class ServingReplica:
    """One model instance on ``gpus`` GPUs (tp x pp) with its scheduler and KV cache."""

    def __init__(
        self,
        index: int,
        perf: ServingPerfModel,
        scheduler: Scheduler,
        block_size: int,
        total_blocks: int,
        gpus: int,
        on_finish,
        cache: Any = None,
    ) -> None:
        self.index = index
        self.perf = perf
        self.scheduler = scheduler
        # the optional Scheduler hook: why a prompt can never run (kavier.engine.schedulers.base)
        self.refusal = getattr(scheduler, "refusal", None)
        self.bs = self.block_size = int(block_size)
        self.total_blocks = int(total_blocks)
        self.free_blocks = int(total_blocks)
        self.gpus = gpus
        self.on_finish = on_finish
        self.cache = cache  # PrefixCacheSystem shared by the cluster, or None
        self.store = cache.gpu[index] if cache is not None and cache.in_gpu else None
        self.waiting: deque[Seq] = deque()
        self.running: dict[int, Seq] = {}  # admission order; the last is the newest
        self.prefilling: list[Seq] = []
        # decoding aggregates
        self.G = 0
        self.n_decoding = 0
        self.kv_offset_sum = 0  # sum of (kv_base - g_base) over decoding sequences
        self.phase_counts = [0] * self.bs  # decoding sequences by (kv_base - g_base) mod block
        self.finish_heap: list[tuple[int, int, int, Seq]] = []  # (finish step, order, epoch, seq)
        self._order = 0
        self.now = 0.0
        self.pending: PendingRun | None = None
        self.log = ActivityLog()
        self.busy_s = 0.0
        self.prefill_s = 0.0
        self.decode_s = 0.0
        self.iterations = 0
        self.batch_sum = 0.0
        self.preemptions = 0
        self._levels = (0, 0)
        self.outstanding = 0  # requests running or waiting here (routers read it)
        self.preempted_this_step = False
        self.stalled = 0  # iterations in a row that emitted no token (see STALL_ITERATIONS)

    # -- load, for routers ------------------------------------------------------------------

    @property
    def kv_fraction(self) -> float:
        """KV blocks in use / capacity."""
        return 1.0 - self.free_blocks / self.total_blocks if self.total_blocks else 1.0

    @property
    def pending_end(self) -> float:
        """When the pending run would end."""
        p = self.pending
        return p.end if p is not None else self.now

    # -- decoding bookkeeping -------------------------------------------------------------------

    def _kv(self, s: Seq) -> int:
        return s.kv_base + self.G - s.g_base if s.decoding else s.prefilled

    def _generated(self, s: Seq) -> int:
        return s.gen_base + self.G - s.g_base if s.decoding else s.generated

    def generated(self, s: Seq) -> int:
        """Output tokens ``s`` has generated so far."""
        return self._generated(s)

    @property
    def decode_steps(self) -> int:
        """Decode steps the replica has taken since it started."""
        return self.G

    def _start_decoding(self, s: Seq) -> None:
        s.decoding = True
        s.kv_base = s.prompt_len
        s.gen_base = s.generated
        s.g_base = self.G
        offset = s.kv_base - s.g_base
        self.n_decoding += 1
        self.kv_offset_sum += offset
        self.phase_counts[offset % self.bs] += 1
        self._order += 1
        heapq.heappush(self.finish_heap, (self.G + s.n_out - s.gen_base, self._order, s.epoch, s))

    def _stop_decoding(self, s: Seq) -> None:
        """Freeze a decoding sequence's counters (on finish or preemption)."""
        kv, gen = self._kv(s), self._generated(s)
        offset = s.kv_base - s.g_base
        self.n_decoding -= 1
        self.kv_offset_sum -= offset
        self.phase_counts[offset % self.bs] -= 1
        s.decoding = False
        s.prefilled = kv
        s.generated = gen
        s.blocks = -(-kv // self.bs) - s.shared

    def _decode_kv_sum(self) -> int:
        return self.kv_offset_sum + self.n_decoding * self.G

    def _blocks_needed(self, steps: int) -> int:
        """New blocks the decoding sequences need over the next ``steps`` decode steps.

        A sequence of phase ``p`` (its KV length minus ``G``, mod the block size) needs a block
        at each step ``j`` with ``(p + G + j) % block == 0``: ``steps // block`` times, plus one
        when the first such step falls in the remainder, a cyclic range of phases.
        """
        bs, pc = self.bs, self.phase_counts
        p0 = (-self.G) % bs
        if steps == 1:
            return pc[p0]
        full, rem = divmod(steps, bs)
        total = self.n_decoding * full
        if rem:
            lo = p0 - rem + 1
            total += sum(pc[lo : p0 + 1]) if lo >= 0 else sum(pc[lo % bs :]) + sum(pc[: p0 + 1])
        return total

    def _min_remaining(self) -> int:
        heap = self.finish_heap
        while heap and (heap[0][2] != heap[0][3].epoch or not heap[0][3].decoding):
            heapq.heappop(heap)
        return heap[0][0] - self.G if heap else 0

    # -- entry points ---------------------------------------------------------------------------

    def enqueue(self, seq: Seq, t: float) -> bool:
        """Add an arriving request at time ``t``; True when the replica must be woken at ``now``."""
        need = -(-(seq.n_in + seq.n_out) // self.bs)
        if need > self.total_blocks:
            raise ScenarioError(
                f"request {seq.request_id} needs {seq.n_in + seq.n_out} tokens of KV cache but replica "
                f"{self.index} holds {self.total_blocks * self.bs}; raise "
                "--gpu-memory-utilization, use --tp or a GPU with more memory, or reject longer "
                f"requests with --max-model-len {self.total_blocks * self.bs} as vLLM would"
            )
        refusal = self.refusal
        reason = refusal(seq.n_in - seq.cached) if refusal is not None else None
        if reason:
            raise ScenarioError(f"request {seq.request_id} has a {seq.n_in}-token prompt but {reason}")
        seq.prompt_len = seq.n_in
        seq.prefilled = seq.cached
        woke = False
        if self.pending is not None and t < self.pending.end:
            p = self.pending
            self._apply_run(p.run.steps_until(t - p.start, p.steps))
            woke = True
        was_idle = not self.running and not self.waiting and self.pending is None
        self.waiting.append(seq)
        self.outstanding += 1
        self._record_levels(t)
        if was_idle:
            self.now = max(self.now, t)
            woke = True
        return woke

    def step(self) -> float | None:
        """Finish what is pending and schedule the next iteration or run; its end, or None if idle."""
        if self.pending is not None:
            self._apply_run(self.pending.steps)
        return self._schedule()

    # -- scheduling ---------------------------------------------------------------------------

    def _record_levels(self, t: float) -> None:
        levels = (len(self.running), len(self.waiting))
        if levels != self._levels:
            self.log.step_t.append(t)
            self.log.step_running.append(levels[0] - self._levels[0])
            self.log.step_waiting.append(levels[1] - self._levels[1])
            self._levels = levels

    def _preempt_newest(self) -> None:
        self._preempt(next(reversed(self.running)), to_front=True)

    def _retract_fewest_generated(self) -> None:
        """SGLang's victim: the decoding request with the fewest generated tokens, ties to the
        longest prompt (``retraction_policy="length"``); it goes to the tail of the queue."""
        victim = min(
            (s for s in self.running.values() if s.decoding),
            key=lambda s: (self._generated(s), -s.n_in),
            default=None,
        )
        if victim is None:  # only prefilling requests hold blocks: the newest goes
            self._preempt_newest()
        else:
            self._preempt(victim.request_id, to_front=False)

    def _preempt(self, rid: int, to_front: bool) -> None:
        """Release request ``rid``'s KV and queue it for recompute (front or tail of the queue)."""
        victim = self.running.pop(rid)
        if victim.decoding:
            self._stop_decoding(victim)
        else:
            self.prefilling.remove(victim)
        self.free_blocks += victim.blocks
        victim.blocks = 0
        if self.cache is not None:
            self.free_blocks += self.cache.release(self.index, victim, self.now)
            victim.shared = 0
            victim.looked = False
            victim.load_s = 0.0
        victim.prompt_len = victim.n_in + victim.generated
        victim.prefilled = 0
        victim.epoch += 1
        victim.preemptions += 1
        self.preemptions += 1
        if to_front:
            self.waiting.appendleft(victim)
        else:
            self.waiting.append(victim)

    # -- what a scheduler may do (kavier.engine.schedulers.base.ReplicaState) -------------------

    def make_room_for_decode(self, reserve: bool, fewest_generated: bool = False) -> int:
        """Preempt the newest requests (vLLM; with ``fewest_generated``, SGLang's victims) until
        every decoding sequence has a block for its token; with ``reserve``, set those blocks
        aside (before prefills take any); returns how many.

        (``phase_counts[p0]`` is ``_blocks_needed(1)``: G does not move while scheduling.)
        """
        self.preempted_this_step = False
        if not self.n_decoding:
            return 0
        pc = self.phase_counts
        p0 = (-self.G) % self.bs
        preempt = self._retract_fewest_generated if fewest_generated else self._preempt_newest
        while self.n_decoding and pc[p0] > self.free_blocks:
            preempt()
            self.preempted_this_step = True
        if not reserve or not self.n_decoding:
            return 0
        blocks = pc[p0]
        self.free_blocks -= blocks
        return blocks

    def release_blocks(self, blocks: int) -> None:
        """Give back blocks set aside by :meth:`reserve_decode_blocks`."""
        self.free_blocks += blocks

    def admit(self, s: Seq) -> None:
        """Move a queued request (normally the head of the queue) into the batch."""
        if self.waiting[0] is s:
            self.waiting.popleft()
        else:
            self.waiting.remove(s)
        self.running[s.request_id] = s
        self.prefilling.append(s)
        if math.isnan(s.start):
            s.start = self.now

    def look_up(self, s: Seq) -> None:
        """Match the prefix cache as the request is admitted: pin GPU hits, plan lower-tier loads."""
        a = self.cache.admit(self.index, s, s.prompt_len, self.now, self.perf, first=not s.counted)
        s.counted = True
        s.looked = True
        self.free_blocks -= a.pinned_blocks
        s.shared = a.shared_blocks
        s.prefilled = a.cached
        s.cached = a.cached
        s.load_s = a.load_s

    def undo_look_up(self, s: Seq) -> None:
        """The request could not be admitted after all: release what its lookup pinned."""
        if self.cache is None or not s.looked or s.blocks:
            return
        self.free_blocks += self.cache.release(self.index, s, self.now)
        s.shared = 0
        s.prefilled = 0
        s.load_s = 0.0
        s.looked = False

    def _reclaim(self) -> None:
        """Evict cached blocks until the blocks counted free really are (evictable ones count)."""
        store = self.store
        if store is not None and self.free_blocks < store.evictable_blocks:
            store.reclaim(self.free_blocks)

    def _schedule(self) -> float | None:
        decode_now, chunks = self.scheduler.form_batch(self)
        self._record_levels(self.now)
        if not decode_now and not chunks:
            return None
        if not chunks and not self.prefilling and self._min_remaining() >= 2:
            return self._start_run()
        return self._iteration(decode_now, chunks)

    def _room_and_blocks(self, s: Seq, chunk: int) -> tuple[int, int]:
        """(tokens ``s``'s blocks still hold beyond its prefill, blocks a ``chunk`` more needs)."""
        have = (s.shared + s.blocks) * self.bs - s.prefilled
        return have, max(0, -(-(chunk - have) // self.bs))

    def chunk_fits(self, s: Seq, chunk: int) -> bool:
        """Would :meth:`fit_chunk` allocate the whole chunk (no shrinking)?"""
        return self._room_and_blocks(s, chunk)[1] <= self.free_blocks

    def fit_chunk(self, s: Seq, chunk: int) -> int:
        """Shrink a prefill chunk to the free KV blocks; allocate them."""
        have, extra_blocks = self._room_and_blocks(s, chunk)
        if extra_blocks > self.free_blocks:
            chunk = have + self.free_blocks * self.bs
            extra_blocks = self.free_blocks
        if chunk <= 0:
            return 0
        s.blocks += extra_blocks
        self.free_blocks -= extra_blocks
        if extra_blocks:
            self._reclaim()
        return chunk

    def _iteration(self, decode_now: bool, chunks: list[tuple[Seq, int]]) -> float:
        d = self.n_decoding if decode_now else 0
        held = self.n_decoding - d  # decoding sequences a prefill-only iteration holds back
        p_tokens = 0
        pairs = 0.0
        p_ctx = 0
        for s, c in chunks:
            p_tokens += c
            pairs += c * (s.prefilled + (c + 1) / 2.0)
            p_ctx += s.prefilled
        d_ctx = self._decode_kv_sum() + d if d else 0
        cost = self.perf.iteration(p_tokens, pairs, p_ctx, d, d_ctx, len(chunks))
        load_s = 0.0
        for s, _ in chunks:
            if s.load_s:
                load_s += s.load_s
                s.load_s = 0.0
        t0, t1 = self.now, self.now + cost.time_s + load_s
        kv0 = self.kv_offset_sum + self.n_decoding * self.G
        if self.prefilling:
            kv0 += sum([s.prefilled for s in self.prefilling])
        if d:
            self.free_blocks -= self.phase_counts[(-self.G) % self.bs]
            self._reclaim()
            self.G += 1
        prefill_share = p_tokens / (p_tokens + d)
        emitted = d > 0
        for s, c in chunks:
            s.prefilled += c
            if s.prefilled >= s.prompt_len:
                emitted = True
                self.prefilling.remove(s)
                if self.cache is not None:
                    moved = self.cache.on_prefilled(self.index, s, s.blocks, t1)
                    s.blocks -= moved
                    s.shared += moved
                if s.generated < s.n_out:
                    s.generated += 1
                    if math.isnan(s.first_token):
                        s.first_token = t1
                self._start_decoding(s)
        self.now = t1
        if emitted:
            self.stalled = 0
        else:
            self.stalled += 1
            if self.stalled >= STALL_ITERATIONS:
                self._stuck()
        self._account(t0, t1, kv0, cost.compute_s, cost.memory_s, p_tokens + d, prefill_share)
        self._detail(p_tokens, d, 1, cost.comm_s, cost.host_s, load_s, cost.flops, cost.bytes, held)
        log = ITERATION_LOG.get()
        if log is not None:
            log.append((t0, t1, (p_tokens, pairs, p_ctx, d, d_ctx, len(chunks)), 1))
        self._finish_done(t1)
        return t1

    def _stuck(self) -> None:
        """Stop a run whose replica has gone STALL_ITERATIONS iterations without a token."""
        raise ScenarioError(
            f"replica {self.index} ran {STALL_ITERATIONS} iterations in a row without emitting a token "
            f"at t = {self.now:.3f} s ({len(self.running)} running, {len(self.waiting)} waiting, "
            f"{self.free_blocks} of {self.total_blocks} KV blocks free, {self.preemptions} preemptions): "
            "a scheduling livelock; raise --gpu-memory-utilization or use --chunked-prefill on, and "
            "report the scenario"
        )

    def _start_run(self) -> float:
        steps = self._min_remaining()
        if self._blocks_needed(steps) > self.free_blocks:
            lo, hi = 1, steps
            while lo < hi:
                mid = (lo + hi + 1) // 2
                if self._blocks_needed(mid) <= self.free_blocks:
                    lo = mid
                else:
                    hi = mid - 1
            steps = lo
        d = self.n_decoding
        context0 = self._decode_kv_sum() + d
        run = self.perf.decode_line(d, context0, steps)
        end = self.now + run.total(steps)
        self.pending = PendingRun(start=self.now, steps=steps, run=run, seqs=d, end=end, context0=context0)
        return end

    def _apply_run(self, k: int) -> None:
        p = self.pending
        self.pending = None
        t0 = p.start
        t1 = p.end if k == p.steps else p.start + p.run.total(k)
        kv0 = self._decode_kv_sum()
        self.free_blocks -= self._blocks_needed(k)
        self._reclaim()
        self.G += k
        self.now = t1
        self._account(
            t0, t1, kv0, p.run.compute_sum(k), p.run.memory_sum(k), float(p.seqs), 0.0, iterations=k
        )
        run = p.run
        self._detail(0.0, p.seqs, k, run.comm * k, run.host * k, 0.0, run.flops_sum(k), run.bytes_sum(k), 0)
        log = ITERATION_LOG.get()
        if log is not None:
            context = p.context0 + p.seqs * (k - 1) / 2.0
            log.append((t0, t1, (0.0, 0.0, 0.0, p.seqs, context, 0), k))
        self._finish_done(t1)

    def _account(
        self,
        t0: float,
        t1: float,
        kv0: float,
        compute_s: float,
        memory_s: float,
        tokens: float,
        prefill_share: float,
        iterations: int = 1,
    ) -> None:
        span = t1 - t0
        if self.free_blocks < 0:  # invariant: blocks in use never exceed the cache
            raise AssertionError(f"replica {self.index}: KV blocks over capacity")
        self.busy_s += span
        self.prefill_s += span * prefill_share
        self.decode_s += span * (1.0 - prefill_share)
        self.iterations += iterations
        self.batch_sum += len(self.running) * iterations
        log = self.log
        log.t0.append(t0)
        log.t1.append(t1)
        log.kv0.append(kv0)
        kv1 = self.kv_offset_sum + self.n_decoding * self.G
        if self.prefilling:
            kv1 += sum([s.prefilled for s in self.prefilling])
        log.kv1.append(kv1)
        log.compute_s.append(compute_s)
        log.memory_s.append(memory_s)
        log.tokens.append(tokens)
        log.blocks.append(self.total_blocks - self.free_blocks)

    def _detail(
        self,
        prefill_tokens: float,
        decode_seqs: float,
        iterations: int,
        comm_s: float,
        host_s: float,
        load_s: float,
        flops: float,
        moved: float,
        held_seqs: int,
    ) -> None:
        """Log what the piece just accounted did (see :class:`ActivityLog`)."""
        log = self.log
        log.prefill_tokens.append(prefill_tokens)
        log.decode_seqs.append(decode_seqs)
        log.held_seqs.append(held_seqs)
        log.iterations.append(iterations)
        log.comm_s.append(comm_s)
        log.host_s.append(host_s)
        log.load_s.append(load_s)
        log.flops.append(flops)
        log.bytes.append(moved)

    def _finish_done(self, t: float) -> None:
        done: list[Seq] = []
        heap = self.finish_heap
        while heap:
            step, _, epoch, s = heap[0]
            if epoch != s.epoch or not s.decoding:
                heapq.heappop(heap)
                continue
            if step > self.G:
                break
            heapq.heappop(heap)
            done.append(s)
        if self.prefilling:  # prompts with no output finish at their prefill
            done += [s for s in self.prefilling if s.prefilled >= s.prompt_len and s.n_out == 0]
        if not done:
            return
        for s in done:
            if s.decoding:
                self._stop_decoding(s)
            elif s in self.prefilling:
                self.prefilling.remove(s)
            del self.running[s.request_id]
            self.outstanding -= 1
            if self.cache is not None:
                moved, unpinned = self.cache.on_finish(self.index, s, s.blocks, t)
                s.blocks -= moved
                self.free_blocks += moved + unpinned
            self.free_blocks += s.blocks
            s.blocks = 0
            s.finish = t
            if math.isnan(s.first_token):
                s.first_token = t
            self.on_finish(s, self)
        self._record_levels(t)
