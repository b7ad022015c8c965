"""Calibrated profiles shipped with Kavier: the serving model's constants per engine and GPU.

``<engine>/<GPU>.toml`` holds the constants fitted for an engine family on a GPU from public
measurements, with their provenance and held-out errors in ``[meta]`` (``benchmarks/
fit_profiles.py`` writes them; see its docstring and ``docs/validation.md``). A GPU without a
profile of its own takes the profile of the nearest architecture (:data:`NEAREST`): the
constants are efficiencies (shares of the peak numbers) and overheads, so they carry over to the
other GPU's peak FLOP/s, bandwidth and interconnect from the library, with the compute
and link efficiencies scaled by the two GPUs' measured shares where the library has both
(:data:`MEASURED_SHARES`, :func:`share_scale`); the run says so.
``<engine>/generic.toml``, fitted on every GPU at once, serves GPUs the table does not know.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kavier.library.spec import GpuSpec
    from kavier.perf.roofline import ServingPerfParams

HERE = Path(__file__).resolve().parent

# GPU -> the GPU whose profile it takes when it has none, with why (architecture, memory type).
NEAREST: dict[str, tuple[str, str]] = {
    "A100-40GB": ("A100-80GB", "same architecture (Ampere, HBM2)"),
    "H100-PCIe": ("H100-SXM", "same architecture (Hopper)"),
    "H200": ("H100-SXM", "same architecture (Hopper, HBM3e)"),
    "B200": ("H100-SXM", "nearest earlier datacentre architecture (Blackwell after Hopper)"),
    "MI300X": ("H100-SXM", "nearest datacentre GPU of its class (HBM3, 8-GPU platform)"),
    "L4": ("L40S", "same architecture (Ada, GDDR6, PCIe)"),
    "T4": ("A10", "nearest GDDR-memory GPU (Turing before Ampere)"),
}


@dataclass(frozen=True)
class ShippedProfile:
    """A shipped profile file and how it was chosen for a GPU."""

    path: Path
    name: str  # "vllm-v1/H100-SXM"
    note: str  # "" when the GPU has its own profile, else why another GPU's was taken
    donor: str = ""  # the GPU whose profile it is when borrowed from NEAREST, else ""


def shipped_profile(engine: str, gpu: str, nearest_gpu: str = "") -> ShippedProfile | None:
    """The profile of ``engine`` for ``gpu``: its own, the nearest architecture's (``nearest_gpu``
    when given: the GPU library's ``nearest`` field, else :data:`NEAREST`), or the generic one;
    None when the engine ships none. A ``nearest_gpu`` without a profile of its own is an error."""
    folder = HERE / engine
    own = folder / f"{gpu}.toml"
    if own.is_file():
        return ShippedProfile(own, f"{engine}/{gpu}", "")
    if nearest_gpu and not (folder / f"{nearest_gpu}.toml").is_file():
        from kavier.errors import LibraryError

        have = sorted(p.stem for p in folder.glob("*.toml") if p.stem not in ("generic", "bands"))
        raise LibraryError(
            f"GPU library: {gpu}'s nearest = '{nearest_gpu}' has no calibrated {engine} profile "
            f"(choose one of {', '.join(have)})"
        )
    nearest = NEAREST.get(gpu)
    if nearest_gpu:
        nearest = (nearest_gpu, "named by the GPU library's 'nearest' field")
    if nearest is not None and (folder / f"{nearest[0]}.toml").is_file():
        note = (
            f"{gpu} has no calibrated profile; using {nearest[0]}'s ({nearest[1]}), scaled by the "
            "library's peak numbers"
        )
        return ShippedProfile(folder / f"{nearest[0]}.toml", f"{engine}/{nearest[0]}", note, nearest[0])
    generic = folder / "generic.toml"
    if generic.is_file():
        note = f"{gpu} has no calibrated profile and no near architecture in Kavier's table: the generic fit"
        return ShippedProfile(generic, f"{engine}/generic", note)
    return None


# Efficiency constant -> (the GPU library's measured share that scales it, what was measured).
MEASURED_SHARES: dict[str, tuple[str, str]] = {
    "compute_efficiency": ("gemm_peak_fraction", "of its 16-bit peak in a measured large GEMM"),
    "memory_efficiency": ("memory_bandwidth_fraction", "of its memory bandwidth in a measured triad"),
    "comm_efficiency": ("allreduce_link_fraction", "of its link bandwidth in a measured 8-GPU all-reduce"),
}


def share_scale(gpu: GpuSpec, donor: GpuSpec, share: str) -> float:
    """Factor on a borrowed profile's efficiency when ``gpu`` runs on ``donor``'s profile: the
    ratio of the two GPUs' measured shares ``share`` (a field of the GPU library, e.g.
    ``gemm_peak_fraction``: a B200 reaches 0.630 of its BF16 peak in a large GEMM where an H100
    reaches 0.789, so 0.80), so the borrowed efficiency carries what was measured about the new
    GPU as well as its datasheet numbers. 1 when either GPU has no measured share."""
    mine, theirs = getattr(gpu, share), getattr(donor, share)
    return mine / theirs if mine > 0.0 and theirs > 0.0 else 1.0


def share_scales(gpu: GpuSpec, donor: GpuSpec) -> dict[str, float]:
    """``constant -> factor`` of :func:`share_scale` for every constant of
    :data:`MEASURED_SHARES` whose factor is not 1."""
    scales = {c: share_scale(gpu, donor, share) for c, (share, _) in MEASURED_SHARES.items()}
    return {c: f for c, f in scales.items() if f != 1.0}


def borrow(
    params: ServingPerfParams, gpu: GpuSpec, donor: GpuSpec
) -> tuple[ServingPerfParams, dict[str, float]]:
    """``donor``'s constants ``params`` made ``gpu``'s: each efficiency of
    :data:`MEASURED_SHARES` times :func:`share_scale` (at most 1), every other constant as it
    is; with the factors applied (:func:`share_scales`). What Kavier's fallback gives a GPU
    without a profile, and what the held-out-by-GPU profiles of ``benchmarks/fit_profiles.py``
    give a held-out one."""
    scales = share_scales(gpu, donor)
    changed = {c: min(1.0, getattr(params, c) * f) for c, f in scales.items()}
    return replace(params, **changed), scales


def borrow_named(params: ServingPerfParams, gpu: str, donor: str) -> tuple[ServingPerfParams, str]:
    """:func:`borrow` for two GPUs of the built-in library named ``gpu`` and ``donor``, with a
    clause naming the factors for a profile's ``[meta]`` (", scaled by the measured shares
    (compute efficiency x 0.613, ...)"; "" when nothing was scaled)."""
    from kavier.library.catalog import load_catalog

    catalog = load_catalog()
    borrowed, scales = borrow(params, catalog.gpu(gpu), catalog.gpu(donor))
    factors = ", ".join(f"{c.replace('_', ' ')} x {f:.3f}" for c, f in scales.items())
    clause = f", scaled by the measured shares ({factors})" if scales else ""
    return borrowed, clause


# Validation metric classes a band is measured on, and the summary keys each band applies to.
BAND_KEYS: dict[str, tuple[str, ...]] = {
    "ttft": ("ttft_mean_s", "ttft_p50_s", "ttft_p90_s", "ttft_p99_s"),
    "tpot": ("tpot_mean_s", "tpot_p50_s", "tpot_p99_s", "itl_mean_s", "itl_p50_s", "itl_p90_s", "itl_p99_s"),
    "e2e": ("e2e_mean_s", "e2e_p50_s", "e2e_p90_s", "e2e_p99_s"),
    "throughput": (
        "throughput_tokens_per_s",
        "output_throughput_tokens_per_s",
        "input_throughput_tokens_per_s",
        "requests_per_s",
    ),
    "energy": (
        "energy_it_j",
        "energy_facility_j",
        "energy_it_kwh",
        "energy_facility_kwh",
        "joules_per_output_token",
        "wh_per_mtok",
    ),
    "power": ("avg_power_w",),
}


def bands(engine: str) -> dict[str, tuple[float, float]]:
    """``metric class -> (q_low, q_high)``: the 10th and 90th percentiles of the held-out
    relative errors ``predicted / measured - 1`` of ``kavier validate``'s held-out-by-GPU replays,
    pooled over every suite whatever engine it replays (``<engine>/bands.toml``, the same for
    each engine today, written by ``benchmarks/fit_profiles.py``); {} if none."""
    import tomllib

    path = HERE / engine / "bands.toml"
    if not path.is_file():
        return {}
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    return {
        name: (float(t["q10"]), float(t["q90"]))
        for name, t in data.items()
        if isinstance(t, dict) and "q10" in t
    }


def band_limits(value: float, q_low: float, q_high: float) -> tuple[float, float]:
    """The measured value's 80 % band for a prediction ``value``: ``measured = predicted / (1 + r)``
    with ``r`` between its 10th and 90th percentiles."""
    return value / (1.0 + q_high), value / (1.0 + q_low)
