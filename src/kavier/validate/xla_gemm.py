"""Suite ``xla-gemm``: the roofline's dense-GEMM terms against OpenXLA's measured GEMMs.

OpenXLA's default matmul performance table (cited in ``data/public/SOURCES.md``) holds GEMMs it
timed on real GPUs (median of 5 runs). The rows shipped here are the BF16 GEMMs of ``m`` tokens
(256 to 4096) through a 4096 x 4096 weight, the shape of an 8B model's projections, on
H100-SXM (``sm_90``) and B200 (``sm_100_B200``). Each is compared with what an iteration of
``m`` tokens charges that GEMM: ``2 m n k / (peak x compute_efficiency x m / (m + n0))`` and
``k n x 2 bytes / (bandwidth x memory_efficiency)`` joined as an iteration joins them (their max,
or their p-norm with ``roofline_norm``), with the constants a serving replica of the
GPU gets (no host time, no all-reduce). The check shows where achieved FLOP/s falls with the
tokens of an iteration. No profile constant was fitted on these rows, except the B200's
``gemm_peak_fraction``, read off its 4096-token row: the B200's rows are labelled ``fitted``.

Two metrics: ``gemm_small_s`` (under 1,024 tokens) and ``gemm_large_s`` (1,024 and more).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kavier.validate.compare import HELD_OUT, Comparison
from kavier.validate.kernel_table import KernelTable
from kavier.validate.public import PUBLIC

SUITE = "xla-gemm"
GEMMS = PUBLIC / "xla_gemm.csv"
SMALL_TOKENS = 1024  # GEMMs of fewer tokens: the metric gemm_small_s
BYTES_PER_WEIGHT = 2.0  # bf16


def measured_s(row: dict[str, str]) -> float:
    """The measured seconds of the row's GEMM: its FLOPs over the table's FLOP/s."""
    b, m, n, k = (int(row[x]) for x in "bmnk")
    return 2.0 * b * m * n * k / float(row["flops_per_s"])


def predicted_s(row: dict[str, str], profile: str | None = None, **overrides: Any) -> float:
    """The roofline's seconds for the row's GEMM at tp 1, with the constants a serving replica
    of that GPU gets (``profile`` and the scenario keys ``overrides`` on top)."""
    from kavier.engine.system import load_perf_params
    from kavier.library.catalog import load_catalog
    from kavier.perf.roofline import dense_rate, peak_flops, roofline_s
    from kavier.scenario import Scenario

    gpu = load_catalog().gpu(row["gpu"])
    params, _, _ = load_perf_params(Scenario(**{**overrides, "perf_profile": profile}), 1, gpu.name)
    b, m, n, k = (int(row[x]) for x in "bmnk")
    full_rate = peak_flops(gpu, row["dtype"]) * params.compute_efficiency
    rate = dense_rate(full_rate, m, params.compute_saturation_tokens)
    compute = 2.0 * b * m * n * k / rate
    memory = b * k * n * BYTES_PER_WEIGHT / (gpu.memory_bandwidth * params.memory_efficiency)
    return roofline_s(compute, memory, params.roofline_norm)


TABLE = KernelTable(
    SUITE,
    GEMMS,
    "compute_efficiency",
    measured_s,
    predicted_s,
    lambda row: "gemm_small_s" if int(row["m"]) < SMALL_TOKENS else "gemm_large_s",
    lambda row: f"{row['gpu']} {row['dtype']} {row['m']} x {row['k']} x {row['n']}",
)


def run(
    data: str | Path | None = None, split: str = HELD_OUT, profile_for: Any = None, **overrides: Any
) -> list[Comparison]:
    """One comparison per shipped GEMM (the data is built in; ``data`` is not read); see
    :meth:`kavier.validate.kernel_table.KernelTable.run`."""
    return TABLE.run(split, profile_for, **overrides)
