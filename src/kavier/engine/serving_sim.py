"""The serving pipeline: workload -> router -> continuous-batching replicas -> records, series.

One event loop moves time: the next arrival (from the workload stream, or injected by closed-loop
clients when a request finishes) or the next replica event (the end of an iteration or of a
closed-form decode run), whichever comes first.
"""

from __future__ import annotations

import gc
import heapq
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from kavier.cache.hierarchy import PrefixCacheSystem, parse_tiers
from kavier.cache.keys import prefix_ids
from kavier.cache.prefix_thesis import ThesisPrefixCache, prefix_keys
from kavier.cache.response import ResponseCache
from kavier.efficiency.costs import cost_and_efficiency  # noqa: F401  (re-exported for callers)
from kavier.energy.accounting import EnergyAccountant
from kavier.energy.resolve import energy_setup, power_model
from kavier.engine.records import REQUEST_COLUMNS
from kavier.engine.replica import Seq, ServingReplica
from kavier.engine.routers import RouterSetup, make_router
from kavier.engine.schedulers.base import SchedulerSettings
from kavier.engine.timeseries import TimeseriesBuilder
from kavier.errors import ScenarioError
from kavier.io.columns import arrow_table
from kavier.io.opendc import FRAGMENT_SCHEMA, duration_ms, tasks_table
from kavier.io.sinks import ROW_GROUP_ROWS
from kavier.library.catalog import load_catalog
from kavier.library.spec import GpuSpec, ModelSpec
from kavier.metrics import SummaryAccumulator
from kavier.perf.serving import ServingPerfModel, ServingPerfParams
from kavier.registry import SCHEDULERS
from kavier.scenario import Scenario
from kavier.units import GIB, MIB
from kavier.workload.chunk import RequestChunk

SERVING_SERIES = (
    "time_s",
    "replica",
    "gpu_utilization",
    "kv_used_bytes",
    "kv_capacity_bytes",
    "running",
    "waiting",
    "power_w",
    "energy_j",
    "carbon_intensity_g_per_kwh",
    "co2_g",
    "interval_s",
    "batch_tokens",
    "kv_blocks_used",
)


@dataclass
class ReplicaPlan:
    """One replica's hardware, model and capacity."""

    model: ModelSpec
    gpu: GpuSpec
    tp: int
    pp: int
    perf: ServingPerfModel
    total_blocks: int
    kv_capacity_bytes: float

    @property
    def gpus(self) -> int:
        return self.tp * self.pp


def load_perf_params(scenario: Scenario, tp: int | None = None) -> ServingPerfParams:
    """The serving model's constants: scenario values, replaced by a calibrated profile if given
    (its ``[tp.<tp>]`` table's for a replica at tensor-parallel degree ``tp``, if it has one)."""
    params = ServingPerfParams(
        compute_efficiency=scenario.compute_efficiency,
        memory_efficiency=scenario.memory_efficiency,
        prefill_overhead_s=scenario.overhead_s,
        iteration_overhead_s=scenario.iteration_overhead_s,
        decode_seq_overhead_s=scenario.decode_seq_overhead_s,
        prefill_seq_overhead_s=scenario.prefill_seq_overhead_s,
        attention_efficiency=scenario.attention_efficiency,
        comm_efficiency=scenario.comm_efficiency,
        comm_latency_s=scenario.comm_latency_s,
        comm_cache_bytes=scenario.comm_cache_bytes,
        comm_spill_efficiency=scenario.comm_spill_efficiency,
        context_terms=scenario.context_terms,
    )
    if scenario.perf_profile:
        from kavier.perf.profile import load_profile

        params = load_profile(scenario.perf_profile, params, tp=tp)
    return params


def plan_replicas(scenario: Scenario) -> list[ReplicaPlan]:
    """Resolve every replica's model, GPU, parallelism and KV capacity (one-line errors)."""
    catalog = load_catalog(scenario.catalog)
    params_by_tp: dict[int, ServingPerfParams] = {}
    groups = scenario.replica_groups or [{"count": scenario.num_replicas}]
    plans: list[ReplicaPlan] = []
    for g_index, group in enumerate(groups):
        unknown = set(group) - {"count", "gpu", "llm", "tp", "pp", "weight_dtype", "kv_dtype"}
        if unknown:
            raise ScenarioError(f"replica_groups[{g_index}]: unknown keys {sorted(unknown)}")
        model = catalog.model(group.get("llm", scenario.llm))
        gpu = catalog.gpu(group.get("gpu", scenario.gpu))
        tp, pp = int(group.get("tp", scenario.tp)), int(group.get("pp", scenario.pp))
        if tp not in params_by_tp:
            params_by_tp[tp] = load_perf_params(scenario, tp)
        perf = ServingPerfModel(
            model,
            gpu,
            params_by_tp[tp],
            tp=tp,
            pp=pp,
            weight_dtype=group.get("weight_dtype", scenario.weight_dtype),
            kv_dtype=group.get("kv_dtype", scenario.kv_dtype),
        )
        usable = gpu.memory_bytes * scenario.gpu_memory_utilization - scenario.activation_reserve_gib * GIB
        free = usable - perf.weight_bytes_per_gpu
        if free <= 0:
            need = (perf.weight_bytes_per_gpu + scenario.activation_reserve_gib * GIB) / GIB
            raise ScenarioError(
                f"{model.name} ({perf.weight_dtype}) needs {need:.1f} GiB per GPU with tp={tp} pp={pp} "
                f"(weights {perf.weight_bytes_per_gpu / GIB:.1f} GiB + activations "
                f"{scenario.activation_reserve_gib:g} GiB) but a {gpu.name} offers "
                f"{gpu.memory_bytes * scenario.gpu_memory_utilization / GIB:.1f} GiB at "
                f"gpu_memory_utilization {scenario.gpu_memory_utilization}; raise --tp, use --weight-dtype "
                "fp8/int8/int4, or choose a GPU with more memory"
            )
        kv_bytes = free * tp * pp
        blocks = int(kv_bytes // (scenario.block_size * perf.kv_bytes_per_token))
        if blocks < 1:
            raise ScenarioError(f"{model.name} on {gpu.name}: no room for a single KV block")
        for _ in range(int(group.get("count", 1))):
            plans.append(ReplicaPlan(model, gpu, tp, pp, perf, blocks, kv_bytes))
    return plans


class ClosedLoop:
    """``concurrency`` clients, each sending its next request when its previous one finishes
    (plus ``think_time_s``), until ``num_requests`` have been sent."""

    def __init__(self, scenario: Scenario) -> None:
        from kavier.workload.lengths import parse_length

        self.rng = np.random.default_rng(scenario.seed)
        self.total = scenario.num_requests
        self.think = scenario.think_time_s
        self.input_len = parse_length(scenario.input_tokens)
        self.output_len = parse_length(scenario.output_tokens)
        self.sent = 0

    def make(self, t: float, client: int) -> tuple[float, int, int, int] | None:
        """The client's next request (arrival, id, input, output), or None when all are sent."""
        if self.sent >= self.total:
            return None
        rid = self.sent
        self.sent += 1
        n_in = int(self.input_len.sample(self.rng, 1)[0])
        n_out = int(self.output_len.sample(self.rng, 1)[0])
        return t, rid, n_in, n_out


# Gen-0 threshold of the cyclic garbage collector while a serving run goes on (CPython's default
# is 700). A run allocates and frees some 10^5-10^6 small tracked objects (prefix-cache entries,
# sequences, tuples): at 700 the collector runs ~130 times on the Mooncake trace and walks the
# live cache each time (~0.1 s of a 1.2 s run). The engine makes no reference cycles to reclaim
# early; the threshold is restored when the run ends.
GC_GEN0_THRESHOLD = 20_000


def run_serving(
    scenario: Scenario,
    sink: Any,
    progress: Callable[[int, float], None] | None = None,
    source: Any = None,
) -> dict[str, Any]:
    """Simulate a serving scenario into ``sink``; returns the summary dict."""
    before = gc.get_threshold()
    if before[0] < GC_GEN0_THRESHOLD:
        gc.set_threshold(GC_GEN0_THRESHOLD, *before[1:])
    try:
        return _run_serving(scenario, sink, progress, source)
    finally:
        gc.set_threshold(*before)


def _run_serving(
    scenario: Scenario,
    sink: Any,
    progress: Callable[[int, float], None] | None,
    source: Any,
) -> dict[str, Any]:
    wall_start = time.perf_counter()
    plans = plan_replicas(scenario)
    first = plans[0]
    energy = energy_setup(scenario, first.gpu)
    settings = SchedulerSettings(
        max_num_seqs=scenario.max_num_seqs,
        max_batched_tokens=scenario.max_batched_tokens,
        chunked_prefill=scenario.chunked_prefill,
    )
    scheduler = SCHEDULERS.get(scenario.scheduler)
    busy_utilization = scenario.busy_utilization
    finished: list[tuple[Seq, int, float]] = []
    cache = make_prefix_cache(scenario, plans)
    responses = (
        ResponseCache(scenario.response_cache_size, scenario.response_cache_latency)
        if scenario.response_cache
        else None
    )
    thesis_cache = (
        ThesisPrefixCache(scenario.prefix_cache_size)
        if scenario.prefix_cache == "thesis" and scenario.prefix_len > 0
        else None
    )
    closed = ClosedLoop(scenario) if (scenario.workload == "closed-loop" and not scenario.trace) else None
    injected: list[tuple[float, int, int, int, int, int]] = []  # (t, id, n_in, n_out, session, client)
    client_of: dict[int, int] = {}

    def on_finish(seq: Seq, replica: ServingReplica | None) -> None:
        if replica is None:  # answered by the prompt-response cache
            finished.append((seq, -1, 0.0))
        else:
            finished.append((seq, replica.index, replica.batch_sum / max(replica.iterations, 1)))
            if responses is not None:
                responses.answered(seq.response_key, seq.finish)
            if thesis_cache is not None and seq.thesis_key is not None:
                thesis_cache.set_ready(seq.thesis_key, seq.first_token)
        if closed is not None:
            client = client_of.pop(seq.request_id)
            nxt = closed.make(seq.finish + closed.think, client)
            if nxt is not None:
                heapq.heappush(injected, (nxt[0], nxt[1], nxt[2], nxt[3], -1, client))

    replicas = [
        ServingReplica(
            i, p.perf, scheduler(settings), scenario.block_size, p.total_blocks, p.gpus, on_finish, cache
        )
        for i, p in enumerate(plans)
    ]
    router = make_router(scenario.router, RouterSetup(scenario.seed, cache, scenario.affinity_load_guard))
    reps = len(replicas)
    # Per-replica power models (heterogeneous groups may mix GPUs).
    powers = [power_model(scenario, p.gpu) for p in plans]
    idle = np.array([pw.idle_power_w * p.gpus for pw, p in zip(powers, plans, strict=True)])
    series = TimeseriesBuilder(
        reps,
        scenario.export_rate,
        segment_quantities=(
            "gpu_utilization",
            "kv_used_bytes",
            "power_excess_w",
            "batch_tokens",
            "kv_blocks_used",
        ),
        count_quantities=("running", "waiting"),
        constants={"kv_capacity_bytes": np.array([p.kv_capacity_bytes for p in plans])},
        piece_rows=ROW_GROUP_ROWS,
    )
    start_epoch_s = scenario.start_time.timestamp()
    accountant = EnergyAccountant(reps, idle, start_epoch_s, energy.intensity, energy.pue)
    summary = SummaryAccumulator()
    util_integral = [0.0, 0.0]  # utilisation x s, and KV-block occupancy fraction x s
    blocks_total = np.array([p.total_blocks for p in plans], dtype=np.float64)

    from kavier.engine.simulator import check_series_coverage

    def emit(tables: Iterator[pa.Table]) -> None:
        for table in tables:
            check_series_coverage(energy, scenario, start_epoch_s, table)
            width = table.column("interval_s")
            util_integral[0] += pc.sum(pc.multiply(table.column("gpu_utilization"), width)).as_py()
            occupancy = (
                table.column("kv_blocks_used").to_numpy() / blocks_total[table.column("replica").to_numpy()]
            )
            util_integral[1] += float(np.sum(occupancy * width.to_numpy()))
            table = accountant.augment(table)
            sink.timeseries(table.select(list(SERVING_SERIES)))

    def drain_logs() -> None:
        for r, replica in enumerate(replicas):
            log = replica.log
            if log.t0:
                t0 = np.asarray(log.t0)
                t1 = np.asarray(log.t1)
                span = np.maximum(t1 - t0, 1e-300)
                kv_per_token = plans[r].perf.kv_bytes_per_token
                kv0 = np.asarray(log.kv0) * kv_per_token
                kv1 = np.asarray(log.kv1) * kv_per_token
                c = np.minimum(1.0, np.asarray(log.compute_s) / span)
                m = np.minimum(1.0, np.asarray(log.memory_s) / span)
                util = np.full(t0.shape, busy_utilization)
                excess = (powers[r].power_w(util, c, m) - powers[r].idle_power_w) * plans[r].gpus
                series.add_segments(
                    np.full(t0.shape, r),
                    t0,
                    t1,
                    {
                        "gpu_utilization": (util, None),
                        "kv_used_bytes": (kv0, (kv1 - kv0) / span),
                        "power_excess_w": (excess, None),
                        "batch_tokens": (np.asarray(log.tokens), None),
                        "kv_blocks_used": (np.asarray(log.blocks, dtype=np.float64), None),
                    },
                )
            if log.step_t:
                series.add_steps(
                    np.full(len(log.step_t), r),
                    np.asarray(log.step_t),
                    {
                        "running": np.asarray(log.step_running, float),
                        "waiting": np.asarray(log.step_waiting, float),
                    },
                )
            log.clear()

    def flush_records(final: bool = False) -> None:
        if not finished or (not final and len(finished) < scenario.flush_size):
            return
        rec = records_from(finished)
        finished.clear()
        summary.add(rec)
        sink.requests(arrow_table({k: rec[k] for k in REQUEST_COLUMNS}))
        if scenario.opendc:
            capacity = first.gpu.capacity_mhz
            sink.opendc_tasks(
                tasks_table(
                    rec, int(round(start_epoch_s * 1000)), capacity, int(first.gpu.memory_bytes // MIB)
                )
            )
            sink.opendc_fragments(serving_fragments(rec, scenario.export_rate, capacity, busy_utilization))

    # -- the event loop -------------------------------------------------------------------------
    events: list[tuple[float, int, int, int]] = []  # (time, order, replica, version)
    version = [0] * reps
    order = 0

    def wake(r: int, t: float) -> None:
        nonlocal order
        version[r] += 1
        order += 1
        heapq.heappush(events, (t, order, r, version[r]))

    def arrive(
        t: float, rid: int, n_in: int, n_out: int, session: int, ids: Any = None, thesis_key: Any = None
    ) -> None:
        seq = Seq(row=rid, request_id=rid, session_id=session, arrival=t, n_in=n_in, n_out=n_out, ids=ids)
        if responses is not None and ids is not None:
            seq.response_key = ids.response_key
            if responses.lookup(ids.response_key, t):
                done = t + responses.latency_s
                seq.start = t
                seq.first_token = seq.finish = done
                seq.cached = n_in
                on_finish(seq, None)
                return
        if thesis_cache is not None and thesis_key is not None:
            if thesis_cache.lookup(thesis_key, t, math.inf):
                seq.cached = max(0, n_in - 1)  # a hit skips the prefill (one token recomputed)
            else:
                seq.thesis_key = thesis_key
        r = router.pick(seq, replicas)
        if replicas[r].enqueue(seq, t):
            wake(r, replicas[r].now)

    need_ids = cache is not None or responses is not None or scenario.router == "prefix_affinity"
    stream = _arrivals(scenario, source, need_ids, thesis_cache is not None) if closed is None else iter(())
    if closed is not None:
        for client in range(scenario.concurrency):
            nxt = closed.make(0.0, client)
            if nxt is not None:
                heapq.heappush(injected, (nxt[0], nxt[1], nxt[2], nxt[3], -1, client))
    head = next(stream, None)
    heappop = heapq.heappop
    processed = 0
    fired = 0
    clock = 0.0
    while True:
        t_stream = head[0] if head is not None else math.inf
        t_inject = injected[0][0] if injected else math.inf
        t_arrival = min(t_stream, t_inject)
        t_event = events[0][0] if events else math.inf
        if t_event == math.inf and t_arrival == math.inf:
            break
        if t_event <= t_arrival:
            t, _, r, v = heappop(events)
            if v != version[r]:
                continue
            clock = t
            fired += 1
            end = replicas[r].step()
            if end is not None:
                wake(r, end)
        else:
            clock = t_arrival
            if t_stream <= t_inject:
                arrive(*head)
                head = next(stream, None)
            else:
                t, rid, n_in, n_out, session, client = heapq.heappop(injected)
                client_of[rid] = client
                arrive(t, rid, n_in, n_out, session)
            processed += 1
            if processed % scenario.flush_size == 0:
                drain_logs()
                frontier = min([clock] + [rep.pending.start for rep in replicas if rep.pending is not None])
                emit(series.emit_until(frontier))
                if progress is not None:
                    progress(processed, clock)
        if len(finished) >= scenario.flush_size:
            flush_records()
    drain_logs()
    flush_records(final=True)
    check_released(replicas)
    emit(series.finish(summary.end_s))
    if summary.num_requests == 0:
        raise ScenarioError("the workload holds no requests; check the trace or generator settings")
    result = serving_summary(
        scenario, plans, replicas, summary, accountant, energy, util_integral, wall_start
    )
    result.update(cache_summary(cache, responses, thesis_cache, summary.num_requests))
    if thesis_cache is not None and result["input_tokens"]:
        result["prefix_cache_token_hit_ratio"] = result["cached_tokens"] / result["input_tokens"]
    result["engine_events"] = fired + processed
    wall = result["wall_time_s"]
    result["events_per_wall_s"] = (fired + processed) / wall if wall > 0 else math.nan
    result["simulated_s_per_wall_s"] = result["simulated_time_s"] / wall if wall > 0 else math.nan
    return result


def _arrivals(
    scenario: Scenario, source: Any, need_ids: bool = False, thesis: bool = False
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


def records_from(finished: list[tuple[Seq, int, float]]) -> dict[str, np.ndarray]:
    """The contract's per-request columns of finished sequences, sorted by request id."""
    finished = sorted(finished, key=lambda f: f[0].request_id)
    seqs = [f[0] for f in finished]
    arrival = np.array([s.arrival for s in seqs])
    start = np.array([s.start for s in seqs])
    first = np.array([s.first_token for s in seqs])
    finish = np.array([s.finish for s in seqs])
    n_out = np.array([s.n_out for s in seqs], dtype=np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        tpot = np.where(n_out >= 2, (finish - first) / np.maximum(n_out - 1, 1), np.nan)
    return {
        "request_id": np.array([s.request_id for s in seqs], dtype=np.int64),
        "session_id": np.array([s.session_id for s in seqs], dtype=np.int64),
        "arrival_s": arrival,
        "start_s": start,
        "first_token_s": first,
        "finish_s": finish,
        "num_input_tokens": np.array([s.n_in for s in seqs], dtype=np.int64),
        "num_output_tokens": n_out,
        "cached_tokens": np.array([s.cached for s in seqs], dtype=np.int64),
        "queue_s": start - arrival,
        "prefill_s": first - start,
        "decode_s": finish - first,
        "ttft_s": first - arrival,
        "tpot_s": tpot,
        "e2e_s": finish - arrival,
        "replica": np.array([f[1] for f in finished], dtype=np.int32),
        "preemptions": np.array([s.preemptions for s in seqs], dtype=np.int32),
        "_batch": np.array([f[2] for f in finished]),
    }


def cache_summary(
    cache: PrefixCacheSystem | None,
    responses: ResponseCache | None,
    thesis_cache: ThesisPrefixCache | None,
    num_requests: int,
) -> dict[str, Any]:
    """The prefix- and response-cache keys of summary.json."""
    out: dict[str, Any] = {}
    if cache is not None:
        out.update(cache.summary())
    elif thesis_cache is not None:
        out.update(
            {
                "prefix_cache_lookups": thesis_cache.lookups,
                "prefix_cache_hits": thesis_cache.hits,
                "prefix_cache_hit_ratio": thesis_cache.hits / num_requests if num_requests else 0.0,
                "prefix_cache_evictions": thesis_cache.evictions,
                "prefix_cache_token_hit_ratio": 0.0,
            }
        )
    out["response_cache_lookups"] = responses.lookups if responses else 0
    out["response_cache_hits"] = responses.hits if responses else 0
    return out


def serving_fragments(
    rec: dict[str, np.ndarray], export_rate_s: float, capacity_mhz: float, busy: float
) -> pa.Table:
    """OpenDC fragments of batched requests: a request's share of its replica's GPU (busy
    utilisation / mean batch size) over its service time, at the export rate."""
    frag_ms = max(1, int(round(export_rate_s * 1000.0)))
    total = duration_ms(rec["finish_s"] - rec["start_s"])
    counts = np.maximum(total // frag_ms, 1)
    owner = np.repeat(np.arange(counts.size), counts)
    first_row = np.cumsum(counts) - counts
    j = np.arange(owner.size) - first_row[owner]
    dur = np.full(owner.size, frag_ms, dtype=np.int64)
    last = np.cumsum(counts) - 1
    dur[last] = total - j[last] * frag_ms
    usage = np.round(capacity_mhz * busy / np.maximum(rec["_batch"], 1.0), 3)[owner]
    return arrow_table(
        {
            "id": rec["request_id"].astype(np.int32)[owner],
            "duration": dur,
            "cpu_usage": np.zeros(owner.size),
            "gpu_usage": usage,
        },
        schema=FRAGMENT_SCHEMA,
    )


def serving_summary(
    scenario: Scenario,
    plans: list[ReplicaPlan],
    replicas: list[ServingReplica],
    summary: SummaryAccumulator,
    accountant: EnergyAccountant,
    energy: Any,
    integrals: list[float],
    wall_start: float,
) -> dict[str, Any]:
    """summary.json of a serving run."""
    from kavier.engine.simulator import System, energy_summary, thesis_efficiency

    result = summary.result()
    gpus = sum(p.gpus for p in plans)
    end = summary.end_s
    busy = sum(r.busy_s * r.gpus for r in replicas)
    result["gpu_busy_s"] = busy
    result["total_prefill_s"] = sum(r.prefill_s * r.gpus for r in replicas)
    result["total_decode_s"] = sum(r.decode_s * r.gpus for r in replicas)
    iterations = sum(r.iterations for r in replicas)
    result.update(summary.serving_metrics(scenario.slo_ttft, scenario.slo_tpot))
    result.update(
        {
            "num_gpus": gpus,
            "num_replicas": len(replicas),
            "preemptions": sum(r.preemptions for r in replicas),
            "iterations": iterations,
            "mean_batch_size": sum(r.batch_sum for r in replicas) / iterations if iterations else 0.0,
            "kv_utilization_mean": integrals[1] / (len(replicas) * end) if end > 0 else 0.0,
            "gpu_utilization_mean": integrals[0] / (len(replicas) * end) if end > 0 else 0.0,
            "model": plans[0].model.name,
            "gpu": plans[0].gpu.name,
            "tp": plans[0].tp,
            "pp": plans[0].pp,
            "preset": scenario.preset,
            "scheduler": scenario.scheduler,
            "router": scenario.router,
            "kv_bytes_per_token": plans[0].perf.kv_bytes_per_token,
            "kv_capacity_bytes": sum(p.kv_capacity_bytes for p in plans),
            "kv_blocks_total": sum(p.total_blocks for p in plans),
            "weight_bytes": plans[0].perf.weight_bytes,
            "prefix_cache_lookups": 0,
            "prefix_cache_hits": 0,
            "prefix_cache_hit_ratio": 0.0,
            "prefix_cache_evictions": 0,
            "prefix_cache_token_hit_ratio": 0.0,
        }
    )
    system = System(
        model=plans[0].model,
        gpu=plans[0].gpu,
        weight_bytes=plans[0].perf.weight_bytes,
        kv_capacity_bytes=plans[0].kv_capacity_bytes,
    )
    scen = scenario.model_copy(update={"gpus": gpus})
    result.update(energy_summary(scen, system, summary, accountant, energy))
    result.update(thesis_efficiency(result, 0.0, 0.0))
    result["wall_time_s"] = time.perf_counter() - wall_start
    return result
