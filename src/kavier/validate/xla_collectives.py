"""Suite ``xla-collectives``: Kavier's all-reduce term against OpenXLA's measured all-reduces.

OpenXLA ships a table of collectives it timed on real machines (``default_collective_perf_table``;
cited in ``data/public/SOURCES.md``): for one all-reduce of a tensor of ``message_bytes`` over 8
GPUs of one NVLink node, the median of 20 profiled runs, stored as ``message_bytes / time``. The
rows shipped here are the 1 x 8 all-reduces on H100-SXM (``sm_90``) and B200 (``sm_100_B200``),
1 KiB to 2 GiB. Each is compared with :func:`kavier.perf.roofline.ring_allreduce_s` at tp 8 with
the replica's constants (the shipped profile, the nearest architecture's for the B200), i.e. the
time Kavier charges every tensor-parallel all-reduce of an iteration. No profile constant was
fitted on these rows (``held out: shipped``), except that a GPU on another GPU's profile scales
its comm efficiency by the two GPUs' ``allreduce_link_fraction``, read off the 2 GiB rows: the
B200's rows are therefore labelled ``fitted``.

Two metrics, by message size: ``allreduce_small_s`` (under 1 MiB: the per-step latency
dominates; a decode step's message, batch x hidden x 2 bytes, is here up to batch 64 of a
70B model) and ``allreduce_large_s`` (1 MiB and more: link bandwidth; prefill chunks).
XLA runs NCCL; vLLM's own all-reduce kernel for small messages is not what was timed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kavier.validate.compare import HELD_OUT, Comparison
from kavier.validate.kernel_table import KernelTable
from kavier.validate.public import PUBLIC

SUITE = "xla-collectives"
COLLECTIVES = PUBLIC / "xla_collectives.csv"
SMALL_BYTES = 1 << 20  # messages under 1 MiB: the latency-bound metric


def measured_s(row: dict[str, str]) -> float:
    """The measured seconds of one all-reduce: tensor bytes over the table's throughput."""
    return float(row["message_bytes"]) / float(row["throughput_bytes_per_s"])


def predicted_s(row: dict[str, str], profile: str | None = None, **overrides: Any) -> float:
    """Kavier's seconds for the row's all-reduce: the ring all-reduce term at tp = the row's GPU
    count, with the constants a serving replica of that GPU gets (``profile`` on top, if given,
    and the scenario keys ``overrides``, e.g. ``comm_latency_s``)."""
    from kavier.engine.system import load_perf_params
    from kavier.library.catalog import load_catalog
    from kavier.perf.roofline import ring_allreduce_s
    from kavier.scenario import Scenario

    tp = int(row["num_devices"])
    gpu = load_catalog().gpu(row["gpu"])
    scenario = Scenario(**{**overrides, "tp": tp, "perf_profile": profile})
    params, _, _ = load_perf_params(scenario, tp, gpu.name)
    return ring_allreduce_s(float(row["message_bytes"]), tp, gpu.interconnect_bandwidth, params)


TABLE = KernelTable(
    SUITE,
    COLLECTIVES,
    "comm_efficiency",
    measured_s,
    predicted_s,
    lambda row: "allreduce_small_s" if int(row["message_bytes"]) < SMALL_BYTES else "allreduce_large_s",
    lambda row: (
        f"{row['num_devices']} x {row['gpu']} all-reduce {int(row['message_bytes']):,} B ({row['dtype']})"
    ),
)


def run(
    data: str | Path | None = None, split: str = HELD_OUT, profile_for: Any = None, **overrides: Any
) -> list[Comparison]:
    """One comparison per shipped all-reduce row (the data is built in; ``data`` is not read);
    see :meth:`kavier.validate.kernel_table.KernelTable.run`."""
    return TABLE.run(split, profile_for, **overrides)
