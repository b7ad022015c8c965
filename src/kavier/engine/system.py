"""The hardware and model a scenario runs on, resolved from the catalogue, with the fit checks.

Two resolutions, one per backend: the thesis's sequential GPUs (16-bit weights on one GPU, the
rest of its memory usable for KV) and the serving backend's replicas (``tp x pp`` GPUs each,
weights in their dtype split across them, an activation reserve per GPU, a paged KV cache of
whole blocks). Both raise one-line errors naming what does not fit and what to change.
"""

from __future__ import annotations

from dataclasses import dataclass

from kavier.errors import ScenarioError
from kavier.library.catalog import load_catalog
from kavier.library.spec import GpuSpec, ModelSpec
from kavier.perf.roofline import ServingPerfModel, ServingPerfParams
from kavier.scenario import Scenario
from kavier.units import GIB


@dataclass(frozen=True)
class System:
    """The resolved hardware and model of a thesis scenario (bytes)."""

    model: ModelSpec
    gpu: GpuSpec
    weight_bytes: float
    kv_capacity_bytes: float


def resolve_system(scenario: Scenario) -> System:
    """Look the model and GPU up and check that the model fits (one-line error otherwise)."""
    catalog = load_catalog(scenario.catalog)
    model = catalog.model(scenario.llm)
    gpu = catalog.gpu(scenario.gpu)
    weights = 2.0 * model.num_params
    usable = gpu.memory_bytes * scenario.gpu_memory_utilization
    if weights > usable:
        raise ScenarioError(
            f"{model.name} needs {weights / GIB:.1f} GiB for its 16-bit weights but one "
            f"{gpu.name} offers {usable / GIB:.1f} GiB at gpu_memory_utilization "
            f"{scenario.gpu_memory_utilization}; choose a GPU with more memory (see `kavier library`)"
        )
    return System(model=model, gpu=gpu, weight_bytes=weights, kv_capacity_bytes=usable - weights)


@dataclass
class ReplicaPlan:
    """One serving replica's hardware, model, performance model and KV capacity."""

    model: ModelSpec
    gpu: GpuSpec
    tp: int
    pp: int
    perf: ServingPerfModel
    total_blocks: int
    kv_capacity_bytes: float

    @property
    def gpus(self) -> int:
        """GPUs the replica occupies (``tp x pp``)."""
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


REPLICA_GROUP_KEYS = {"count", "gpu", "llm", "tp", "pp", "weight_dtype", "kv_dtype"}


def plan_replicas(scenario: Scenario) -> list[ReplicaPlan]:
    """Resolve every serving replica's model, GPU, parallelism and KV capacity (one-line errors)."""
    catalog = load_catalog(scenario.catalog)
    params_by_tp: dict[int, ServingPerfParams] = {}
    groups = scenario.replica_groups or [{"count": scenario.num_replicas}]
    plans: list[ReplicaPlan] = []
    for g_index, group in enumerate(groups):
        unknown = set(group) - REPLICA_GROUP_KEYS
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
