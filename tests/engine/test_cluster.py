"""``kavier.engine.cluster``: the serving event loop's invariants, determinism and edge caches."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import kavier
from tests.runs import SERVE

requests_strategy = st.lists(
    st.tuples(st.floats(0, 3), st.integers(1, 600), st.integers(1, 200)), min_size=1, max_size=60
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    requests_strategy,
    st.sampled_from(["continuous", "static", "sequential"]),
    st.booleans(),
    st.integers(1, 3),
    st.sampled_from([0.80, 0.9]),
)
def test_invariants(rows, scheduler, chunked, replicas, mem):
    arrivals = np.cumsum([r[0] for r in rows])
    req = {
        "num_input_tokens": [r[1] for r in rows],
        "num_output_tokens": [r[2] for r in rows],
        "arrival_s": arrivals,
    }
    # a tiny KV cache (an A10 nearly full of weights) forces preemptions
    r = kavier.simulate(
        requests=req,
        scheduler=scheduler,
        chunked_prefill=chunked,
        engine="vllm-v1" if chunked else "vllm-v0",  # vLLM v1 always chunks
        replicas=replicas,
        gpu_memory_utilization=mem,
        # without chunking every prompt must fit one iteration (vLLM refuses it otherwise);
        # preempted requests still recompute prompt + output beyond the budget, alone
        max_batched_tokens=512 if chunked else max(512, max(r[1] for r in rows)),
        max_num_seqs=16,
        export_rate=0.5,
    )
    t = r.requests
    ids = t.column("request_id").to_pylist()
    assert sorted(ids) == list(range(len(rows)))  # every request finishes exactly once
    assert r.summary["output_tokens"] == sum(x[2] for x in rows)
    start, first = t.column("start_s").to_numpy(), t.column("first_token_s").to_numpy()
    finish, arrival = t.column("finish_s").to_numpy(), t.column("arrival_s").to_numpy()
    assert (
        np.all(start >= arrival - 1e-9) and np.all(first >= start - 1e-9) and np.all(finish >= first - 1e-9)
    )
    ts = r.timeseries
    blocks_total = r.summary["kv_blocks_total"] / replicas
    assert ts.column("kv_blocks_used").to_numpy().max() <= blocks_total + 1e-6
    assert ts.column("running").to_numpy().max() <= 16 + 1e-9
    energy = ts.column("energy_j").to_numpy().sum()
    assert energy == pytest.approx(r.summary["energy_it_j"], rel=1e-9)


def test_same_seed_same_results():
    a = kavier.simulate(workload="poisson", num_requests=300, rate=5.0, seed=3, replicas=2, router="random")
    b = kavier.simulate(workload="poisson", num_requests=300, rate=5.0, seed=3, replicas=2, router="random")
    assert a.requests.equals(b.requests) and a.timeseries.equals(b.timeseries)


def test_thesis_semantics_in_the_serving_engine_skip_the_prefill():
    req = {
        "num_input_tokens": np.array([1500, 1800]),
        "num_output_tokens": np.array([10, 10]),
        "arrival_s": np.array([0.0, 100.0]),
        "session_id": np.array([7, 7]),
    }
    r = kavier.simulate(requests=req, prefix_cache="thesis", prefix_len=1024, **SERVE)
    assert r.requests.column("cached_tokens").to_pylist() == [0, 1799]
    assert r.summary["prefix_cache_hits"] == 1 and r.summary["prefix_cache_lookups"] == 2


# Requests handed to the engine directly (no server frontend in front of it).
ENGINE_ONLY = {
    "llm": "Llama-3.1-8B",
    "gpu": "H100-SXM",
    "prefix_cache": "off",
    "frontend_s_per_request": 0.0,
    "frontend_s_per_token": 0.0,
}


def test_requests_arriving_at_the_same_instant_share_the_first_batch():
    """All events at a timestamp are applied before a batch is formed: 16 requests at t = 0 on one
    replica are prefilled together in the first iteration (a real engine's step sees its whole
    queue), so they get their first token at the same time."""
    requests = {"num_input_tokens": [256] * 16, "num_output_tokens": [32] * 16, "arrival_s": [0.0] * 16}
    table = kavier.simulate(requests=requests, **ENGINE_ONLY).requests
    first = table.column("first_token_s").to_numpy()
    assert first.max() == first.min()
    assert table.column("start_s").to_numpy().max() == 0.0


def test_an_arrival_at_an_iterations_end_joins_the_next_iteration():
    """A request arriving exactly when a replica's iteration ends is seen by the next batch."""
    one = kavier.simulate(
        requests={"num_input_tokens": [512], "num_output_tokens": [2], "arrival_s": [0.0]}, **ENGINE_ONLY
    ).requests
    t_end = float(one.column("first_token_s")[0].as_py())  # the first iteration's end
    both = kavier.simulate(
        requests={"num_input_tokens": [512, 512], "num_output_tokens": [2, 2], "arrival_s": [0.0, t_end]},
        **ENGINE_ONLY,
    ).requests
    assert both.column("start_s").to_pylist()[1] == t_end


def test_the_frontend_processes_requests_one_at_a_time_before_the_engine():
    """A request reaches the engine ``per_request + per_token x prompt`` after the frontend is
    free: of three arriving together the k-th starts after the first k such times (costs long
    enough for the replica to be idle again by then; TTFT counts from the arrival)."""
    per_request, per_token = 1.0, 1e-4
    prompts = [1000, 500, 2000]
    requests = {"num_input_tokens": prompts, "num_output_tokens": [4] * 3, "arrival_s": [0.0] * 3}
    costs = {"frontend_s_per_request": per_request, "frontend_s_per_token": per_token}
    run = kavier.simulate(requests=requests, **{**ENGINE_ONLY, **costs})
    start = run.requests.column("start_s").to_numpy()
    expected = np.cumsum([per_request + per_token * n for n in prompts])
    assert start == pytest.approx(expected, rel=1e-12)
    assert run.requests.column("arrival_s").to_pylist() == [0.0] * 3
    assert (run.requests.column("ttft_s").to_numpy() > expected).all()
    assert run.summary["frontend_s_per_request"] == per_request


def test_closed_loop_clients_finishing_together_desynchronise_through_the_frontend():
    """Closed-loop clients with fixed lengths finish on the same iteration and send their next
    prompts together: handed to the engine at once, every wave is prefilled in one iteration
    forever (one first-token instant per wave); through the serial frontend they reach the
    engine spread out and the waves break up."""

    def first_token_instants(**costs):
        run = kavier.simulate(
            workload="closed-loop",
            concurrency=16,
            num_requests=160,
            input_tokens="256",
            output_tokens="64",
            opendc=False,
            **{**ENGINE_ONLY, **costs},
        )
        first = run.requests.column("first_token_s").to_numpy()
        return len(np.unique(np.round(first, 9)))

    assert first_token_instants() == 10  # ten waves of sixteen, each prefilled together
    # through the frontend the waves break up: at least twice as many first-token instants
    assert first_token_instants(frontend_s_per_request=None, frontend_s_per_token=None) >= 20


def test_an_empty_prompt_is_served_as_one_token():
    """A request of 0 prompt tokens (BurstGPT's failed requests, an in-memory table) is served as
    the one beginning-of-sequence token a tokenizer always emits: it finishes, and the records
    and the summary count that token (this used to end in an AssertionError)."""
    requests = {"num_input_tokens": [0, 10], "num_output_tokens": [5, 5], "arrival_s": [0.0, 0.0]}
    run = kavier.simulate(requests=requests, **ENGINE_ONLY)
    assert run.requests.column("num_input_tokens").to_pylist() == [1, 10]
    assert run.summary["input_tokens"] == 11 and run.summary["num_requests"] == 2
    assert np.all(np.isfinite(run.requests.column("finish_s").to_numpy()))


def test_max_model_len_rejects_the_long_requests_of_a_trace_before_the_engine():
    # 3 of 6 requests hold more than 1,000 tokens: they are not served, not in the table, and
    # counted; the others are served as if the long ones had never been sent
    lengths = np.array([300, 5000, 400, 1200, 200, 900])
    requests = {
        "num_input_tokens": lengths,
        "num_output_tokens": np.full(6, 100),
        "arrival_s": np.arange(6) * 50.0,  # far apart: each runs alone
    }
    kept = kavier.simulate(requests=requests, max_model_len=1000, prefix_cache="off")
    assert kept.summary["rejected_requests"] == 2 and kept.summary["num_requests"] == 4
    assert kept.requests.column("request_id").to_pylist() == [0, 2, 4, 5]
    alone = kavier.simulate(requests={k: v[[0, 2, 4, 5]] for k, v in requests.items()}, prefix_cache="off")
    assert alone.summary["rejected_requests"] == 0
    np.testing.assert_allclose(
        kept.requests.column("ttft_s").to_numpy(), alone.requests.column("ttft_s").to_numpy()
    )


def test_a_run_whose_every_request_is_rejected_says_so_in_one_line():
    with pytest.raises(kavier.errors.ScenarioError, match="all 5 requests hold more than --max-model-len 10"):
        kavier.simulate(workload="poisson", num_requests=5, input_tokens="50", max_model_len=10)
