"""Suite ``splitwise``: batched prefill and decode on A100-80GB and H100-SXM, replayed end to end.

Data: ``measurements/splitwise_llama2_70b_bloom_176b_a100_h100.csv`` (the Splitwise simulator's
``perf_model.csv``, MIT): for Llama-2-70B (TP 2, 4, 8) and BLOOM-176B (TP 8), ``prompt_time``
(the prefill of a whole batch of ``batch_size`` prompts of ``prompt_size`` tokens), ``token_time``
(one decode step of the batch) and ``average_power`` (per GPU, as a fraction of the GPU's
maximum power, over the run). Power-capped H100 rows are left out.

Each measured configuration (repeats share one median) is replayed as a run: ``batch_size``
requests of ``prompt_size`` input and ``token_size`` output tokens arrive at 0 on one replica of
``tp`` GPUs, with a token budget and sequence limit that hold the whole batch (the measurement's
single batched prefill) and no prefix cache. Then ``prefill_s`` is the batch's first-token time,
``decode_step_s`` its mean time per output token after the first, and ``avg_power_fraction`` the
run's average power per GPU over the GPU's maximum. Rows that cannot be real (a prefill faster
than peak FLOP/s, or an end-to-end time far beyond prefill plus decode) are dropped, as
``kavier calibrate`` drops them, and so are configurations whose batch does not fit in the
replica's KV memory.
"""

from __future__ import annotations

import csv
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from kavier.validate.compare import HELD_OUT, Comparison

SUITE = "splitwise"
FILE = "measurements/splitwise_llama2_70b_bloom_176b_a100_h100.csv"
MODELS = {"llama2-70b": "Llama-2-70B", "bloom-176b": "BLOOM-176B"}
GPUS = {"a100-80gb": "A100-80GB", "h100-80gb": "H100-SXM"}


def configurations(path: Path) -> dict[tuple, dict[str, float]]:
    """(model, gpu, tp, prompt, batch, tokens) -> median prompt, token, e2e times (s) and power."""
    from kavier.library.catalog import load_catalog
    from kavier.perf.calibrate import Measurement, _implausible

    catalog = load_catalog()
    samples: dict[tuple, list[dict[str, float]]] = defaultdict(list)
    with path.open(newline="", encoding="utf-8") as fh:
        for line, row in enumerate(csv.DictReader(fh), start=2):
            model, gpu = MODELS.get(row["model"]), GPUS.get(row["hardware"])
            if model is None or gpu is None:
                continue
            tp, p, b, t = (
                int(row[k]) for k in ("tensor_parallel", "prompt_size", "batch_size", "token_size")
            )
            m = Measurement(
                line=line,
                batch_size=b,
                prompt_size=p,
                tp=tp,
                prompt_time_s=float(row["prompt_time"]) / 1e3,
                token_time_s=float(row["token_time"]) / 1e3,
                context_tokens=p + t / 2.0,
                token_size=t,
                e2e_time_s=float(row["e2e_time"]) / 1e3,
            )
            if _implausible(m, catalog.model(model), catalog.gpu(gpu)):
                continue
            samples[(model, gpu, tp, p, b, t)].append(
                {
                    "prefill_s": m.prompt_time_s,
                    "decode_step_s": m.token_time_s,
                    "avg_power_fraction": float(row["average_power"]),
                    "peak_power_fraction": float(row["peak_power"]),
                }
            )
    return {
        key: {metric: statistics.median(s[metric] for s in rows) for metric in rows[0]}
        for key, rows in samples.items()
    }


def replay(model: str, gpu: str, tp: int, prompt: int, batch: int, tokens: int, **overrides: Any) -> dict:
    """Predicted prefill_s, decode_step_s and avg_power_fraction of one batch (None: no fit)."""
    from kavier.api import simulate
    from kavier.errors import ScenarioError

    requests = {
        "num_input_tokens": np.full(batch, prompt),
        "num_output_tokens": np.full(batch, tokens),
        "arrival_s": np.zeros(batch),
    }
    scenario = {
        "llm": model,
        "gpu": gpu,
        "tp": tp,
        "replicas": 1,
        "prefix_cache": "off",
        "max_num_seqs": max(256, batch),
        "max_batched_tokens": max(8192, batch * prompt),
        "export_rate": 1.0,
        # Splitwise timed the engine offline (batches handed to it directly): no server frontend
        "frontend_s_per_request": 0.0,
        "frontend_s_per_token": 0.0,
        **overrides,
    }
    try:
        result = simulate(requests=requests, **scenario)
    except ScenarioError:
        return {}
    s = result.summary
    if s["preemptions"]:
        return {}
    table = result.requests
    first = table.column("first_token_s").to_numpy()
    finish = table.column("finish_s").to_numpy()
    if first.max() - first.min() > 1e-9:  # the batch did not prefill together (KV memory)
        return {}
    catalog_gpu = _gpu(gpu)
    return {
        "prefill_s": float(first.max()),
        "decode_step_s": float(np.mean((finish - first) / max(tokens - 1, 1))),
        "avg_power_fraction": s["avg_power_w"] / (tp * catalog_gpu.max_power_w),
    }


def _gpu(name: str) -> Any:
    from kavier.library.catalog import load_catalog

    return load_catalog().gpu(name)


# Splitwise's 8,192-token rows report an average power of 0.17-0.18 of the maximum at every
# tensor-parallel degree, against 0.39-0.68 for 4,096 tokens and a peak of 1.0: an averaging
# window longer than the run. Rows whose average is under 30 % of their own peak are left out.
MIN_AVERAGE_OF_PEAK = 0.3

# The engine of the measurements (Splitwise profiled a vLLM of 2023, the V0 era): its host times.
ENGINE = "vllm-v0"


def run(
    data: str | Path | None = None, split: str = HELD_OUT, profile_for: Any = None, **overrides: Any
) -> list[Comparison]:
    """Every configuration's comparisons (empty when the file is not found); ``profile_for(gpu,
    model)`` gives the profile each replay uses (None: the engine's shipped one)."""
    from kavier.validate.data import find

    path = find(FILE, data)
    if path is None:
        return []
    out = []
    for (model, gpu, tp, p, b, t), measured in configurations(path).items():
        extra = {"engine": ENGINE, **overrides}
        if profile_for is not None:
            extra["perf_profile"] = profile_for(gpu, model, ENGINE)
        predicted = replay(model, gpu, tp, p, b, t, **extra)
        if not predicted:
            continue
        case = f"{model} {gpu} tp{tp} batch {b} prompt {p} out {t}"
        for metric, value in measured.items():
            if metric == "peak_power_fraction":
                continue
            if (
                metric == "avg_power_fraction"
                and value < MIN_AVERAGE_OF_PEAK * measured["peak_power_fraction"]
            ):
                continue  # an averaging window longer than the run (see below)
            if value > 0:  # power was measured on some configurations only (0 elsewhere)
                out.append(Comparison(SUITE, case, metric, gpu, model, value, predicted[metric], split))
    return out
