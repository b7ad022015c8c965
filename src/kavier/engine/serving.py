"""Serving replicas: continuous batching (vLLM-like), static batching and sequential execution.

A replica owns a paged KV cache of ``total_blocks`` blocks of ``block_size`` tokens and runs
iterations. Each iteration the scheduler (continuous batching) gives every decoding sequence one
token, continues prefills, and admits waiting requests FCFS while ``max_num_seqs``,
``max_batched_tokens`` and free KV blocks allow; with chunked prefill a prompt may be split across
iterations, without it a prompt is prefilled whole. When a decoding sequence needs a block and
none is free, the newest running request is preempted: its blocks are freed and it is recomputed
later (prompt + tokens generated so far), counted in ``preemptions``.

Decode-only stretches in which the batch cannot change on its own (no prefill, nobody admissible)
are advanced in closed form up to the next sequence finishing or the KV cache filling, and cut
short at the first iteration boundary after a new arrival; so events grow with requests and batch
changes, not with output tokens.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

from kavier.engine.linear_run import LinearRun
from kavier.errors import ScenarioError
from kavier.perf.serving import ServingPerfModel

NAN = float("nan")


@dataclass(slots=True)
class Seq:
    """A request inside a replica (token counts; times in seconds)."""

    row: int
    request_id: int
    session_id: int
    arrival: float
    n_in: int
    n_out: int
    cached: int = 0
    prompt_len: int = 0  # tokens to prefill: the prompt, or prompt + generated after preemption
    prefilled: int = 0
    kv: int = 0  # tokens whose KV is stored
    generated: int = 0
    blocks: int = 0
    start: float = NAN
    first_token: float = NAN
    finish: float = NAN
    preemptions: int = 0
    prefill_gpu_s: float = 0.0


@dataclass
class ReplicaConfig:
    """Scheduler knobs of one replica."""

    scheduler: str = "continuous"  # continuous | static | sequential
    max_num_seqs: int = 256
    max_batched_tokens: int = 8192
    chunked_prefill: bool = True
    block_size: int = 16
    busy_utilization: float = 0.95


@dataclass
class ActivityLog:
    """What a replica did, as parallel lists (turned into segments and steps by the caller)."""

    t0: list[float] = field(default_factory=list)
    t1: list[float] = field(default_factory=list)
    kv0: list[float] = field(default_factory=list)
    kv1: list[float] = field(default_factory=list)
    compute_s: list[float] = field(default_factory=list)
    memory_s: list[float] = field(default_factory=list)
    tokens: list[float] = field(default_factory=list)  # tokens per iteration (mean over the piece)
    blocks: list[float] = field(default_factory=list)
    step_t: list[float] = field(default_factory=list)
    step_running: list[float] = field(default_factory=list)
    step_waiting: list[float] = field(default_factory=list)

    def clear(self) -> None:
        for value in self.__dict__.values():
            value.clear()


@dataclass
class PendingRun:
    """A decode run computed but not yet applied (it may be cut short by an arrival)."""

    start: float
    steps: int
    run: LinearRun
    seqs: list[Seq]
    end: float


class ServingReplica:
    """One model instance on ``gpus`` GPUs (tp x pp) with its scheduler and KV cache."""

    def __init__(
        self,
        index: int,
        perf: ServingPerfModel,
        config: ReplicaConfig,
        total_blocks: int,
        gpus: int,
        on_finish,
    ) -> None:
        self.index = index
        self.perf = perf
        self.cfg = config
        self.total_blocks = int(total_blocks)
        self.free_blocks = int(total_blocks)
        self.gpus = gpus
        self.on_finish = on_finish
        self.waiting: deque[Seq] = deque()
        self.running: list[Seq] = []
        self.now = 0.0
        self.pending: PendingRun | None = None
        self.log = ActivityLog()
        self.busy_s = 0.0
        self.prefill_s = 0.0
        self.decode_s = 0.0
        self.iterations = 0
        self.batch_sum = 0.0
        self.preemptions = 0
        self.static_batch_open = True
        self._levels = (0, 0)
        if config.scheduler == "sequential":
            self.max_seqs = 1
        else:
            self.max_seqs = config.max_num_seqs

    # -- load, for routers ------------------------------------------------------------------

    @property
    def outstanding(self) -> int:
        """Requests running or waiting here."""
        return len(self.running) + len(self.waiting)

    @property
    def kv_fraction(self) -> float:
        """KV blocks in use / capacity."""
        return 1.0 - self.free_blocks / self.total_blocks if self.total_blocks else 1.0

    @property
    def idle(self) -> bool:
        """Nothing running, waiting or pending."""
        return not self.running and not self.waiting and self.pending is None

    # -- entry points ---------------------------------------------------------------------------

    def enqueue(self, seq: Seq, t: float) -> bool:
        """Add an arriving request at time ``t``; True when the replica must be woken at ``now``."""
        need = math.ceil((seq.n_in + seq.n_out) / self.cfg.block_size)
        if need > self.total_blocks:
            raise ScenarioError(
                f"request {seq.request_id} needs {seq.n_in + seq.n_out} tokens of KV cache but replica "
                f"{self.index} holds {self.total_blocks * self.cfg.block_size}; raise "
                "--gpu-memory-utilization, use --tp, a GPU with more memory, or shorter requests"
            )
        seq.prompt_len = seq.n_in
        seq.prefilled = seq.cached
        woke = False
        if self.pending is not None and t < self.pending_end:
            self._cut_run(t)
            woke = True
        was_idle = not self.running and not self.waiting and self.pending is None
        self.waiting.append(seq)
        self._record_levels(t)
        if was_idle:
            self.now = max(self.now, t)
            woke = True
        return woke

    @property
    def pending_end(self) -> float:
        """When the pending run would end."""
        p = self.pending
        return p.end if p is not None else self.now

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

    def _preempt_newest(self) -> Seq:
        victim = self.running.pop()
        self.free_blocks += victim.blocks
        victim.blocks = 0
        victim.prompt_len = victim.n_in + victim.generated
        victim.prefilled = 0
        victim.kv = 0
        victim.preemptions += 1
        self.preemptions += 1
        self.waiting.appendleft(victim)
        return victim

    def _can_admit(self, forming: bool) -> bool:
        """Whether the scheduler may admit the next waiting request now."""
        if not self.waiting or len(self.running) >= self.max_seqs:
            return False
        # static/sequential batches run to completion: admit only while forming a batch
        return self.cfg.scheduler == "continuous" or forming

    def _admit(self, budget: int, forming: bool, chunks: list[tuple[Seq, int]], has_decodes: bool) -> int:
        """Admit waiting requests FCFS into ``chunks`` within ``budget`` tokens; returns the rest."""
        cfg = self.cfg
        bs = cfg.block_size
        while budget > 0 and self._can_admit(forming):
            s = self.waiting[0]
            remaining = s.prompt_len - s.prefilled
            if cfg.chunked_prefill:
                chunk = min(remaining, budget)
            elif remaining <= budget or (not chunks and not has_decodes):
                chunk = remaining  # a prompt longer than the budget runs alone
            else:
                break
            if cfg.scheduler != "continuous":
                reserve = -(-(s.n_in + s.n_out) // bs)  # static batches hold the whole sequence
                if reserve - s.blocks > self.free_blocks:
                    break
            chunk = self._fit_chunk(s, chunk)
            if chunk <= 0:
                break
            self.waiting.popleft()
            self.running.append(s)
            if math.isnan(s.start):
                s.start = self.now
            chunks.append((s, chunk))
            budget -= chunk
        return budget

    def _schedule(self) -> float | None:
        cfg = self.cfg
        bs = cfg.block_size
        forming = not self.running
        # Decoding sequences need a block for the token they add: preempt the newest if short.
        while True:
            decodes = [s for s in self.running if s.prefilled >= s.prompt_len]
            need = sum(max(0, -(-(s.kv + 1) // bs) - s.blocks) for s in decodes)
            if need <= self.free_blocks:
                break
            self._preempt_newest()
        for s in decodes:  # reserve those blocks before prefills take any
            grow = -(-(s.kv + 1) // bs) - s.blocks
            if grow > 0:
                s.blocks += grow
                self.free_blocks -= grow
        chunks: list[tuple[Seq, int]] = []
        if cfg.scheduler == "continuous" and not cfg.chunked_prefill:
            # without chunked prefill, prefills go first in iterations of their own (vLLM v0)
            self._admit(cfg.max_batched_tokens, forming, chunks, has_decodes=False)
            if chunks:
                self._record_levels(self.now)
                return self._iteration([], chunks)
        else:
            decodes = decodes[: cfg.max_batched_tokens]
            budget = cfg.max_batched_tokens - len(decodes)
            for s in self.running:
                if s.prefilled < s.prompt_len and budget > 0:
                    chunk = self._fit_chunk(s, min(s.prompt_len - s.prefilled, budget))
                    if chunk > 0:
                        chunks.append((s, chunk))
                        budget -= chunk
            self._admit(budget, forming, chunks, has_decodes=bool(decodes))
        self._record_levels(self.now)
        if not decodes and not chunks:
            return None
        if (
            not chunks
            and len(decodes) == len(self.running)
            and min(s.n_out - s.generated for s in decodes) >= 2
        ):
            return self._start_run(decodes)
        return self._iteration(decodes, chunks)

    def _fit_chunk(self, s: Seq, chunk: int) -> int:
        """Shrink a prefill chunk to the free KV blocks; allocate them."""
        bs = self.cfg.block_size
        have = s.blocks * bs - s.prefilled
        extra_blocks = max(0, -(-(chunk - have) // bs))
        if extra_blocks > self.free_blocks:
            chunk = have + self.free_blocks * bs
            extra_blocks = self.free_blocks
        if chunk <= 0:
            return 0
        s.blocks += extra_blocks
        self.free_blocks -= extra_blocks
        return chunk

    def _iteration(self, decodes: list[Seq], chunks: list[tuple[Seq, int]]) -> float:
        p_tokens = sum(c for _, c in chunks)
        pairs = sum(c * (s.prefilled + (c + 1) / 2.0) for s, c in chunks)
        p_ctx = sum(s.prefilled for s, _ in chunks)
        d_ctx = sum(s.kv + 1 for s in decodes)
        cost = self.perf.iteration(p_tokens, pairs, p_ctx, len(decodes), d_ctx)
        t0, t1 = self.now, self.now + cost.time_s
        kv0 = sum(s.kv for s in self.running)
        for s in decodes:
            s.kv += 1
            s.generated += 1
        prefill_share = p_tokens / (p_tokens + len(decodes))
        for s, c in chunks:
            s.prefilled += c
            s.kv = s.prefilled
            s.prefill_gpu_s += cost.time_s * c / (p_tokens + len(decodes))
            if s.prefilled >= s.prompt_len and s.generated < s.n_out:
                s.generated += 1
                if math.isnan(s.first_token):
                    s.first_token = t1
        self._account(t0, t1, kv0, cost.compute_s, cost.memory_s, p_tokens + len(decodes), prefill_share)
        self.now = t1
        self._finish_done(t1)
        return t1

    def _start_run(self, decodes: list[Seq]) -> float:
        bs = self.cfg.block_size
        steps = min(s.n_out - s.generated for s in decodes)

        # the KV cache limits the run: find the largest k whose new blocks fit
        def blocks_needed(k: int) -> int:
            return sum(max(0, -(-(s.kv + k) // bs) - s.blocks) for s in decodes)

        if blocks_needed(steps) > self.free_blocks:
            lo, hi = 1, steps
            while lo < hi:
                mid = (lo + hi + 1) // 2
                if blocks_needed(mid) <= self.free_blocks:
                    lo = mid
                else:
                    hi = mid - 1
            steps = lo
        ctx0 = sum(s.kv for s in decodes) + len(decodes)
        run = self.perf.decode_line(len(decodes), ctx0)
        end = self.now + run.total(steps)
        self.pending = PendingRun(start=self.now, steps=steps, run=run, seqs=decodes, end=end)
        return end

    def _cut_run(self, t: float) -> None:
        p = self.pending
        k = p.run.steps_until(t - p.start, p.steps)
        self._apply_run(k)

    def _apply_run(self, k: int) -> None:
        p = self.pending
        self.pending = None
        bs = self.cfg.block_size
        t0 = p.start
        t1 = p.end if k == p.steps else p.start + p.run.total(k)
        kv0 = sum(s.kv for s in self.running)
        for s in p.seqs:
            s.kv += k
            s.generated += k
            need = -(-s.kv // bs)
            if need > s.blocks:
                self.free_blocks -= need - s.blocks
                s.blocks = need
        self._account(
            t0, t1, kv0, p.run.compute_sum(k), p.run.memory_sum(k), float(len(p.seqs)), 0.0, iterations=k
        )
        self.now = t1
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
        log.kv1.append(sum(s.kv for s in self.running))
        log.compute_s.append(compute_s)
        log.memory_s.append(memory_s)
        log.tokens.append(tokens)
        log.blocks.append(self.total_blocks - self.free_blocks)

    def _finish_done(self, t: float) -> None:
        done = [s for s in self.running if s.generated >= s.n_out and s.prefilled >= s.prompt_len]
        if not done:
            return
        self.running = [
            s for s in self.running if not (s.generated >= s.n_out and s.prefilled >= s.prompt_len)
        ]
        for s in done:
            self.free_blocks += s.blocks
            s.blocks = 0
            s.finish = t
            if math.isnan(s.first_token) and s.n_out == 0:
                s.first_token = t
            self.on_finish(s, self)
        self._record_levels(t)
