"""``kavier.observers.itl``: the distribution of every gap between two output tokens."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import kavier
from kavier.events import Activity
from kavier.observers.itl import KEYS, RELATIVE_BIN_WIDTH, InterTokenLatency, bin_of, bin_value
from tests.runs import SERVE


def _pieces(durations_s, decode_seqs, iterations, prefill_tokens=None) -> Activity:
    n = len(durations_s)
    t1 = np.cumsum(durations_s, dtype=float)
    zeros = np.zeros(n)
    return Activity(
        replica=np.zeros(n, dtype=np.int64),
        t0=t1 - np.asarray(durations_s, dtype=float),
        t1=t1,
        utilization=zeros,
        compute_fraction=zeros,
        memory_fraction=zeros,
        kv_bytes=zeros,
        kv_bytes_per_s=None,
        detail={
            "prefill_tokens": np.asarray(
                prefill_tokens if prefill_tokens is not None else zeros, dtype=float
            ),
            "decode_seqs": np.asarray(decode_seqs, dtype=float),
            "iterations": np.asarray(iterations, dtype=float),
        },
    )


def test_percentiles_and_mean_of_known_gaps():
    itl = InterTokenLatency(None, None)
    # 4 decode iterations of 10 ms with 3 sequences (12 gaps), one 40 ms iteration carrying a
    # prompt beside 3 sequences (3 gaps), one prefill-only iteration (no gap)
    itl.on_activity(_pieces([0.040, 0.5, 0.040], [3, 0, 3], [4, 1, 1], [0, 800, 512]))
    s = itl.summary()
    assert s["itl_mean_s"] == pytest.approx((12 * 0.010 + 3 * 0.040) / 15, rel=1e-12)
    assert s["itl_p50_s"] == pytest.approx(0.010, rel=RELATIVE_BIN_WIDTH)
    assert s["itl_p90_s"] == pytest.approx(0.040, rel=RELATIVE_BIN_WIDTH)
    assert s["itl_p99_s"] == pytest.approx(0.040, rel=RELATIVE_BIN_WIDTH)


@given(st.floats(1e-6, 1e4))
def test_a_bins_middle_is_within_half_a_bin_of_every_gap_in_it(gap_s):
    middle = bin_value(int(bin_of(np.array([gap_s]))[0]))
    assert abs(middle / gap_s - 1.0) <= RELATIVE_BIN_WIDTH / 2 * 1.001


def test_no_decoding_gives_null_figures():
    s = kavier.simulate(
        requests={"num_input_tokens": [800, 900], "num_output_tokens": [1, 1]}, **SERVE
    ).summary
    assert all(s[key] is None for key in KEYS)


def test_thesis_preset_has_null_figures():
    s = kavier.simulate(preset="thesis").summary
    assert all(s[key] is None for key in KEYS)
    assert list(s).index("itl_mean_s") == list(s).index("tpot_p99_s") + 1


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(2, 80),
    rate=st.floats(1.0, 80.0),
    system=st.sampled_from(
        [
            {"llm": "Llama-3.1-8B", "gpu": "H100-SXM"},
            {"llm": "Llama-3.1-70B", "gpu": "H100-SXM", "tp": 4, "gpus": 4},
            {"llm": "Llama-3.1-8B", "gpu": "A10", "engine": "vllm-v0"},
            {"llm": "Llama-3.1-70B", "gpu": "H100-SXM", "tp": 2, "pp": 2, "gpus": 4},
            {"llm": "Llama-3.1-8B", "gpu": "A100-80GB", "engine": "sglang"},
        ]
    ),
    seed=st.integers(0, 10_000),
)
def test_the_mean_gap_is_the_requests_decode_time_over_their_gaps(n, rate, system, seed):
    # Without preemption every gap is an iteration a request decodes in: the mean gap is the
    # requests' time from first to last token over their gaps, whatever the batching did.
    r = kavier.simulate(workload="poisson", num_requests=n, rate=rate, seed=seed, opendc=False, **system)
    t = r.requests
    n_out = t.column("num_output_tokens").to_numpy()
    decode_s = (t.column("finish_s").to_numpy() - t.column("first_token_s").to_numpy())[n_out > 1]
    gaps = (n_out[n_out > 1] - 1).sum()
    s = r.summary
    if s["preemptions"] or not gaps:
        return
    assert s["itl_mean_s"] == pytest.approx(decode_s.sum() / gaps, rel=1e-9)
    assert s["itl_p50_s"] <= s["itl_p90_s"] <= s["itl_p99_s"]


def test_a_prompt_beside_decoding_sequences_puts_the_median_gap_below_the_mean():
    # ML.ENERGY's measured runs: most iterations carry no prompt, so the median gap (median ITL)
    # is below the mean gap (avg_batch / throughput); e.g. Llama-3.1-70B, max_num_seqs 256:
    # 39.8 ms against 51.9 ms. A steady stream of short prompts into a batch of 64 does the same.
    n = 600
    rng = np.random.default_rng(1)
    requests = {
        "num_input_tokens": np.full(n, 224),
        "num_output_tokens": rng.integers(100, 600, n),
        "arrival_s": np.zeros(n),
    }
    s = kavier.simulate(requests=requests, max_num_seqs=64, **SERVE).summary
    assert s["itl_p50_s"] < s["itl_mean_s"] < s["itl_p99_s"]
