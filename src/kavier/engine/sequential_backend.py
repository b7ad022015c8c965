"""The sequential backend: the thesis's GPUs, each running one request at a time.

Requests come in chunks; the thesis performance model times each request's prefill and decode,
:class:`~kavier.engine.sequential.SequentialCluster` places them FCFS on the next free GPU (with
the thesis prefix cache), and each chunk's records and GPU activity go to the observers. The
time series may be written up to the chunk's last arrival, since later requests start later.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from kavier.cache.prefix_thesis import ThesisPrefixCache, prefix_keys
from kavier.engine.backend import BackendRun, Progress
from kavier.engine.records import request_table
from kavier.engine.sequential import SequentialCluster
from kavier.engine.sequential_activity import activity_segments, count_steps
from kavier.engine.system import resolve_system
from kavier.errors import ScenarioError
from kavier.events import Activity, Observer, ReplicaInfo, RunInfo
from kavier.metrics import SummaryAccumulator
from kavier.perf.thesis import ThesisPerfModel
from kavier.perf.utilization import UtilizationProfile
from kavier.scenario import Scenario
from kavier.workload.build import workload_source
from kavier.workload.source import WorkloadSource


def check_sequential(scenario: Scenario) -> None:
    """What the thesis model cannot run (one-line errors naming the alternative)."""
    if scenario.prefix_cache == "block" or scenario.response_cache:
        raise ScenarioError(
            "the block prefix cache and the response cache need the serving engine; with --preset thesis "
            "use --prefix-cache thesis (and --prefix-cache-policy full for prompt-response caching)"
        )
    if scenario.scheduler != "sequential":
        raise ScenarioError(
            f"scheduler {scenario.scheduler!r} needs the serving performance model; the thesis model runs "
            "one request at a time (use --preset serving, or --scheduler sequential)"
        )


class SequentialBackend:
    """GPUs running one request at a time, timed by the thesis model (see the module docstring)."""

    def run(
        self,
        scenario: Scenario,
        source: WorkloadSource | None,
        observer: Observer,
        totals: SummaryAccumulator,
        progress: Progress | None,
    ) -> BackendRun:
        check_sequential(scenario)
        system = resolve_system(scenario)
        perf = ThesisPerfModel(
            model=system.model,
            gpu=system.gpu,
            compute_efficiency=scenario.compute_efficiency,
            memory_efficiency=scenario.memory_efficiency,
            overhead_s=scenario.overhead_s,
            kv_cache=scenario.kv_cache,
        )
        profile = UtilizationProfile(
            busy=scenario.busy_utilization,
            edge=scenario.edge_utilization,
            warmup_s=scenario.warmup_s,
            cooldown_s=scenario.cooldown_s,
        )
        use_cache = scenario.prefix_cache == "thesis" and scenario.prefix_len > 0
        cache = ThesisPrefixCache(scenario.prefix_cache_size) if use_cache else None
        cluster = SequentialCluster(scenario.gpus, cache, scenario.prefix_cache_policy)
        kv_per_token = system.model.kv_bytes_per_token(2.0) if scenario.kv_cache else 0.0
        gpu = ReplicaInfo(gpu=system.gpu, gpus=1, kv_capacity_bytes=system.kv_capacity_bytes)
        info = RunInfo(replicas=(gpu,) * scenario.gpus, request_utilization=profile)
        observer.on_start(info)
        decode_c, decode_m = perf.decode_activity()
        session_scope = scenario.prefix_cache_scope == "session"
        saved_prefill_s = saved_decode_s = 0.0  # GPU-seconds the caches saved
        done, end_s = 0, 0.0
        if source is None:
            source = workload_source(scenario)
        for chunk in source.chunks(scenario.flush_size):
            if len(chunk) == 0:
                continue
            keys = (
                prefix_keys(chunk, scenario.prefix_len, session_scope)
                if cache is not None
                else [None] * len(chunk)
            )
            full_prefill = perf.prefill_s(chunk.num_input_tokens)
            full_decode = perf.decode_s(chunk.num_output_tokens)
            times = cluster.process(chunk.arrival_s, full_prefill, full_decode, keys)
            saved_prefill_s += float(np.sum(full_prefill - times.prefill_s))
            saved_decode_s += float(np.sum(full_decode - times.decode_s))
            rec = request_table(chunk, times, perf.first_token_offset_s())
            observer.on_requests(rec)
            seg = activity_segments(rec, profile, kv_per_token)
            pre_c, pre_m = perf.prefill_activity(rec["num_input_tokens"][seg.row])
            step_replica, step_t, deltas = count_steps(rec)
            observer.on_activity(
                Activity(
                    replica=seg.replica,
                    t0=seg.t0,
                    t1=seg.t1,
                    utilization=seg.util,
                    compute_fraction=np.where(seg.in_prefill, pre_c, decode_c),
                    memory_fraction=np.where(seg.in_prefill, pre_m, decode_m),
                    kv_bytes=seg.kv0,
                    kv_bytes_per_s=seg.kv_slope,
                    step_replica=step_replica,
                    step_t=step_t,
                    step_running=deltas["running"],
                    step_waiting=deltas["waiting"],
                )
            )
            observer.on_frontier(float(chunk.arrival_s[-1]))
            done += len(chunk)
            end_s = max(end_s, float(rec["finish_s"].max()))
            if progress is not None:
                progress(done, end_s)
        observer.on_end(totals.end_s)
        summary: dict[str, Any] = {
            "num_replicas": scenario.gpus,
            "preemptions": 0,
            "mean_batch_size": 1.0 if totals.num_requests else 0.0,
            "model": system.model.name,
            "gpu": system.gpu.name,
            "tp": 1,
            "pp": 1,
            "scheduler": "sequential",
            "time_per_output_token_s": perf.time_per_token_s,
            "kv_bytes_per_token": system.model.kv_bytes_per_token(2.0),
            "kv_capacity_bytes": system.kv_capacity_bytes,
            "weight_bytes": system.weight_bytes,
            "prefix_cache_lookups": cache.lookups if cache else 0,
            "prefix_cache_hits": cache.hits if cache else 0,
            "prefix_cache_hit_ratio": (cache.hits / totals.num_requests)
            if cache and totals.num_requests
            else 0.0,
            "prefix_cache_evictions": cache.evictions if cache else 0,
            "prefix_cache_token_hit_ratio": (
                totals.cached_tokens / totals.input_tokens if cache and totals.input_tokens else 0.0
            ),
            "saved_prefill_s": saved_prefill_s,
            "saved_decode_s": saved_decode_s,
        }
        return BackendRun(info, summary)
