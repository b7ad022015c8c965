"""Suite ``mlenergy-h100``: steady-state serving on H100-SXM (vLLM 0.11.1), replayed as measured.

Data: ``measurements/mlenergy_v3_h100_llama_chat.csv``, 42 runs of The ML.ENERGY Benchmark v3.0
(Chung et al., 2025): Llama-3.1-8B on 1 GPU, Llama-3.1-70B and Llama-3.3-70B (bf16) on 4,
Llama-3.1-405B in Meta's FP8 checkpoint on 8 (its MLPs FP8, its self-attention, first and last
layers 16-bit: the catalogue's ``Llama-3.1-405B-FP8``), LMArena chat prompts (mean input 224
tokens; outputs of the model's own lengths, mean ``avg_output_len`` and coefficient of variation
``out_cv``), ``max_num_seqs`` 8..1024, ``max_num_batched_tokens`` 8192, chunked prefill on, every
request queued at once.

The replay mirrors the measurement: ``N`` requests arrive at 0 on one replica of ``num_gpus``
GPUs (``N = 1024 x repeats``; the rows do not give ``repeats``, so ``N`` is the smallest
multiple of 1024 of at least ``4 x max_num_seqs``, which leaves a steady state of at least half
the run); input lengths lognormal with mean 224 tokens and CV 1 (the CV is not published: an
assumption), output lengths lognormal with the row's mean and CV. Every figure is taken over the
measurement's steady-state window only: from the moment ``max_num_seqs`` requests have their
first token to the moment ``N - max_num_seqs - 1`` have finished. ``avg_power_w`` is the GPUs'
power summed over the replica's GPUs (as the benchmark sums NVML readings), ``j_per_output_token``
the GPU energy in the window over the output tokens produced in it, ``avg_batch`` the mean
number of running requests. ``itl_s`` is not taken in the window: the benchmark pools every
request's gaps between two streamed chunks over the whole run (its ``median_itl_ms``, from the
client's ``itl`` lists, a chunk of ``n`` tokens counting as ``n`` gaps of a ``1/n`` share; the
mlenergy-data package, ``records/runs.py``), so the prediction is the run's median gap between
two output tokens, the summary's ``itl_p50_s`` (kavier.observers.itl).
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import numpy as np

from kavier.validate.compare import HELD_OUT, Comparison

SUITE = "mlenergy-h100"
FILE = "measurements/mlenergy_v3_h100_llama_chat.csv"
MEAN_INPUT_TOKENS = 224
INPUT_CV = 1.0
MEASURED = {
    "output_tok_s": "output_tokens_per_s",
    "j_per_token": "j_per_output_token",
    "avg_power_w": "avg_power_w",
    "avg_batch": "avg_batch",
    "median_itl_ms": "itl_s",
}


def rows(path: Path) -> list[dict[str, str]]:
    """The file's rows as text."""
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def scenario_of(row: dict[str, str]) -> dict[str, Any]:
    """The scenario keys of one measured configuration."""
    model = row["model"]
    fp8 = model.endswith("-FP8") or row["dtype"] == "fp8"
    max_seqs = int(row["max_num_seqs"])
    return {
        "llm": model,  # Llama-3.1-405B-FP8 is Meta's checkpoint: FP8 MLPs, 16-bit attention
        "gpu": "H100-SXM",
        "tp": int(row["num_gpus"]),
        "replicas": 1,
        "weight_dtype": "fp8" if fp8 else "bf16",
        "max_num_seqs": max_seqs,
        "max_batched_tokens": 8192,
        "chunked_prefill": True,
        "prefix_cache": "off",
        "gpu_memory_utilization": 0.95,  # the benchmark starts vLLM with 0.95
        "export_rate": 0.1,
    }


def architecture_of(row: dict[str, str]) -> str:
    """The model a row is grouped and held out by: its architecture, whichever checkpoint
    (Llama-3.3-70B is Llama-3.1-70B's; Meta's FP8 405B is Llama-3.1-405B's)."""
    return row["model"].replace("Llama-3.3-70B", "Llama-3.1-70B").removesuffix("-FP8")


def num_requests(max_num_seqs: int) -> int:
    """``1024 x repeats`` with at least four times ``max_num_seqs`` requests."""
    return 1024 * max(1, math.ceil(4 * max_num_seqs / 1024))


def workload(n: int, mean_output: float, output_cv: float, seed: int = 0) -> dict[str, np.ndarray]:
    """``n`` requests at 0 with lognormal input (mean 224, CV 1) and output lengths (>= 1 token)."""
    rng = np.random.default_rng(seed)

    def lognormal(mean: float, cv: float) -> np.ndarray:
        sigma2 = math.log(1.0 + cv * cv)
        values = rng.lognormal(math.log(mean) - sigma2 / 2.0, math.sqrt(sigma2), n)
        return np.maximum(np.rint(values), 1).astype(np.int64)

    return {
        "num_input_tokens": lognormal(MEAN_INPUT_TOKENS, INPUT_CV),
        "num_output_tokens": lognormal(mean_output, output_cv),
        "arrival_s": np.zeros(n),
    }


def tokens_in_window(
    first: np.ndarray, finish: np.ndarray, n_out: np.ndarray, t0: float, t1: float
) -> np.ndarray:
    """Output tokens of each request emitted within ``[t0, t1]``: its first at ``first``, its last
    at ``finish``, the others evenly between (the simulator's steps of a request are equal on
    average)."""
    gaps = np.maximum(n_out - 1, 1)
    step = np.where(n_out > 1, (finish - first) / gaps, np.inf)
    with np.errstate(invalid="ignore", divide="ignore"):
        k_lo = np.where(first >= t0, 0, np.ceil((t0 - first) / step))
        k_hi = np.where(finish <= t1, n_out - 1, np.floor((t1 - first) / step))
    k_hi = np.minimum(k_hi, n_out - 1)
    counts = np.maximum(k_hi - k_lo + 1, 0).astype(np.int64)
    single = n_out <= 1  # one token, at ``first``
    counts[single] = ((first >= t0) & (first <= t1))[single]
    return counts


def window(result: Any, max_num_seqs: int) -> tuple[float, float] | None:
    """The steady-state window ``(t0, t1)`` in seconds: from ``max_num_seqs`` requests having
    their first token to ``N - max_num_seqs - 1`` having finished (None: the run has none)."""
    table = result.requests
    first = table.column("first_token_s").to_numpy()
    finish = table.column("finish_s").to_numpy()
    n = first.size
    if n <= 2 * max_num_seqs + 1:
        return None
    t0 = float(np.sort(first)[max_num_seqs - 1])
    t1 = float(np.sort(finish)[n - max_num_seqs - 2])
    return (t0, t1) if t1 > t0 else None


def window_tokens(result: Any, t0: float, t1: float) -> int:
    """Output tokens the run emitted within ``[t0, t1]`` (:func:`tokens_in_window`)."""
    table = result.requests
    first = table.column("first_token_s").to_numpy()
    finish = table.column("finish_s").to_numpy()
    n_out = table.column("num_output_tokens").to_numpy()
    return int(tokens_in_window(first, finish, n_out, t0, t1).sum())


def steady_state(result: Any, max_num_seqs: int) -> dict[str, float] | None:
    """The window's figures (see the module docstring) but ``itl_s``, or None when the run has
    no window."""
    series = result.timeseries
    span = window(result, max_num_seqs)
    if span is None:
        return None
    t0, t1 = span
    start = series.column("time_s").to_numpy()
    width = series.column("interval_s").to_numpy()
    overlap = np.clip(np.minimum(start + width, t1) - np.maximum(start, t0), 0.0, None)
    energy = float(np.sum(series.column("power_w").to_numpy() * overlap))
    running = float(np.sum(series.column("running").to_numpy() * overlap))
    duration = t1 - t0
    tokens = window_tokens(result, t0, t1)
    return {
        "output_tokens_per_s": tokens / duration,
        "j_per_output_token": energy / tokens if tokens else math.nan,
        "avg_power_w": energy / duration,
        "avg_batch": running / duration,
    }


def simulate_run(row: dict[str, str], **overrides: Any) -> Any:
    """One measured run simulated as it was measured (the module docstring): its requests all at
    0 on one replica of its scenario."""
    from kavier.api import simulate

    requests = workload(
        num_requests(int(row["max_num_seqs"])), float(row["avg_output_len"]), float(row["out_cv"])
    )
    return simulate(requests=requests, **{**scenario_of(row), **overrides})


def replay(row: dict[str, str], **overrides: Any) -> dict[str, float] | None:
    """The predicted steady-state figures of one measured run."""
    max_seqs = int(row["max_num_seqs"])
    result = simulate_run(row, **overrides)
    figures = steady_state(result, max_seqs)
    if figures is not None:
        figures["itl_s"] = result.summary["itl_p50_s"]  # every gap of the run, as measured
    return figures


def run(
    data: str | Path | None = None, split: str = HELD_OUT, profile_for: Any = None, **overrides: Any
) -> list[Comparison]:
    """Every run's comparisons (empty when the file is not found); ``profile_for(gpu, model,
    engine)`` gives the profile each replay uses (None: the engine's shipped one)."""
    from kavier.validate.data import find

    path = find(FILE, data)
    if path is None:
        return []
    out = []
    for row in rows(path):
        model = architecture_of(row)
        extra = dict(overrides)
        if profile_for is not None:
            extra["perf_profile"] = profile_for("H100-SXM", model, "vllm-v1")
        predicted = replay(row, **extra)
        if predicted is None:
            continue
        case = f"{row['model']} tp{row['num_gpus']} max_num_seqs {row['max_num_seqs']}"
        for column, metric in MEASURED.items():
            value = float(row[column]) / (1e3 if column.endswith("_ms") else 1.0)
            out.append(Comparison(SUITE, case, metric, "H100-SXM", model, value, predicted[metric], split))
    return out
