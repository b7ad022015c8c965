"""The hardware and model a scenario runs on, resolved from the catalogue, with the fit checks.

Two resolutions, one per backend: the thesis's sequential GPUs (16-bit weights on one GPU, the
rest of its memory usable for KV) and the serving backend's replicas (``tp x pp`` GPUs each,
weights in their dtype split across them, an activation reserve per GPU, a paged KV cache of
whole blocks). Both raise one-line errors naming what does not fit and what to change.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from kavier.errors import ScenarioError, warn
from kavier.library.catalog import load_catalog
from kavier.library.spec import GpuSpec, ModelSpec
from kavier.perf.roofline import ServingPerfModel, ServingPerfParams
from kavier.registry import ENGINES
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
    """One serving replica's hardware, model, performance model and KV capacity, and the
    profile its constants come from (``profile``: e.g. ``vllm-v1/H100-SXM``; ``profile_note``:
    why another GPU's profile was taken, or "")."""

    model: ModelSpec
    gpu: GpuSpec
    tp: int
    pp: int
    perf: ServingPerfModel
    total_blocks: int
    kv_capacity_bytes: float
    profile: str = ""
    profile_note: str = ""

    @property
    def gpus(self) -> int:
        """GPUs the replica occupies (``tp x pp``)."""
        return self.tp * self.pp


# Scenario key -> the serving model's constant it sets (None in a scenario: from the profile).
SCENARIO_CONSTANTS: dict[str, str] = {
    "compute_efficiency": "compute_efficiency",
    "memory_efficiency": "memory_efficiency",
    "overhead_s": "prefill_overhead_s",
    "iteration_overhead_s": "iteration_overhead_s",
    "decode_seq_overhead_s": "decode_seq_overhead_s",
    "prefill_seq_overhead_s": "prefill_seq_overhead_s",
    "attention_efficiency": "attention_efficiency",
    "comm_efficiency": "comm_efficiency",
    "comm_latency_s": "comm_latency_s",
    "comm_cache_bytes": "comm_cache_bytes",
    "comm_spill_efficiency": "comm_spill_efficiency",
    "context_terms": "context_terms",
    "compute_saturation_tokens": "compute_saturation_tokens",
    "roofline_norm": "roofline_norm",
}


def load_perf_params(
    scenario: Scenario, tp: int | None = None, gpu: str | None = None
) -> tuple[ServingPerfParams, str, str]:
    """The serving model's constants for a replica at tensor-parallel degree ``tp`` on ``gpu``, the
    name of the shipped profile they start from ("" for none) and why it is another GPU's.

    Resolution, last wins: the built-in constants; the engine's shipped profile for the GPU (or
    the nearest architecture's, :mod:`kavier.perf.profiles`); the scenario's keys that are set;
    the user's ``perf_profile`` (its ``[tp.<tp>]`` table's for a replica at that degree, if any).
    """
    from kavier.perf.profile import load_profile

    params = ServingPerfParams()
    name = note = ""
    if gpu is not None:
        shipped = profile_of(scenario.catalog, scenario.engine, gpu)
        if shipped is not None:
            params = load_profile(shipped.path, params, tp=tp)
            name, note = shipped.name, shipped.note
            if shipped.donor:
                params, note = _borrowed(params, note, scenario, gpu, shipped.donor)
    family = ENGINES.get(scenario.engine).profile_family
    if gpu is not None and family != scenario.engine and not scenario.perf_profile:
        why = f"engine {scenario.engine} is timed with {family}'s profiles (none measured of its own)"
        note = f"{note}; {why}" if note else why
    explicit = {
        field: getattr(scenario, key)
        for key, field in SCENARIO_CONSTANTS.items()
        if getattr(scenario, key) is not None
    }
    params = replace(params, **explicit)
    if scenario.perf_profile:
        params = load_profile(scenario.perf_profile, params, tp=tp)
    return params, name, note


def profile_of(catalog_path: str | None, engine: str, gpu: str) -> Any:
    """The :class:`~kavier.perf.profiles.ShippedProfile` a replica of ``gpu`` under ``engine``
    starts from: its own, the one its library entry's ``nearest`` names (aliases resolved;
    unknown: a one-line error), Kavier's nearest architecture's, or the generic fit."""
    from kavier.perf.profiles import shipped_profile
    from kavier.registry import ENGINES

    catalog = load_catalog(catalog_path)
    nearest = catalog.gpu(gpu).nearest
    if nearest:
        nearest = catalog.gpu(nearest).name
    return shipped_profile(ENGINES.get(engine).profile_family, gpu, nearest)


def borrowed_scales(catalog_path: str | None, gpu: str, donor: str) -> dict[str, float]:
    """``constant -> factor`` for the efficiencies of ``donor``'s profile that ``gpu``'s measured
    shares scale (:data:`kavier.perf.profiles.MEASURED_SHARES`); only factors other than 1."""
    from kavier.perf.profiles import share_scales

    catalog = load_catalog(catalog_path)
    return share_scales(catalog.gpu(gpu), catalog.gpu(donor))


def _borrowed(
    params: ServingPerfParams, note: str, scenario: Scenario, gpu: str, donor: str
) -> tuple[ServingPerfParams, str]:
    """``donor``'s profile made ``gpu``'s (:func:`kavier.perf.profiles.borrow`: each efficiency
    of :data:`~kavier.perf.profiles.MEASURED_SHARES` scaled by the two GPUs' measured shares when
    the catalogue has both, at most 1), with the note saying by how much."""
    from kavier.perf.profiles import MEASURED_SHARES, borrow

    catalog = load_catalog(scenario.catalog)
    mine, theirs = catalog.gpu(gpu), catalog.gpu(donor)
    borrowed, scales = borrow(params, mine, theirs)
    for constant, scale in scales.items():
        share, what = MEASURED_SHARES[constant]
        note += (
            f"; {constant.replace('_', ' ')} x {scale:.2f} ({gpu} reaches {getattr(mine, share):.3f} "
            f"{what}, {donor} {getattr(theirs, share):.3f})"
        )
    return borrowed, note


def _resolver(catalog: Any) -> Any:
    """``resolve(kind, name)``: the catalogue's name of a model or GPU (None when unknown)."""
    from kavier.errors import KavierError

    def resolve(kind: str, name: str) -> str | None:
        try:
            return str((catalog.model if kind == "model" else catalog.gpu)(name).name)
        except KavierError:
            return None

    return resolve


REPLICA_GROUP_KEYS = {"count", "gpu", "llm", "tp", "pp", "weight_dtype", "kv_dtype"}


def parallelism_error(model: ModelSpec, tp: int, pp: int) -> str | None:
    """Why ``model`` cannot be split ``tp`` x ``pp`` ways (None: it can): tensor parallelism
    splits the attention heads, so ``tp`` must divide them (vLLM's rule, and ``kavier plan``'s);
    pipeline parallelism gives each stage whole layers, and the model times equal stages, so
    ``pp`` must divide the layers."""
    heads, layers = model.num_attention_heads, model.num_layers
    if heads % tp:
        fits = ", ".join(str(d) for d in range(1, heads + 1) if heads % d == 0 and d <= 16)
        return f"tp={tp} does not divide {model.name}'s {heads} attention heads (use tp {fits})"
    if layers % pp:
        fits = ", ".join(str(d) for d in range(1, layers + 1) if layers % d == 0 and d <= 16)
        return f"pp={pp} does not divide {model.name}'s {layers} layers into equal stages (use pp {fits})"
    return None


def profile_mismatch(path: str, model: ModelSpec, gpu: GpuSpec, resolve: Any) -> str | None:
    """The warning for a ``perf_profile`` whose ``[meta]`` says it was fitted for another model or
    GPU than a replica's (None: it matches, or the profile does not say). ``resolve(kind, name)``
    gives the catalogue's name for a name (None when unknown)."""
    from kavier.perf.profile import profile_meta

    meta = profile_meta(path)
    found: list[str] = []
    for kind, ours in (("model", model.name), ("gpu", gpu.name)):
        fitted = meta.get(kind)
        names = [fitted] if isinstance(fitted, str) else [n for n in fitted or () if isinstance(n, str)]
        if names and ours not in {resolve(kind, n) or n for n in names}:
            found.append(f"{kind} {'/'.join(names)} (this run: {ours})")
    if not found:
        return None
    return (
        f"--perf-profile {path} was fitted for {' and '.join(found)}; its constants may not carry "
        "over (calibrate one for this set-up with `kavier calibrate`)"
    )


def plan_replicas(scenario: Scenario) -> list[ReplicaPlan]:
    """Resolve every serving replica's model, GPU, parallelism and KV capacity (one-line errors;
    a one-line warning when ``perf_profile`` was fitted for another model or GPU)."""
    catalog = load_catalog(scenario.catalog)
    params_by_tp: dict[tuple[int, str], tuple[ServingPerfParams, str, str]] = {}
    groups = scenario.replica_groups or [{"count": scenario.num_replicas}]
    plans: list[ReplicaPlan] = []
    for g_index, group in enumerate(groups):
        unknown = set(group) - REPLICA_GROUP_KEYS
        if unknown:
            raise ScenarioError(f"replica_groups[{g_index}]: unknown keys {sorted(unknown)}")
        model = catalog.model(group.get("llm", scenario.llm))
        gpu = catalog.gpu(group.get("gpu", scenario.gpu))
        tp, pp = int(group.get("tp", scenario.tp)), int(group.get("pp", scenario.pp))
        split = parallelism_error(model, tp, pp)
        if split is not None:
            where = f"replica_groups[{g_index}]: " if scenario.replica_groups else ""
            raise ScenarioError(where + split)
        if (tp, gpu.name) not in params_by_tp:
            params_by_tp[tp, gpu.name] = load_perf_params(scenario, tp, gpu.name)
            if scenario.perf_profile:
                mismatch = profile_mismatch(scenario.perf_profile, model, gpu, _resolver(catalog))
                if mismatch:
                    warn(mismatch)
        params, profile, note = params_by_tp[tp, gpu.name]
        weight_dtype = group.get("weight_dtype", scenario.weight_dtype)
        if model.checkpoint_dtype and weight_dtype != model.checkpoint_dtype:
            where = f"replica_groups[{g_index}]: " if scenario.replica_groups else ""
            raise ScenarioError(
                f"{where}{model.name} is a checkpoint quantized to {model.checkpoint_dtype} but "
                f'weight_dtype is {weight_dtype}: set weight_dtype = "{model.checkpoint_dtype}" '
                f"(--weight-dtype {model.checkpoint_dtype}), or choose the 16-bit model"
            )
        perf = ServingPerfModel(
            model,
            gpu,
            params,
            tp=tp,
            pp=pp,
            weight_dtype=weight_dtype,
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
                "fp8/int8/fp4/int4, or choose a GPU with more memory"
            )
        kv_bytes = free * tp * pp
        blocks = int(kv_bytes // (scenario.block_size * perf.kv_bytes_per_token))
        if blocks < 1:
            raise ScenarioError(f"{model.name} on {gpu.name}: no room for a single KV block")
        for _ in range(int(group.get("count", 1))):
            plans.append(ReplicaPlan(model, gpu, tp, pp, perf, blocks, kv_bytes, profile, note))
    return plans
