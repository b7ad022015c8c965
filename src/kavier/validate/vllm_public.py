"""Suite ``vllm-public``: public ``vllm bench serve`` runs (vLLM V1) on GPUs other than H100.

Data: ``data/public/vllm_serving.csv`` (built in; sources and what was transcribed:
``data/public/SOURCES.md``), one row per run and metric. Each run is replayed as the benchmark
client sends it: ``num_prompts`` requests whose input and output lengths are uniform integers in
``[L(1 - r), L(1 + r)]`` (``r`` the row's ``range_ratio``; 0: every request exactly ``L``),
outputs run to their full length (the rows' outputs did: total generated tokens = requests x
length); arrivals all at 0 for ``request_rate_rps`` inf, else Poisson at that rate rescaled so
the last is sent at ``N / rate`` (``vllm bench serve``'s ``get_request``); with
``max_concurrency`` the run is closed-loop (``workload = "closed-loop"``, as many clients as the
limit, no think time). Engine ``vllm-v1``, the row's TP and weight dtype, the replica's KV cache
set to the GiB the server logged (``kv_cache_gib_per_gpu`` in ``server_flags``), prefix caching
off (the prompts within a run share no prefix).

Compared, where the run reports them: ``ttft_s`` (mean TTFT), ``tpot_s`` (mean TPOT),
``itl_s`` (median ITL: the benchmark pools every gap between two streamed chunks of every
request of the run; predicted as the median of every gap between two output tokens, the
summary's ``itl_p50_s``, kavier.observers.itl) and ``output_tokens_per_s`` (output tokens /
benchmark duration, the duration running from the first send to the last token). TTFT is not
compared for rows whose notes say it is confounded (prefix-cache reuse across the source's
runs). No constant was fitted on these runs: every comparison is held out.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from kavier.validate.compare import FITTED, HELD_OUT, SHIPPED_HELD_OUT, Comparison
from kavier.validate.public import VLLM_SERVING, shipped_rows

SUITE = "vllm-public"
FILE = VLLM_SERVING
GIB = 1024**3
CONFOUNDED_TTFT = "TTFT confounded"
# measured metric name -> (compared metric, factor to the compared metric's unit)
MEASURED = {
    "mean_ttft_ms": ("ttft_s", 1e-3),
    "mean_tpot_ms": ("tpot_s", 1e-3),
    "median_itl_ms": ("itl_s", 1e-3),
    "output_tokens_per_s": ("output_tokens_per_s", 1.0),
}
RUN_KEYS = (
    "source_id", "url", "vllm_version", "gpu", "num_gpus", "tp", "model", "dtype", "input_tokens",
    "output_tokens", "range_ratio", "num_prompts", "request_rate_rps", "max_concurrency", "server_flags",
)  # fmt: skip


def read_rows(path: Path = FILE) -> list[dict[str, str]]:
    """The file's rows as text."""
    return shipped_rows(path)


def runs(rows: list[dict[str, str]]) -> list[dict[str, Any]]:
    """The measured runs: each run's keys and ``metrics`` {name: value}, in file order."""
    out: dict[tuple[str, ...], dict[str, Any]] = {}
    for row in rows:
        key = tuple(row[k] for k in RUN_KEYS)
        run = out.setdefault(key, {**{k: row[k] for k in RUN_KEYS}, "notes": row["notes"], "metrics": {}})
        run["metrics"][row["metric"]] = float(row["value"])
    return list(out.values())


def flags(run: dict[str, Any]) -> dict[str, str]:
    """The ``name=value`` items of the run's ``server_flags`` (prose items are skipped)."""
    items = (part.strip().split("=", 1) for part in run["server_flags"].split(";"))
    return {kv[0].strip(): kv[1].strip() for kv in items if len(kv) == 2 and " " not in kv[0].strip()}


def lengths(mean: int, ratio: float, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` uniform integer lengths in ``[L(1 - r), L(1 + r)]`` (at least 1 token)."""
    low, high = max(1, int(mean * (1 - ratio))), max(1, int(mean * (1 + ratio)))
    return rng.integers(low, high + 1, size=n)


def arrivals(n: int, rate: float, rng: np.random.Generator) -> np.ndarray:
    """Send times (s): all 0 for an infinite rate, else Poisson gaps rescaled so the last is sent
    at ``n / rate``."""
    if math.isinf(rate):
        return np.zeros(n)
    times = np.cumsum(rng.exponential(1.0 / rate, n))
    return times * ((n / rate) / times[-1])


def workload(run: dict[str, Any], seed: int = 0) -> dict[str, np.ndarray]:
    """The run's requests as columns (``num_input_tokens``, ``num_output_tokens``, ``arrival_s``)."""
    rng = np.random.default_rng(seed)
    n, ratio = int(run["num_prompts"]), float(run["range_ratio"] or 0)
    return {
        "num_input_tokens": lengths(int(run["input_tokens"]), ratio, n, rng),
        "num_output_tokens": lengths(int(run["output_tokens"]), ratio, n, rng),
        "arrival_s": arrivals(n, float(run["request_rate_rps"]), rng),
    }


def scenario_of(run: dict[str, Any]) -> dict[str, Any]:
    """The scenario keys of one run (see the module docstring)."""
    from kavier.library.catalog import load_catalog

    tp = int(run["tp"])
    keys: dict[str, Any] = {
        "llm": run["model"],
        "gpu": run["gpu"],
        "tp": tp,
        "replicas": 1,
        "engine": "vllm-v1",
        "weight_dtype": run["dtype"],
        "prefix_cache": "off",
        "export_rate": 0.1,
    }
    given = flags(run)
    for name, key in (("max_num_seqs", "max_num_seqs"), ("max_num_batched_tokens", "max_batched_tokens")):
        if name in given:
            keys[key] = int(given[name])
    if "kv_cache_gib_per_gpu" in given:
        catalog = load_catalog()
        gpu, model = catalog.gpu(run["gpu"]), catalog.model(run["model"])
        weights = model.num_params * 2 / tp  # bf16/fp16 weights per GPU (bytes)
        kv = float(given["kv_cache_gib_per_gpu"]) * GIB
        keys["activation_reserve_gib"] = 0.0
        keys["gpu_memory_utilization"] = min(1.0, (weights + kv) / gpu.memory_bytes)
    return keys


def predict(run: dict[str, Any], **overrides: Any) -> dict[str, float]:
    """The predicted figures of one run, keyed by compared metric."""
    from kavier.api import simulate

    scenario = {**scenario_of(run), **overrides}
    if run["max_concurrency"]:
        n, ratio = int(run["num_prompts"]), float(run["range_ratio"] or 0)
        spec = (
            (lambda L: str(L))
            if ratio == 0
            else (lambda L: f"uniform:{max(1, int(L * (1 - ratio)))}:{int(L * (1 + ratio))}")
        )
        scenario |= {
            "workload": "closed-loop",
            "concurrency": int(run["max_concurrency"]),
            "num_requests": n,
            "input_tokens": spec(int(run["input_tokens"])),
            "output_tokens": spec(int(run["output_tokens"])),
        }
        result = simulate(**scenario)
    else:
        result = simulate(requests=workload(run), **scenario)
    table = result.requests
    ttft = table.column("ttft_s").to_numpy()
    tpot = table.column("tpot_s").to_numpy()
    n_out = table.column("num_output_tokens").to_numpy()
    finish = table.column("finish_s").to_numpy()
    arrival = table.column("arrival_s").to_numpy()
    ok = np.isfinite(tpot) & (n_out > 1)
    itl = result.summary["itl_p50_s"]
    return {
        "ttft_s": float(np.mean(ttft)),
        "tpot_s": float(np.mean(tpot[ok])) if ok.any() else math.nan,
        "itl_s": itl,
        "output_tokens_per_s": float(n_out.sum() / (finish.max() - arrival.min())),
    }


def run(
    data: str | Path | None = None, split: str = HELD_OUT, profile_for: Any = None, **overrides: Any
) -> list[Comparison]:
    """Every run's comparisons (the data is built in; ``data`` is ignored). ``profile_for(gpu,
    model, engine)`` gives the profile each replay uses (None: the engine's shipped one); the
    shipped profiles were not fitted on these runs, so their split is reported as held out."""
    label = SHIPPED_HELD_OUT if split == FITTED else split
    out = []
    for r in runs(read_rows()):
        extra = dict(overrides)
        if profile_for is not None:
            extra["perf_profile"] = profile_for(r["gpu"], r["model"], "vllm-v1")
        predicted = predict(r, **extra)
        case = f"{r['source_id']} n{r['num_prompts']} {r['input_tokens']}/{r['output_tokens']}"
        for name, (metric, factor) in MEASURED.items():
            if name not in r["metrics"] or (metric == "ttft_s" and CONFOUNDED_TTFT in r["notes"]):
                continue
            measured = r["metrics"][name] * factor
            out.append(
                Comparison(SUITE, case, metric, r["gpu"], r["model"], measured, predicted[metric], label)
            )
    return out
