"""Suite ``a10-vllm``: the serving preset on the thesis's A10 measurements (vLLM 0.9, batch 1).

Data: the Kavier thesis's Tables 6.5 and 6.6 (the same figures as ``thesis-a10``): the median
prefill latency of one prompt of 64..16,384 tokens, and the median latency of a request of a
7-token prompt answered with 53..13,940 tokens, Llama-3-8B on one NVIDIA A10. Each is replayed
as one request alone on the serving engine: ``ttft_s`` against the prefill latency (the measured
prefill includes the first token), ``e2e_s`` against the request latency.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from kavier.validate.compare import HELD_OUT, Comparison
from kavier.validate.thesis_a10 import DECODE_MEDIANS, DECODE_PROMPT_TOKENS, PREFILL_MEDIANS

SUITE = "a10-vllm"


def run(
    data: Any = None, split: str = HELD_OUT, profile_for: Any = None, **overrides: Any
) -> list[Comparison]:
    """The 18 comparisons (the data is in the thesis, so nothing is read); ``profile_for(gpu,
    model, engine)`` gives the profile the replay uses (None: the engine's shipped one)."""
    from kavier.api import simulate

    if profile_for is not None:
        overrides = {**overrides, "perf_profile": profile_for("A10", "Llama-3-8B", "vllm-v1")}
    prompts = [p for p, _ in PREFILL_MEDIANS]
    outputs = [a for _, a, _ in DECODE_MEDIANS]
    n = len(prompts) + len(outputs)
    requests = {
        "num_input_tokens": np.array(prompts + [DECODE_PROMPT_TOKENS] * len(outputs)),
        "num_output_tokens": np.array([1] * len(prompts) + outputs),
        "arrival_s": np.arange(n) * 10_000.0,  # far apart: each request runs alone
    }
    scenario = {"llm": "Llama-3-8B", "gpu": "A10", "prefix_cache": "off", **overrides}
    table = simulate(requests=requests, **scenario).requests
    ttft = table.column("ttft_s").to_numpy()
    e2e = table.column("e2e_s").to_numpy()
    out = []
    for i, (p, measured) in enumerate(PREFILL_MEDIANS):
        out.append(
            Comparison(SUITE, f"prompt {p}", "ttft_s", "A10", "Llama-3-8B", measured, float(ttft[i]), split)
        )
    for j, (_, actual, measured) in enumerate(DECODE_MEDIANS):
        i = len(prompts) + j
        case = f"output {actual}"
        out.append(Comparison(SUITE, case, "e2e_s", "A10", "Llama-3-8B", measured, float(e2e[i]), split))
    return out
