"""The serving backend: a router in front of replicas that run scheduler-formed batches.

One event loop moves time: the next arrival (from the workload stream, or injected by closed-loop
clients when a request finishes), the next request past a replica's frontend, or the next
replica event (the end of an iteration or of a closed-form decode run), whichever comes first.
Arrivals go through the edge response cache and the thesis prefix cache (when on), then to the
replica the router picks, whose serial frontend (the engine preset's server: parsing and
tokenizing one request at a time) hands them to its scheduler in turn. Finished requests
are emitted as records in batches of ``flush_size``; every ``flush_size`` arrivals the replicas'
activity is emitted and the time series may be written up to the earliest time a replica can
still change.
"""

from __future__ import annotations

import gc
import heapq
import math
from array import array
from collections.abc import Iterator
from typing import Any

import numpy as np

from kavier.cache.hierarchy import PrefixCacheSystem, parse_tiers
from kavier.cache.keys import prefix_ids
from kavier.cache.prefix_thesis import ThesisPrefixCache, prefix_keys
from kavier.cache.response import ResponseCache
from kavier.engine.backend import BackendRun, Progress
from kavier.engine.engines import engine_knobs
from kavier.engine.records import records_from
from kavier.engine.replica import Seq, ServingReplica
from kavier.engine.routers import RouterSetup, make_router
from kavier.engine.schedulers.base import SchedulerSettings
from kavier.engine.system import ReplicaPlan, plan_replicas
from kavier.events import Activity, Observer, ReplicaInfo, RunInfo
from kavier.metrics import SummaryAccumulator
from kavier.perf.utilization import BatchShare
from kavier.registry import SCHEDULERS
from kavier.scenario import Scenario
from kavier.workload.chunk import RequestChunk
from kavier.workload.closed_loop import ClosedLoop
from kavier.workload.source import WorkloadSource

# Per-replica quantities of the serving time series, besides utilisation, KV bytes and power:
# tokens per iteration and KV blocks in use (means over each interval).
SERIES_QUANTITIES = ("batch_tokens", "kv_blocks_used")
# What each piece of activity did, besides its time (kavier.events.Activity.detail).
DETAIL = (
    "prefill_tokens", "decode_seqs", "held_seqs", "iterations", "comm_s", "host_s", "load_s", "flops", "bytes"
)  # fmt: skip

# Gen-0 threshold of the cyclic garbage collector while a serving run goes on (CPython's default
# is 700). A run allocates and frees some 10^5-10^6 small tracked objects (prefix-cache entries,
# sequences, tuples): at 700 the collector runs ~130 times on the Mooncake trace and walks the
# live cache each time (~0.1 s of a 1.2 s run). The engine makes no reference cycles to reclaim
# early; the threshold is restored when the run ends.
GC_GEN0_THRESHOLD = 20_000

# Replica activity is emitted every ``flush_size`` arrivals, and also after this many engine
# events per ``flush_size`` without an emission: once the arrivals end, an overloaded replica
# drains its queue for days of simulated time, and its log (and the time series it feeds) would
# otherwise be held until the end. Runs make 2.5-10 events per request (arrivals included;
# long prompts chunked into several iterations make the most), so a run that keeps receiving
# requests stays on the arrival schedule and its outputs as they were.
EMISSION_EVENTS_PER_REQUEST = 16


class ClusterBackend:
    """Replicas behind a router, each batching with its scheduler (see the module docstring)."""

    def run(
        self,
        scenario: Scenario,
        source: WorkloadSource | None,
        observer: Observer,
        totals: SummaryAccumulator,
        progress: Progress | None,
    ) -> BackendRun:
        before = gc.get_threshold()
        if before[0] < GC_GEN0_THRESHOLD:
            gc.set_threshold(GC_GEN0_THRESHOLD, *before[1:])
        try:
            return ClusterRun(scenario, source, observer, totals, progress).run()
        finally:
            gc.set_threshold(*before)


class ClusterRun:
    """One run of the serving backend: the cluster's state and its event loop."""

    def __init__(
        self,
        scenario: Scenario,
        source: WorkloadSource | None,
        observer: Observer,
        totals: SummaryAccumulator,
        progress: Progress | None,
    ) -> None:
        self.scenario = scenario
        self.source = source
        self.observer = observer
        self.totals = totals
        self.progress = progress
        self.plans = plans = plan_replicas(scenario)
        self.busy_utilization = scenario.busy_utilization
        self.finished: list[tuple[Seq, int, float]] = []
        self.cache = cache = make_prefix_cache(scenario, plans)
        self.responses = make_response_cache(scenario)
        self.thesis_cache = make_thesis_cache(scenario)
        closed_loop = scenario.workload == "closed-loop" and not scenario.trace
        self.closed = ClosedLoop(scenario) if closed_loop else None
        self.injected: list[tuple[float, int, int, int, int, int]] = []  # t, id, n_in, n_out, session, client
        self.client_of: dict[int, int] = {}
        self.replicas, frontends = make_replicas(scenario, plans, cache, self.on_finish)
        # each replica's serial frontend: (s per request, s per prompt token), when it is free
        self.frontend = frontends
        self.frontend_free = [0.0] * len(plans)
        self.ready: list[tuple[float, int, int, Seq]] = []  # (t, order, replica, seq) past the frontend
        setup = RouterSetup(scenario.seed, cache, scenario.affinity_load_guard)
        self.router = make_router(scenario.router, setup)
        self.kv_per_token = [p.perf.kv_bytes_per_token for p in plans]
        # every GPU of a replica together: peak dense FLOP/s and memory bytes/s (MFU, MBU)
        self.peak_flop_rate = [p.gpus * p.perf.flops for p in plans]
        self.peak_byte_rate = [p.gpus * p.gpu.memory_bandwidth for p in plans]
        self.events: list[tuple[float, int, int, int]] = []  # (time, order, replica, version)
        self.version = [0] * len(plans)
        self.order = 0
        self.info = run_info(plans, scenario.busy_utilization)
        self.rejected = 0  # open-loop requests over max_model_len (see admitted)

    # -- events -----------------------------------------------------------------------------------

    def on_finish(self, seq: Seq, replica: ServingReplica | None) -> None:
        """A request finished on ``replica`` (None: answered by the prompt-response cache)."""
        if replica is None:
            self.finished.append((seq, -1, 0.0))
        else:
            self.finished.append((seq, replica.index, replica.batch_sum / max(replica.iterations, 1)))
            if self.responses is not None:
                self.responses.answered(seq.response_key, seq.finish)
            if self.thesis_cache is not None and seq.thesis_key is not None:
                self.thesis_cache.set_ready(seq.thesis_key, seq.first_token)
        closed = self.closed
        if closed is not None:
            client = self.client_of.pop(seq.request_id)
            nxt = closed.make(seq.finish + closed.think, client)
            if nxt is not None:
                heapq.heappush(self.injected, (nxt[0], nxt[1], nxt[2], nxt[3], -1, client))

    def admitted(self, stream: Iterator[tuple], max_len: int) -> Iterator[tuple]:
        """The arrivals of ``stream`` of at most ``max_len`` tokens (prompt + output); the others
        are rejected before the engine sees them, as vLLM's server answers them 400, and
        counted in ``rejected``."""
        for request in stream:
            if request[2] + request[3] <= max_len:
                yield request
            else:
                self.rejected += 1

    @property
    def rejected_requests(self) -> int:
        """Requests rejected for holding more than ``max_model_len`` tokens."""
        return self.rejected + (self.closed.rejected if self.closed is not None else 0)

    def wake(self, r: int, t: float) -> None:
        """Schedule replica ``r``'s next step at ``t`` (its earlier wake-ups become stale)."""
        self.version[r] += 1
        self.order += 1
        heapq.heappush(self.events, (t, self.order, r, self.version[r]))

    def arrive(
        self, t: float, rid: int, n_in: int, n_out: int, session: int, ids: Any = None, thesis_key: Any = None
    ) -> None:
        """A request arrives: the edge caches may answer it, else the router places it. An empty
        prompt (0 tokens, e.g. BurstGPT's failed requests) is served as one token: the
        beginning-of-sequence token every tokenizer puts first."""
        n_in = n_in or 1
        seq = Seq(row=rid, request_id=rid, session_id=session, arrival=t, n_in=n_in, n_out=n_out, ids=ids)
        responses = self.responses
        if responses is not None and ids is not None:
            seq.response_key = ids.response_key
            if responses.lookup(ids.response_key, t):
                done = t + responses.latency_s
                seq.start = t
                seq.first_token = seq.finish = done
                seq.cached = n_in
                self.on_finish(seq, None)
                return
        thesis_cache = self.thesis_cache
        if thesis_cache is not None and thesis_key is not None:
            if thesis_cache.lookup(thesis_key, t, math.inf):
                seq.cached = max(0, n_in - 1)  # a hit skips the prefill (one token recomputed)
            else:
                seq.thesis_key = thesis_key
        replicas = self.replicas
        r = self.router.pick(seq, replicas)
        per_request, per_token = self.frontend[r]
        if per_request or per_token:
            # the replica's server processes requests one at a time before its engine sees them;
            # the request counts as outstanding there from now (routers see it)
            ready = max(t, self.frontend_free[r]) + per_request + per_token * n_in
            self.frontend_free[r] = ready
            replicas[r].outstanding += 1
            self.order += 1
            heapq.heappush(self.ready, (ready, self.order, r, seq))
        elif replicas[r].enqueue(seq, t):
            self.wake(r, replicas[r].now)

    def reach_engine(self) -> None:
        """The next request past its replica's frontend joins the replica's queue."""
        t, _, r, seq = heapq.heappop(self.ready)
        replica = self.replicas[r]
        replica.outstanding -= 1  # enqueue counts it again
        if replica.enqueue(seq, t):
            self.wake(r, replica.now)

    # -- emission ---------------------------------------------------------------------------------

    def emit_activity(self) -> None:
        """Emit what every replica did since the last call (one Activity per replica)."""
        busy = self.busy_utilization
        for r, replica in enumerate(self.replicas):
            log = replica.log
            if not log.t0 and not log.step_t:
                continue
            if log.t0:
                t0 = column(log.t0)
                t1 = column(log.t1)
                span = np.maximum(t1 - t0, 1e-300)
                kv_per_token = self.kv_per_token[r]
                kv0 = column(log.kv0) * kv_per_token
                kv1 = column(log.kv1) * kv_per_token
                pieces = {
                    "replica": np.full(t0.shape, r),
                    "t0": t0,
                    "t1": t1,
                    "utilization": np.full(t0.shape, busy),
                    "compute_fraction": np.minimum(1.0, column(log.compute_s) / span),
                    "memory_fraction": np.minimum(1.0, column(log.memory_s) / span),
                    "kv_bytes": kv0,
                    "kv_bytes_per_s": (kv1 - kv0) / span,
                    "extra": {
                        "batch_tokens": column(log.tokens),
                        "kv_blocks_used": column(log.blocks),
                    },
                    "detail": {name: column(getattr(log, name)) for name in DETAIL},
                    "mfu": np.minimum(1.0, column(log.flops) / (span * self.peak_flop_rate[r])),
                    "mbu": np.minimum(1.0, column(log.bytes) / (span * self.peak_byte_rate[r])),
                }
            else:
                empty = np.zeros(0)
                pieces = {
                    "replica": np.zeros(0, dtype=np.int64),
                    **dict.fromkeys(
                        ("t0", "t1", "utilization", "compute_fraction", "memory_fraction"), empty
                    ),
                    "kv_bytes": empty,
                    "kv_bytes_per_s": empty,
                    "extra": {"batch_tokens": empty, "kv_blocks_used": empty},
                }
            steps: dict[str, Any] = {}
            if log.step_t:
                steps = {
                    "step_replica": np.full(len(log.step_t), r),
                    "step_t": column(log.step_t),
                    "step_running": column(log.step_running),
                    "step_waiting": column(log.step_waiting),
                }
            self.observer.on_activity(Activity(**pieces, same_gpu_as=r, **steps))
            log.clear()

    def frontier(self, clock: float) -> float:
        """The earliest time a replica's activity can still be emitted for (a pending decode
        run is emitted when it ends or is cut short)."""
        return min([clock] + [rep.pending.start for rep in self.replicas if rep.pending is not None])

    def emit_records(self, final: bool = False) -> None:
        """Emit the finished requests' records once ``flush_size`` have gathered (or at the end)."""
        finished = self.finished
        if not finished or (not final and len(finished) < self.scenario.flush_size):
            return
        rec = records_from(finished)
        finished.clear()
        self.observer.on_requests(rec)

    # -- the loop ---------------------------------------------------------------------------------

    def run(self) -> BackendRun:
        scenario = self.scenario
        observer = self.observer
        replicas = self.replicas
        closed = self.closed
        injected = self.injected
        events = self.events
        version = self.version
        arrive = self.arrive
        wake = self.wake
        finished = self.finished
        ready = self.ready
        reach_engine = self.reach_engine
        flush_size = scenario.flush_size
        observer.on_start(self.info)
        need_ids = (
            self.cache is not None or self.responses is not None or scenario.router == "prefix_affinity"
        )
        if closed is None:
            stream = arrivals(scenario, self.source, need_ids, self.thesis_cache is not None)
            if scenario.max_model_len is not None:
                stream = self.admitted(stream, scenario.max_model_len)
        else:
            stream = iter(())
            for client in range(scenario.concurrency):
                nxt = closed.make(0.0, client)
                if nxt is not None:
                    heapq.heappush(injected, (nxt[0], nxt[1], nxt[2], nxt[3], -1, client))
        head = next(stream, None)
        heappop = heapq.heappop
        processed = 0
        fired = 0
        clock = 0.0
        emission_events = EMISSION_EVENTS_PER_REQUEST * flush_size
        next_emission = emission_events
        while True:
            t_stream = head[0] if head is not None else math.inf
            t_inject = injected[0][0] if injected else math.inf
            t_ready = ready[0][0] if ready else math.inf
            t_arrival = min(t_stream, t_inject)
            t_event = events[0][0] if events else math.inf
            if t_ready <= t_arrival and t_ready <= t_event and t_ready < math.inf:
                clock = t_ready  # past the frontend, before a step at the same instant
                fired += 1
                reach_engine()
                continue
            if t_event == math.inf and t_arrival == math.inf:
                break
            if t_event < t_arrival:  # arrivals at the same instant first: a step sees its whole queue
                t, _, r, v = heappop(events)
                if v != version[r]:
                    continue
                clock = t
                fired += 1
                end = replicas[r].step()
                if end is not None:
                    wake(r, end)
                if fired >= next_emission:
                    # many events since the last flush (a long drain of a queue, after the
                    # arrivals): emit what the replicas did, so memory does not grow with time
                    self.emit_activity()
                    observer.on_partial_frontier(self.frontier(clock))
                    next_emission = fired + emission_events
            else:
                clock = t_arrival
                if t_stream <= t_inject:
                    arrive(*head)
                    head = next(stream, None)
                else:
                    t, rid, n_in, n_out, session, client = heapq.heappop(injected)
                    self.client_of[rid] = client
                    arrive(t, rid, n_in, n_out, session)
                processed += 1
                if processed % flush_size == 0:
                    self.emit_activity()
                    observer.on_frontier(self.frontier(clock))
                    next_emission = fired + emission_events
                    if self.progress is not None:
                        self.progress(processed, clock)
            if len(finished) >= flush_size:
                self.emit_records()
        self.emit_activity()
        self.emit_records(final=True)
        check_released(replicas)
        observer.on_end(self.totals.end_s)
        return BackendRun(self.info, self.summary(fired + processed))

    def summary(self, engine_events: int) -> dict[str, Any]:
        """The serving backend's summary keys (GPU-seconds count every GPU of a replica)."""
        plans: list[ReplicaPlan] = self.plans
        replicas = self.replicas
        iterations = sum(r.iterations for r in replicas)
        out: dict[str, Any] = {
            "gpu_busy_s": sum(r.busy_s * r.gpus for r in replicas),
            "total_prefill_s": sum(r.prefill_s * r.gpus for r in replicas),
            "total_decode_s": sum(r.decode_s * r.gpus for r in replicas),
            "num_replicas": len(replicas),
            "preemptions": sum(r.preemptions for r in replicas),
            "rejected_requests": self.rejected_requests,
            "iterations": iterations,
            "mean_batch_size": sum(r.batch_sum for r in replicas) / iterations if iterations else 0.0,
            "model": plans[0].model.name,
            "gpu": plans[0].gpu.name,
            "tp": plans[0].tp,
            "pp": plans[0].pp,
            "scheduler": self.scenario.scheduler,
            "router": self.scenario.router,
            "engine": self.scenario.engine,
            "max_num_seqs": replicas[0].scheduler.max_running,
            "max_batched_tokens": getattr(replicas[0].scheduler, "max_batched_tokens", None),
            "chunked_prefill": getattr(replicas[0].scheduler, "chunked_prefill", None),
            "frontend_s_per_request": self.frontend[0][0],
            "frontend_s_per_token": self.frontend[0][1],
            "perf_profile_used": plans[0].profile or None,
            "perf_profile_note": plans[0].profile_note or None,
            "kv_bytes_per_token": plans[0].perf.kv_bytes_per_token,
            "kv_capacity_bytes": sum(p.kv_capacity_bytes for p in plans),
            "kv_blocks_total": sum(p.total_blocks for p in plans),
            "weight_bytes": plans[0].perf.weight_bytes,
            "prefix_cache_lookups": 0,
            "prefix_cache_hits": 0,
            "prefix_cache_hit_ratio": 0.0,
            "prefix_cache_evictions": 0,
            "prefix_cache_token_hit_ratio": 0.0,
            # what the caches saved is not timed by the serving engine (it needs the same run
            # without caches: --baseline fills these in)
            "saved_prefill_s": None,
            "saved_decode_s": None,
            "engine_events": engine_events,
        }
        out.update(cache_summary(self.cache, self.responses, self.thesis_cache, self.totals))
        return out


def column(values: array) -> np.ndarray:
    """A copy of a log column as float64 (the log's arrays are cleared and refilled)."""
    return np.array(values, dtype=np.float64)


def run_info(plans: list[ReplicaPlan], busy_utilization: float) -> RunInfo:
    """What observers need to know of the replicas (GPUs, KV memory) and of batched requests."""
    replicas = tuple(
        ReplicaInfo(
            p.gpu,
            p.gpus,
            kv_capacity_bytes=p.kv_capacity_bytes,
            kv_blocks_total=p.total_blocks,
            tp=p.tp,
            pp=p.pp,
            peak_flops=p.perf.flops,
        )
        for p in plans
    )
    return RunInfo(replicas, BatchShare(busy_utilization), SERIES_QUANTITIES)


def make_replicas(
    scenario: Scenario, plans: list[ReplicaPlan], cache: PrefixCacheSystem | None, on_finish: Any
) -> tuple[list[ServingReplica], list[tuple[float, float]]]:
    """One replica per plan, each with its own scheduler (the scenario's, with the knobs its
    engine preset resolves for the replica's GPU and model), and each replica's frontend costs
    (s per request, s per prompt token)."""
    replicas = []
    frontends = []
    for i, p in enumerate(plans):
        knobs = engine_knobs(scenario.engine, p.gpu, p.model, scenario, p.total_blocks * scenario.block_size)
        # the engine's continuous batching (SGLang's) unless the scenario names another scheduler
        name = knobs.batching if knobs.batching and scenario.scheduler == "continuous" else scenario.scheduler
        scheduler = SCHEDULERS.get(name)
        settings = SchedulerSettings(
            max_num_seqs=knobs.max_num_seqs,
            max_batched_tokens=knobs.max_batched_tokens,
            chunked_prefill=knobs.chunked_prefill,
            admit_after_preemption=knobs.admit_after_preemption,
            watermark_fraction=knobs.watermark_fraction,
        )
        replicas.append(
            ServingReplica(
                i, p.perf, scheduler(settings), scenario.block_size, p.total_blocks, p.gpus, on_finish, cache
            )
        )
        frontends.append((knobs.frontend_s_per_request, knobs.frontend_s_per_token))
    return replicas, frontends


def make_response_cache(scenario: Scenario) -> ResponseCache | None:
    """The edge prompt-response cache of ``--response-cache on``, or None."""
    if not scenario.response_cache:
        return None
    return ResponseCache(scenario.response_cache_size, scenario.response_cache_latency)


def make_thesis_cache(scenario: Scenario) -> ThesisPrefixCache | None:
    """The thesis prefix cache of ``--prefix-cache thesis`` (with ``prefix_len > 0``), or None."""
    if scenario.prefix_cache == "thesis" and scenario.prefix_len > 0:
        return ThesisPrefixCache(scenario.prefix_cache_size)
    return None


def arrivals(
    scenario: Scenario, source: WorkloadSource | None, need_ids: bool = False, thesis: bool = False
) -> Iterator[tuple]:
    """(arrival_s, request_id, n_in, n_out, session_id[, ids, thesis_key]) in arrival order."""
    from kavier.workload.build import workload_source

    src = source if source is not None else workload_source(scenario)
    session_scope = scenario.cache_scope == "session"
    for chunk in src.chunks(scenario.flush_size):
        c: RequestChunk = chunk
        columns = [
            c.arrival_s.tolist(),
            c.request_id.tolist(),
            c.num_input_tokens.tolist(),
            c.num_output_tokens.tolist(),
            c.session_id.tolist(),
        ]
        if need_ids or thesis:
            columns.append(prefix_ids(c, scenario.block_size, session_scope) if need_ids else [None] * len(c))
        if thesis:
            columns.append(prefix_keys(c, scenario.prefix_len, scenario.prefix_cache_scope == "session"))
        yield from zip(*columns, strict=True)


def check_released(replicas: list[ServingReplica]) -> None:
    """Invariant at the end of a run: every KV block is free or held by an evictable cache entry."""
    for rep in replicas:
        store = rep.store
        cached = sum(e.blocks for e in store.entries.values()) if store is not None else 0
        evictable = store.evictable_blocks if store is not None else 0
        if rep.free_blocks != rep.total_blocks or cached != evictable or rep.running or rep.waiting:
            raise AssertionError(
                f"replica {rep.index}: {rep.free_blocks} of {rep.total_blocks} blocks free, "
                f"{evictable} evictable of {cached} cached, {len(rep.running)} running at the end"
            )


def make_prefix_cache(scenario: Scenario, plans: list[ReplicaPlan]) -> PrefixCacheSystem | None:
    """The block prefix cache of ``--prefix-cache block``, or None."""
    if scenario.prefix_cache != "block":
        return None
    capacity = scenario.cache_capacity_tokens
    if scenario.cache_capacity_bytes:
        capacity = max(1, int(scenario.cache_capacity_bytes // plans[0].perf.kv_bytes_per_token))
    return PrefixCacheSystem(
        len(plans),
        [p.perf.kv_bytes_per_token for p in plans],
        scenario.block_size,
        scope=scenario.cache_scope,
        policy=scenario.cache_eviction,
        capacity_tokens=capacity,
        ttl_s=scenario.cache_ttl,
        tiers=parse_tiers(scenario.cache_tiers),
        tier_policy=scenario.cache_tier_policy,
        seed=scenario.seed,
    )


def cache_summary(
    cache: PrefixCacheSystem | None,
    responses: ResponseCache | None,
    thesis_cache: ThesisPrefixCache | None,
    totals: SummaryAccumulator,
) -> dict[str, Any]:
    """The prefix- and response-cache keys of summary.json."""
    out: dict[str, Any] = {}
    if cache is not None:
        out.update(cache.summary())
    elif thesis_cache is not None:
        n = totals.num_requests
        out.update(
            {
                "prefix_cache_lookups": thesis_cache.lookups,
                "prefix_cache_hits": thesis_cache.hits,
                "prefix_cache_hit_ratio": thesis_cache.hits / n if n else 0.0,
                "prefix_cache_evictions": thesis_cache.evictions,
                "prefix_cache_token_hit_ratio": (
                    totals.cached_tokens / totals.input_tokens if totals.input_tokens else 0.0
                ),
            }
        )
    out["response_cache_lookups"] = responses.lookups if responses else 0
    out["response_cache_hits"] = responses.hits if responses else 0
    return out
