"""Suite ``nim-h100``: closed-loop serving at fixed concurrency on 2 x H100 (NVIDIA NIM 1.8.0).

Data: the shipped public rows of source ``nvidia_nim_benchmarking_llm_1.0.0`` (NVIDIA, *NIM LLMs
Benchmarking guide* 1.0.0, "Performance"; ``data/public/SOURCES.md``): Llama-3.3-70B-Instruct
(the Llama-3.1-70B architecture) in FP8 at TP 2 on "2 x H100 80G", 5,000-token prompts answered
with 500 tokens at concurrency 1, 5, 25, 50, 100, 150, 200 and 250, and 500-token prompts
answered with 2,000 tokens at concurrency 1; per run the mean TTFT (client side: queueing,
prefill, network), the ITL and the output-token throughput of the deployment. No Kavier
constant was fitted on these rows: every comparison is held out, whatever the split.

The replay mirrors the benchmark: ``concurrency`` closed-loop clients, each sending its next
request when the previous one ends, exact lengths, one replica of 2 x H100-SXM (the form factor
is not stated; the SXM part is Kavier's "H100 80G" with NVLink), FP8 weights and KV cache. NIM
runs TensorRT-LLM; Kavier replays it with its vLLM-v1 engine (no TensorRT-LLM preset), so the
errors include the difference between the two schedulers. Every figure is taken in the steady
state: requests in the order sent, the first ``concurrency`` (all sent at once at the start)
and the last ``concurrency`` (sent while clients finish) are left out; throughput is the output
tokens emitted between the first and the last kept request's sending, over that time. ``ITL``
is compared with the kept requests' mean TPOT (AIPerf's inter-token latency of a request is
``(latency - TTFT) / (output tokens - 1)``; the table's statistic is not stated, the mean is
assumed).

A run is *saturated* when its measured throughput is within 5 % of the highest of its table
(the server's plateau): its TTFT is then mostly queueing, and is reported apart as
``ttft_saturated_s``.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from kavier.validate.compare import FITTED, HELD_OUT, SHIPPED_HELD_OUT, Comparison
from kavier.validate.mlenergy import tokens_in_window
from kavier.validate.public import public_rows

SUITE = "nim-h100"
SOURCE = "nvidia_nim_benchmarking_llm_1.0.0"
GPU, MODEL, TP = "H100-SXM", "Llama-3.1-70B", 2
SATURATED_SHARE = 0.95  # of the table's highest throughput
# measured column -> (metric, predicted figure)
MEASURED = {
    "ttft_s": ("ttft_s", "ttft_s"),
    "itl_s": ("itl_s", "tpot_s"),
    "output_tokens_per_s": ("output_tokens_per_s", "output_tokens_per_s"),
}


def runs() -> list[dict[str, Any]]:
    """The measured runs: lengths, concurrency, each metric's value, and whether saturated."""
    grouped: dict[tuple[int, int, int], dict[str, float]] = defaultdict(dict)
    for row in public_rows(SOURCE):
        key = (int(row["input_tokens"]), int(row["output_tokens"]), int(row["concurrency"]))
        grouped[key][row["metric"]] = float(row["value"])
    plateau: dict[tuple[int, int], float] = defaultdict(float)
    for (isl, osl, _), values in grouped.items():
        plateau[isl, osl] = max(plateau[isl, osl], values.get("output_tokens_per_s", 0.0))
    out = []
    for (isl, osl, conc), values in sorted(grouped.items()):
        top = plateau[isl, osl]
        saturated = len([k for k in grouped if k[:2] == (isl, osl)]) > 1 and (
            values["output_tokens_per_s"] >= SATURATED_SHARE * top
        )
        out.append(
            {"input_tokens": isl, "output_tokens": osl, "concurrency": conc, "saturated": saturated, **values}
        )
    return out


def num_requests(concurrency: int) -> int:
    """Requests per replay: enough that the steady state holds at least ``6 x concurrency``."""
    return max(8 * concurrency, 40)


def steady_state(table: Any, concurrency: int) -> dict[str, float]:
    """TTFT and TPOT means of the kept requests and the throughput between their sendings (see
    the module docstring); ``table`` is a run's requests table."""
    arrival = table.column("arrival_s").to_numpy()
    order = np.argsort(arrival, kind="stable")
    kept = order[concurrency : arrival.size - concurrency]
    if kept.size < 2:  # too few requests for a steady state (e.g. KAVIER_MAX_REQUESTS)
        return dict.fromkeys(("ttft_s", "tpot_s", "output_tokens_per_s"), float("nan"))
    t0, t1 = float(arrival[kept[0]]), float(arrival[kept[-1]])
    first = table.column("first_token_s").to_numpy()
    finish = table.column("finish_s").to_numpy()
    n_out = table.column("num_output_tokens").to_numpy()
    tokens = int(tokens_in_window(first, finish, n_out, t0, t1).sum())
    return {
        "ttft_s": float(np.mean(table.column("ttft_s").to_numpy()[kept])),
        "tpot_s": float(np.mean(table.column("tpot_s").to_numpy()[kept])),
        "output_tokens_per_s": tokens / (t1 - t0) if t1 > t0 else float("nan"),
    }


def replay(run: dict[str, Any], **overrides: Any) -> dict[str, float]:
    """The predicted steady-state figures of one measured run."""
    from kavier.api import simulate

    conc = run["concurrency"]
    scenario = {
        "llm": MODEL,
        "gpu": GPU,
        "tp": TP,
        "gpus": TP,
        "weight_dtype": "fp8",
        "kv_dtype": "fp8",
        "workload": "closed-loop",
        "concurrency": conc,
        "num_requests": num_requests(conc),
        "input_tokens": str(run["input_tokens"]),
        "output_tokens": str(run["output_tokens"]),
        "prefix_cache": "off",
        **overrides,
    }
    return steady_state(simulate(**scenario).requests, conc)


def run(
    data: Any = None, split: str = HELD_OUT, profile_for: Any = None, **overrides: Any
) -> list[Comparison]:
    """Every run's comparisons (the data ships with Kavier, ``data`` is not read);
    ``profile_for(gpu, model, engine)`` gives the profile each replay uses (None: the shipped one)."""
    label = SHIPPED_HELD_OUT if split == FITTED else split
    if profile_for is not None:
        overrides = {**overrides, "perf_profile": profile_for(GPU, MODEL, "vllm-v1")}
    out = []
    for measured in runs():
        predicted = replay(measured, **overrides)
        case = f"{measured['input_tokens']}/{measured['output_tokens']} concurrency {measured['concurrency']}"
        for column, (metric, key) in MEASURED.items():
            if column not in measured or not np.isfinite(predicted[key]):
                continue
            if metric == "ttft_s" and measured["saturated"]:
                metric = "ttft_saturated_s"
            out.append(Comparison(SUITE, case, metric, GPU, MODEL, measured[column], predicted[key], label))
    return out
