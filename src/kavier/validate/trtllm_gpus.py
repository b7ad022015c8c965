"""Suite ``trtllm-gpus``: how Kavier scales throughput from H100-SXM to another GPU, checked
against NVIDIA's TensorRT-LLM performance overview.

Data: the shipped public measurements (``data/public/measurements.csv``, sources in
``SOURCES.md`` beside it), the rows of ``trtllm_perf_overview_v0.13`` and
``trtllm_perf_overview_v1.0``: offline maximum throughput (every request queued at once,
in-flight batching, exact input/output lengths, ``workload == fixed``), ``output_tokens_per_s``
of the whole TP group. Each row on another GPU is paired with the H100-SXM row of the same
source, model, dtype, input and output tokens, and tensor parallelism; where H100-SXM was run at
another TP only (v1.0: Llama-3.3-70B on H200 at TP1, on H100-SXM at TP2), with the H100-SXM row
of the nearest TP, and both throughputs are taken **per GPU** (the case says ``per GPU``).

The metric is ``output_tokens_per_s_ratio``: the other GPU's throughput over H100-SXM's, measured
against simulated. A ratio, not a throughput: TensorRT-LLM is not the engine Kavier models
(vllm-v1), so absolute throughputs differ by the engine; what should carry over is how much
faster one GPU is than another under the same engine and load.

Skipped rows, each for the stated reason (:func:`selection` lists them):

- a model or GPU not in Kavier's library (none today: Llama-3.3-70B is the library's
  Llama-3.1-70B architecture, and its cases say Llama-3.1-70B);
- no H100-SXM row of the same source, model, dtype and input/output tokens (the 9 v0.13 H200
  Llama-3.1-405B rows: v0.13 has no H100 405B column);
- the H100-SXM cell of the same configuration and TP is blank although H100-SXM was run at that
  TP for other lengths (not run or did not fit): a pair at another TP would mix in the TP's own
  effect, so such rows are left out rather than compared per GPU (11 rows: 8 H200, 2 A100-80GB,
  1 L40S). That leaves 365 pairs: 151 H200, 109 A100-80GB, 85 L40S, 20 B200 (fp4, against the H100-SXM
  fp8 run per GPU: each side simulated in its own format).

Replay: each (GPU, configuration) is simulated once with :func:`kavier.api.simulate`: the
serving preset, engine vllm-v1 with its own ``max_num_seqs`` and token budget for the GPU,
``gpu_memory_utilization`` 0.95 for v1.0 rows (its notes: ``kv_cache_free_gpu_mem_fraction
0.95``) and the default 0.9 for v0.13, fp8 rows with an fp8 KV cache (v0.13's
``--quantization FP8`` sets it; v1.0 does not say, assumed the same), no prefix cache.
``n = 3 x b`` requests of exactly ISL/OSL tokens arrive at 0, ``b`` the batch the engine can
reach (``max_num_seqs``, or fewer when the KV cache holds fewer whole requests);
the throughput is that of :func:`kavier.validate.mlenergy.steady_state`'s window with ``b`` as
the batch (from the ``b``-th first token to the ``(n - b - 1)``-th finish).

Pairs where either side's weights take more than :data:`TIGHT_WEIGHT_FRACTION` of the GPU's
memory (SOURCES.md: the very low 70B TP1/TP2 H100 values "are most likely KV-capacity-bound"),
where the batch hangs on how each engine accounts for the few GiB left, are kept, but their
case ends in ``[tight memory]`` so that they can be reported apart.

The shipped profiles of H200, A100-80GB and B200 saw none of these rows, so their replay with
the shipped profiles is held out, labelled ``held out: shipped``; L40S's own profile was fitted
on its rows (``benchmarks/fit_ratio_profile.py``, ``[meta] fitted_on_suite``), so its replay is
``fitted``, its held-out-by-GPU replay the A10 fallback it had before, and its held-out-by-model
replays the leave-one-model-out fits.
"""

from __future__ import annotations

import csv
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kavier.validate.compare import FITTED, HELD_OUT, SHIPPED_HELD_OUT, Comparison
from kavier.validate.public import MEASUREMENTS

SUITE = "trtllm-gpus"
METRIC = "output_tokens_per_s_ratio"
SOURCES = ("trtllm_perf_overview_v0.13", "trtllm_perf_overview_v1.0")
REFERENCE_GPU = "H100-SXM"
# weights, KV cache (the v1.0 FP4 checkpoints keep an FP8 KV cache, as its FP8 ones)
DTYPES = {"fp16": ("fp16", "fp16"), "bf16": ("bf16", "bf16"), "fp8": ("fp8", "fp8"), "fp4": ("fp4", "fp8")}
# A dtype the H100-SXM was not run in is compared with its run in this one (each side simulated
# in its own dtype: the ratio then holds the format's speed-up too).
REFERENCE_DTYPE = {"fp4": "fp8"}
MEMORY_UTILIZATION = {"trtllm_perf_overview_v1.0": 0.95}  # other sources: the scenario default
REQUESTS_PER_BATCH = 3  # n = 3 x the batch the engine reaches
TIGHT_WEIGHT_FRACTION = 0.8

# Why a row has no comparison.
SKIP_DTYPE = "a dtype Kavier cannot simulate"
SKIP_LIBRARY = "model or GPU not in Kavier's library"
SKIP_UNPAIRED = "no H100-SXM row of the same source, model, dtype and ISL/OSL"
SKIP_BLANK = "the H100-SXM row of the same config and TP is blank (not run or did not fit)"
SKIP_REASONS = (SKIP_DTYPE, SKIP_LIBRARY, SKIP_UNPAIRED, SKIP_BLANK)


def data_path() -> Path:
    """The shipped measurements file (inside the installed package)."""
    return MEASUREMENTS


@dataclass(frozen=True)
class Row:
    """One measured configuration: ``tokens_per_s`` is output tokens/s of all ``num_gpus``."""

    line: int
    source: str
    gpu: str
    model: str  # the library's name
    dtype: str
    tp: int
    num_gpus: int
    input_tokens: int
    output_tokens: int
    tokens_per_s: float

    @property
    def config(self) -> tuple[str, str, str, int, int]:
        """What a pair must share: source, model, dtype, ISL, OSL."""
        return (self.source, self.model, self.dtype, self.input_tokens, self.output_tokens)


@dataclass(frozen=True)
class Pair:
    """A row on another GPU and the H100-SXM row it is compared with."""

    other: Row
    reference: Row

    @property
    def per_gpu(self) -> bool:
        """True when the two were run at different TP (throughputs then compared per GPU)."""
        return self.other.num_gpus != self.reference.num_gpus

    @property
    def cross_dtype(self) -> bool:
        """True when H100-SXM ran another dtype (e.g. B200 fp4 against H100-SXM fp8)."""
        return self.other.dtype != self.reference.dtype

    @property
    def measured_ratio(self) -> float:
        """The other GPU's throughput over H100-SXM's (per GPU when the TPs differ)."""
        if self.per_gpu:
            return (self.other.tokens_per_s / self.other.num_gpus) / (
                self.reference.tokens_per_s / self.reference.num_gpus
            )
        return self.other.tokens_per_s / self.reference.tokens_per_s

    @property
    def case(self) -> str:
        """E.g. ``v0.13 Llama-3.1-8B fp8 tp1 128/2048`` (source, model, dtype, TP, ISL/OSL)."""
        o = self.other
        source = o.source.removeprefix("trtllm_perf_overview_")
        text = f"{source} {o.model} {o.dtype} tp{o.tp} {o.input_tokens}/{o.output_tokens}"
        if self.per_gpu or self.cross_dtype:
            text += f" per GPU vs H100-SXM {self.reference.dtype} tp{self.reference.tp}"
        return text


@dataclass(frozen=True)
class Skip:
    """A row left out (its file line) and why (one of :data:`SKIP_REASONS`)."""

    line: int
    gpu: str
    model: str
    dtype: str
    reason: str


def read(path: Path) -> tuple[list[Row], list[Skip]]:
    """The TensorRT-LLM fixed-length throughput rows Kavier can replay, and the others with why."""
    from kavier.errors import KavierError
    from kavier.library.catalog import load_catalog

    catalog = load_catalog()
    rows: list[Row] = []
    skipped: list[Skip] = []
    with path.open(newline="", encoding="utf-8") as fh:
        for line, r in enumerate(csv.DictReader(fh), start=2):
            if r["source_id"] not in SOURCES or r["workload"] != "fixed":
                continue
            if r["metric"] != "output_tokens_per_s":
                continue
            if r["dtype"] not in DTYPES:
                skipped.append(Skip(line, r["gpu"], r["model"], r["dtype"], SKIP_DTYPE))
                continue
            try:
                model, gpu = catalog.model(r["model"]).name, catalog.gpu(r["gpu"]).name
            except KavierError:
                skipped.append(Skip(line, r["gpu"], r["model"], r["dtype"], SKIP_LIBRARY))
                continue
            rows.append(
                Row(
                    line,
                    r["source_id"],
                    gpu,
                    model,
                    r["dtype"],
                    int(r["tp"]),
                    int(r["num_gpus"]),
                    int(r["input_tokens"]),
                    int(r["output_tokens"]),
                    float(r["value"]),
                )
            )
    return rows, skipped


def pair(rows: list[Row]) -> tuple[list[Pair], list[Skip]]:
    """Each non-H100-SXM row with its H100-SXM row of the same config and TP; when the source
    ran H100-SXM at none of the row's TP for that model and dtype, the row of the nearest TP."""
    references: dict[tuple, list[Row]] = {}
    tps: dict[tuple, set[int]] = {}  # (source, model, dtype) -> the TPs H100-SXM was run at
    for r in rows:
        if r.gpu == REFERENCE_GPU:
            references.setdefault(r.config, []).append(r)
            tps.setdefault(r.config[:3], set()).add(r.tp)
    pairs: list[Pair] = []
    skipped: list[Skip] = []
    for r in rows:
        if r.gpu == REFERENCE_GPU:
            continue
        candidates = references.get(r.config, [])
        if not candidates and r.dtype in REFERENCE_DTYPE:
            config = (r.source, r.model, REFERENCE_DTYPE[r.dtype], r.input_tokens, r.output_tokens)
            candidates = references.get(config, [])
            if candidates:  # another dtype: compared per GPU, at the nearest TP
                near = min(candidates, key=lambda h: (abs(math.log(h.tp / r.tp)), h.tp))
                pairs.append(Pair(r, near))
                continue
        if not candidates:
            skipped.append(Skip(r.line, r.gpu, r.model, r.dtype, SKIP_UNPAIRED))
            continue
        if r.tp in tps[r.config[:3]]:
            same = [h for h in candidates if h.tp == r.tp]
            if not same:
                skipped.append(Skip(r.line, r.gpu, r.model, r.dtype, SKIP_BLANK))
                continue
            pairs.append(Pair(r, same[0]))
            continue
        pairs.append(Pair(r, min(candidates, key=lambda h: (abs(math.log(h.tp / r.tp)), h.tp))))
    return pairs, skipped


def selection(path: Path | None = None) -> tuple[list[Pair], list[Skip]]:
    """The pairs the suite replays and every row it leaves out, with why."""
    rows, skipped = read(path or data_path())
    pairs, unpaired = pair(rows)
    return pairs, skipped + unpaired


# (gpu, model, dtype, tp, isl, osl, memory utilization, profile, overrides) -> replay
_CACHE: dict[tuple, tuple[float, float] | None] = {}


def replay(row: Row, profile: str | None = None, **overrides: Any) -> tuple[float, float] | None:
    """``(output tokens/s per GPU, weights / GPU memory)`` of ``row``'s configuration simulated
    in steady state (see the module docstring); None when the run has no steady window.
    Results are kept for the process: every split replays the same configurations, mostly
    with the same profiles."""
    key = (
        row.gpu,
        row.model,
        row.dtype,
        row.tp,
        row.input_tokens,
        row.output_tokens,
        MEMORY_UTILIZATION.get(row.source),
        profile,
        repr(sorted(overrides.items())),
    )
    if key not in _CACHE:
        _CACHE[key] = _simulate(row, profile, overrides)
    return _CACHE[key]


def _simulate(row: Row, profile: str | None, overrides: dict[str, Any]) -> tuple[float, float] | None:
    from kavier.api import simulate
    from kavier.engine.engines import engine_knobs
    from kavier.engine.system import plan_replicas
    from kavier.errors import KavierWarning
    from kavier.scenario import build_scenario
    from kavier.validate.mlenergy import steady_state

    weight_dtype, kv_dtype = DTYPES[row.dtype]
    keys: dict[str, Any] = {
        "llm": row.model,
        "gpu": row.gpu,
        "tp": row.tp,
        "replicas": 1,
        "engine": "vllm-v1",
        "weight_dtype": weight_dtype,
        "kv_dtype": kv_dtype,
        "prefix_cache": "off",
        "export_rate": 0.1,
        "opendc": False,
    }
    if row.source in MEMORY_UTILIZATION:
        keys["gpu_memory_utilization"] = MEMORY_UTILIZATION[row.source]
    if profile is not None:
        keys["perf_profile"] = profile
    scenario = build_scenario(None, {**keys, **overrides})
    plan = plan_replicas(scenario)[0]
    knobs = engine_knobs(scenario.engine, plan.gpu, plan.model, scenario)
    block = scenario.block_size
    blocks_per_request = -(-(row.input_tokens + row.output_tokens) // block)
    batch = max(2, min(knobs.max_num_seqs, plan.total_blocks // blocks_per_request))
    n = max(REQUESTS_PER_BATCH * batch, 2 * batch + 2)  # the window needs n > 2 x batch + 1
    requests = {
        "num_input_tokens": np.full(n, row.input_tokens),
        "num_output_tokens": np.full(n, row.output_tokens),
        "arrival_s": np.zeros(n),
    }
    with warnings.catch_warnings():
        # Llama-2's 4,096-token context: the measurement ran 128/4096 and 5000/500 as given too
        warnings.filterwarnings("ignore", message=".*context window.*", category=KavierWarning)
        window = steady_state(simulate(scenario, requests=requests), batch)
    if window is None:
        return None
    weight_fraction = plan.perf.weight_bytes_per_gpu / plan.gpu.memory_bytes
    return window["output_tokens_per_s"] / (row.tp * scenario.pp), weight_fraction


def fitted_here(gpu: str) -> bool:
    """True when ``gpu``'s own shipped vllm-v1 profile was fitted on this suite's rows
    (``benchmarks/fit_ratio_profile.py`` marks it ``[meta] fitted_on_suite``)."""
    from kavier.perf.profile import profile_meta
    from kavier.perf.profiles import shipped_profile

    found = shipped_profile("vllm-v1", gpu)
    return found is not None and not found.note and profile_meta(found.path).get("fitted_on_suite") == SUITE


def run(
    data: str | Path | None = None, split: str = HELD_OUT, profile_for: Any = None, **overrides: Any
) -> list[Comparison]:
    """One ``output_tokens_per_s_ratio`` comparison per pair (the data is shipped, so ``data``
    is not read); ``profile_for(gpu, model, engine)`` gives the profile each GPU's replay uses
    (None: the engine's shipped one, the nearest architecture's for a GPU without its own)."""
    pairs, _ = selection()
    fitted = {gpu: fitted_here(gpu) for gpu in {p.other.gpu for p in pairs}} if split == FITTED else {}
    out = []
    for p in pairs:
        label = split
        if split == FITTED and not fitted[p.other.gpu]:
            label = SHIPPED_HELD_OUT  # the GPU's shipped profile saw none of these rows
        sides = []
        for row in (p.other, p.reference):
            profile = profile_for(row.gpu, row.model, "vllm-v1") if profile_for is not None else None
            sides.append(replay(row, profile, **overrides))
        if sides[0] is None or sides[1] is None:
            continue
        (other, other_weights), (reference, reference_weights) = sides
        case = p.case
        if max(other_weights, reference_weights) > TIGHT_WEIGHT_FRACTION:
            case += " [tight memory]"
        ratio = other / reference
        o = p.other
        out.append(Comparison(SUITE, case, METRIC, o.gpu, o.model, p.measured_ratio, ratio, label))
    return out
