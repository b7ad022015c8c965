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
from kavier.events import Activity, Observer, Records, ReplicaInfo, RunInfo
from kavier.metrics import SummaryAccumulator
from kavier.perf.thesis import ThesisPerfModel
from kavier.perf.utilization import UtilizationProfile
from kavier.scenario import Scenario
from kavier.settings.scope import value_error
from kavier.workload.build import workload_source
from kavier.workload.chunk import RequestChunk
from kavier.workload.source import WorkloadSource


def check_sequential(scenario: Scenario) -> None:
    """What the thesis model cannot run (one-line errors naming the alternative): the scenario's
    own validation (:func:`kavier.settings.scope.value_error`), again for a scenario copied
    without it."""
    message = value_error(scenario)
    if message:
        raise ScenarioError(message)


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
        state = SequentialRun(scenario, observer)
        observer.on_start(state.info)
        done, end_s = 0, 0.0
        if source is None:
            source = workload_source(scenario)
        for chunk in source.chunks(scenario.flush_size):
            if len(chunk) == 0:
                continue
            rec = state.process(chunk)
            observer.on_frontier(float(chunk.arrival_s[-1]))
            done += len(chunk)
            end_s = max(end_s, float(rec["finish_s"].max()))
            if progress is not None:
                progress(done, end_s)
        observer.on_end(totals.end_s)
        return BackendRun(state.info, state.summary(totals))


class SequentialRun:
    """One run of the sequential backend: the thesis model, the GPUs, the prefix cache."""

    def __init__(self, scenario: Scenario, observer: Observer) -> None:
        self.scenario = scenario
        self.observer = observer
        self.system = system = resolve_system(scenario)
        self.perf = ThesisPerfModel(
            model=system.model,
            gpu=system.gpu,
            compute_efficiency=scenario.compute_efficiency,
            memory_efficiency=scenario.memory_efficiency,
            overhead_s=scenario.overhead_s,
            kv_cache=scenario.kv_cache,
        )
        self.profile = UtilizationProfile(
            busy=scenario.busy_utilization,
            edge=scenario.edge_utilization,
            warmup_s=scenario.warmup_s,
            cooldown_s=scenario.cooldown_s,
        )
        use_cache = scenario.prefix_cache == "thesis" and scenario.prefix_len > 0
        self.cache = ThesisPrefixCache(scenario.prefix_cache_size) if use_cache else None
        self.cluster = SequentialCluster(scenario.gpus, self.cache, scenario.prefix_cache_policy)
        self.kv_per_token = system.model.kv_bytes_per_token(2.0) if scenario.kv_cache else 0.0
        gpu = ReplicaInfo(gpu=system.gpu, gpus=1, kv_capacity_bytes=system.kv_capacity_bytes)
        self.info = RunInfo(replicas=(gpu,) * scenario.gpus, request_utilization=self.profile)
        self.decode_activity = self.perf.decode_activity()
        self.saved_prefill_s = self.saved_decode_s = 0.0  # GPU-seconds the caches saved

    def process(self, chunk: RequestChunk) -> Records:
        """Run a chunk of requests; emit their records and activity; return the records."""
        scenario, perf, cache = self.scenario, self.perf, self.cache
        if cache is not None:
            keys = prefix_keys(chunk, scenario.prefix_len, scenario.prefix_cache_scope == "session")
        else:
            keys = [None] * len(chunk)
        full_prefill = perf.prefill_s(chunk.num_input_tokens)
        full_decode = perf.decode_s(chunk.num_output_tokens)
        times = self.cluster.process(chunk.arrival_s, full_prefill, full_decode, keys)
        self.saved_prefill_s += float(np.sum(full_prefill - times.prefill_s))
        self.saved_decode_s += float(np.sum(full_decode - times.decode_s))
        rec = request_table(chunk, times, perf.first_token_offset_s())
        self.observer.on_requests(rec)
        self.observer.on_activity(self.activity(rec))
        return rec

    def activity(self, rec: Records) -> Activity:
        """The GPUs' activity while running ``rec``'s requests (prefill or decode busy fractions)."""
        seg = activity_segments(rec, self.profile, self.kv_per_token)
        pre_c, pre_m = self.perf.prefill_activity(rec["num_input_tokens"][seg.row])
        decode_c, decode_m = self.decode_activity
        step_replica, step_t, deltas = count_steps(rec)
        return Activity(
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

    def summary(self, totals: SummaryAccumulator) -> dict[str, Any]:
        """The sequential backend's summary keys: one GPU per replica, one request at a time."""
        system, cache, n = self.system, self.cache, totals.num_requests
        return {
            "num_replicas": self.scenario.gpus,
            "preemptions": 0,
            "mean_batch_size": 1.0 if n else 0.0,
            "model": system.model.name,
            "gpu": system.gpu.name,
            "tp": 1,
            "pp": 1,
            "scheduler": "sequential",
            "time_per_output_token_s": self.perf.time_per_token_s,
            "kv_bytes_per_token": system.model.kv_bytes_per_token(2.0),
            "kv_capacity_bytes": system.kv_capacity_bytes,
            "weight_bytes": system.weight_bytes,
            "prefix_cache_lookups": cache.lookups if cache else 0,
            "prefix_cache_hits": cache.hits if cache else 0,
            "prefix_cache_hit_ratio": (cache.hits / n) if cache and n else 0.0,
            "prefix_cache_evictions": cache.evictions if cache else 0,
            "prefix_cache_token_hit_ratio": (
                totals.cached_tokens / totals.input_tokens if cache and totals.input_tokens else 0.0
            ),
            "saved_prefill_s": self.saved_prefill_s,
            "saved_decode_s": self.saved_decode_s,
        }
