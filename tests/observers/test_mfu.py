"""``kavier.observers.mfu``: model FLOPs and memory-bandwidth utilisation in the summary."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import kavier
from kavier.engine.system import plan_replicas
from kavier.observers.mfu import KEYS
from tests.runs import SERVE


def test_one_request_matches_a_hand_computation():
    prompt, out = 1500, 3
    r = kavier.simulate(requests={"num_input_tokens": [prompt], "num_output_tokens": [out]}, **SERVE)
    s = r.summary
    plan = plan_replicas(r.scenario)[0]
    perf, gpu = plan.perf, plan.gpu
    assert perf.flops == gpu.flops_fp16  # bf16 weights: the dense FP16/BF16 peak
    # one prefill iteration of the whole prompt, then decode steps at contexts P + 1 and P + 2
    pre = perf.iteration(prompt, prompt * (prompt + 1) / 2, 0, 0, 0)
    dec = [perf.iteration(0, 0, 0, 1, prompt + k) for k in (1, 2)]
    dec_s = sum(c.time_s for c in dec)
    assert s["total_prefill_s"] == pytest.approx(pre.time_s, rel=1e-12)
    assert s["total_decode_s"] == pytest.approx(dec_s, rel=1e-9)
    assert s["mfu_prefill"] == pytest.approx(pre.flops / (pre.time_s * gpu.flops_fp16), rel=1e-9)
    assert s["mbu_prefill"] == pytest.approx(pre.bytes / (pre.time_s * gpu.memory_bandwidth), rel=1e-9)
    assert s["mfu_decode"] == pytest.approx(sum(c.flops for c in dec) / (dec_s * gpu.flops_fp16), rel=1e-9)
    assert s["mbu_decode"] == pytest.approx(
        sum(c.bytes for c in dec) / (dec_s * gpu.memory_bandwidth), rel=1e-9
    )
    busy = pre.time_s + dec_s
    flops = pre.flops + sum(c.flops for c in dec)
    moved = pre.bytes + sum(c.bytes for c in dec)
    assert s["mfu_mean"] == pytest.approx(flops / (busy * gpu.flops_fp16), rel=1e-9)
    assert s["mbu_mean"] == pytest.approx(moved / (busy * gpu.memory_bandwidth), rel=1e-9)
    # a compute-bound prefill and a memory-bound decode
    assert s["mfu_prefill"] > s["mfu_decode"] and s["mbu_decode"] > s["mbu_prefill"]


def test_a_prefill_only_run_has_no_decode_figures():
    r = kavier.simulate(requests={"num_input_tokens": [800, 900], "num_output_tokens": [1, 1]}, **SERVE)
    s = r.summary
    assert s["mfu_decode"] is None and s["mbu_decode"] is None
    assert s["mfu_mean"] == pytest.approx(s["mfu_prefill"])


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(1, 60),
    rate=st.floats(0.5, 50.0),
    system=st.sampled_from(
        [
            {"llm": "Llama-3.1-8B", "gpu": "H100-SXM"},
            {"llm": "Llama-3.1-8B", "gpu": "A100-80GB", "replicas": 2, "gpus": 2},
            {"llm": "Llama-3.1-70B", "gpu": "H100-SXM", "tp": 4, "gpus": 4},
            {"llm": "Llama-3.1-70B", "gpu": "H100-SXM", "tp": 2, "pp": 2, "gpus": 4, "weight_dtype": "fp8"},
            {"llm": "Mixtral-8x7B", "gpu": "H100-SXM", "tp": 2, "gpus": 2},
        ]
    ),
    seed=st.integers(0, 10_000),
)
def test_fractions_lie_in_0_1_and_split_the_flops_by_phase(n, rate, system, seed):
    r = kavier.simulate(
        timeline=True, workload="poisson", num_requests=n, rate=rate, seed=seed, opendc=False, **system
    )
    s = r.summary
    for key in KEYS:
        assert s[key] is None or 0.0 <= s[key] <= 1.0, key
    assert s["mfu_mean"] is not None and s["mbu_mean"] is not None
    # a piece's seconds, FLOPs and bytes go to prefill and decode by its token share, the same
    # split as total_prefill_s / total_decode_s (GPU-seconds): the two phases add up to the trace
    plan = plan_replicas(r.scenario)[0]
    flops = sum(e["args"]["flops"] for e in r.timeline["traceEvents"] if e["ph"] == "X")
    phases = ("prefill", "decode")
    by_phase = sum((s[f"mfu_{p}"] or 0.0) * s[f"total_{p}_s"] * plan.perf.flops for p in phases)
    assert by_phase == pytest.approx(flops, rel=1e-6)
    assert s["mfu_mean"] * s["gpu_busy_s"] * plan.perf.flops == pytest.approx(flops, rel=1e-6)


def test_thesis_preset_has_null_figures():
    s = kavier.simulate(preset="thesis", num_requests=10).summary
    assert all(s[key] is None for key in KEYS)
    assert list(s).index("mfu_mean") == list(s).index("gpu_utilization_mean") + 1
