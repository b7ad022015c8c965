"""The serving engine: reduction to the thesis at batch one, batching, KV, preemption, routers."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import kavier
from kavier.errors import ScenarioError
from kavier.library.catalog import load_catalog
from kavier.perf.roofline import ServingPerfModel, ServingPerfParams

T_P_PER_TOKEN = 2 * 8e9 / (125e12 * 0.3)
T_T = 2 * 8e9 / (600e9 * 0.6)


def _thesis_like_model(context_terms: bool):
    catalog = load_catalog()
    model = catalog.model("Llama-3-8B")
    # the thesis uses the nominal 8e9 parameters; give the serving model the same count
    from dataclasses import replace

    model = replace(model, num_params=8e9, num_active_params=8e9)
    return ServingPerfModel(model, catalog.gpu("A10"), ServingPerfParams(context_terms=context_terms))


def test_batch_one_without_context_terms_is_the_thesis_model():
    perf = _thesis_like_model(context_terms=False)
    for n in (512, 1000, 4096):  # compute-bound prompts
        assert perf.iteration(n, 0, 0, 0, 0).time_s == pytest.approx(n * T_P_PER_TOKEN + 0.025, rel=1e-12)
    assert perf.iteration(0, 0, 0, 1, 5000).time_s == pytest.approx(T_T, rel=1e-12)


def test_context_terms_add_exactly_attention_flops_and_kv_reads():
    off, on = _thesis_like_model(False), _thesis_like_model(True)
    ctx = 3000
    # decode: memory-bound, so the difference is the KV read of the context
    kv = 2 * 32 * 8 * 128 * 2  # bytes per token
    assert on.iteration(0, 0, 0, 1, ctx).time_s - off.iteration(0, 0, 0, 1, ctx).time_s == pytest.approx(
        kv * ctx / (600e9 * 0.6), rel=1e-9
    )
    # prefill: compute-bound, so the difference is the attention FLOPs
    n = 2000
    pairs = n * (n + 1) / 2
    extra = 4 * 32 * 32 * 128 * pairs / (125e12 * 0.3)
    assert on.iteration(n, pairs, 0, 0, 0).time_s - off.iteration(n, pairs, 0, 0, 0).time_s == pytest.approx(
        extra, rel=1e-9
    )


def test_new_terms_are_off_by_default_and_add_exactly_their_own_time():
    """Ring all-reduce latency scales with tp - 1; the per-sequence decode overhead adds D x s;
    the all-reduce cache spill is off by default and slows only big messages; decode runs agree."""
    from dataclasses import replace

    catalog = load_catalog()
    model, gpu = catalog.model("Llama-2-70B"), catalog.gpu("H100-SXM")
    base = ServingPerfParams(context_terms=False)
    assert base.decode_seq_overhead_s == 0 and base.comm_cache_bytes == 0
    lat = 1e-3  # a huge latency makes the tp dependence plain
    t = {tp: ServingPerfModel(model, gpu, replace(base, comm_latency_s=lat), tp=tp) for tp in (2, 4, 8)}
    z = {tp: ServingPerfModel(model, gpu, replace(base, comm_latency_s=0.0), tp=tp) for tp in (2, 4, 8)}
    for tp in (2, 4, 8):
        extra = t[tp].iteration(0, 0, 0, 1, 100).time_s - z[tp].iteration(0, 0, 0, 1, 100).time_s
        assert extra == pytest.approx(2 * model.num_layers * (tp - 1) * lat, rel=1e-9)
    # Per-sequence decode overhead: D x s on decode iterations only.
    s = 2e-4
    a = ServingPerfModel(model, gpu, base, tp=4)
    b = ServingPerfModel(model, gpu, replace(base, decode_seq_overhead_s=s), tp=4)
    assert b.iteration(0, 0, 0, 32, 32 * 600).time_s - a.iteration(0, 0, 0, 32, 32 * 600).time_s == (
        pytest.approx(32 * s, rel=1e-9)
    )
    assert b.iteration(4096, 0, 0, 0, 0).time_s == a.iteration(4096, 0, 0, 0, 0).time_s
    # Cache spill: small messages barely change, big ones pay the spill bandwidth.
    spill = replace(base, comm_cache_bytes=50e6, comm_spill_efficiency=0.1)
    c = ServingPerfModel(model, gpu, spill, tp=8)
    d = ServingPerfModel(model, gpu, base, tp=8)
    assert c.comm_spill_share(c.allreduce_bytes(64)) < 1e-6
    assert c.comm_spill_share(50e6) == pytest.approx(0.5)
    assert c.iteration(0, 0, 0, 64, 0).time_s == pytest.approx(d.iteration(0, 0, 0, 64, 0).time_s, rel=1e-6)
    big = 32768
    slow = c._comm_s(big) - 2 * model.num_layers * 7 * base.comm_latency_s
    fast = d._comm_s(big) - 2 * model.num_layers * 7 * base.comm_latency_s
    phi = c.comm_spill_share(c.allreduce_bytes(big))
    assert slow / fast == pytest.approx((1 - phi) + phi * base.comm_efficiency / 0.1, rel=1e-9)
    # Closed-form decode runs stay consistent with step-by-step iterations.
    on = ServingPerfModel(model, gpu, replace(spill, decode_seq_overhead_s=s, context_terms=True), tp=8)
    seqs, ctx0, steps = 16, 16 * 700.0, 50
    per_step = [on.iteration(0, 0, 0, seqs, ctx0 + seqs * j).time_s for j in range(steps)]
    _, _, run = on.decode_run(seqs, ctx0, steps)
    np.testing.assert_allclose(run, per_step, rtol=1e-12)
    assert on.decode_line(seqs, ctx0).total(steps) == pytest.approx(sum(per_step), rel=1e-12)


def test_single_request_timing_matches_the_model():
    req = {"num_input_tokens": [1000], "num_output_tokens": [50], "arrival_s": [0.0]}
    r = kavier.simulate(requests=req, context_terms=False)
    row = r.requests.to_pylist()[0]
    n_active = load_catalog().model("Llama-3-8B").num_params
    t_p = 1000 * 2 * n_active / (125e12 * 0.3) + 0.025
    t_t = 2 * n_active / (600e9 * 0.6)
    assert row["ttft_s"] == pytest.approx(t_p, rel=1e-9)  # the prefill iteration emits token 1
    assert row["tpot_s"] == pytest.approx(t_t, rel=1e-9)
    assert row["e2e_s"] == pytest.approx(t_p + 49 * t_t, rel=1e-9)


def test_batching_beats_one_at_a_time():
    rng = np.random.default_rng(0)
    req = {
        "num_input_tokens": rng.integers(100, 2000, 200),
        "num_output_tokens": rng.integers(50, 400, 200),
        "arrival_s": np.sort(rng.uniform(0, 60, 200)),
    }
    batched = kavier.simulate(requests=req).summary
    one = kavier.simulate(requests=req, scheduler="sequential").summary
    static = kavier.simulate(requests=req, scheduler="static").summary
    assert batched["mean_batch_size"] > 5
    assert one["mean_batch_size"] == pytest.approx(1.0)
    assert batched["simulated_time_s"] < static["simulated_time_s"] <= one["simulated_time_s"] + 1e-9
    assert batched["e2e_mean_s"] < one["e2e_mean_s"]


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
        replicas=replicas,
        gpu_memory_utilization=mem,
        max_batched_tokens=512,
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


def test_kv_pressure_preempts_and_recomputes():
    req = {"num_input_tokens": [2000] * 40, "num_output_tokens": [1500] * 40, "arrival_s": np.zeros(40)}
    r = kavier.simulate(requests=req, gpu_memory_utilization=0.80)
    assert r.summary["preemptions"] > 0
    assert r.requests.num_rows == 40
    assert int(np.sum(r.requests.column("preemptions"))) == r.summary["preemptions"]


def test_same_seed_same_results():
    a = kavier.simulate(workload="poisson", num_requests=300, rate=5.0, seed=3, replicas=2, router="random")
    b = kavier.simulate(workload="poisson", num_requests=300, rate=5.0, seed=3, replicas=2, router="random")
    assert a.requests.equals(b.requests) and a.timeseries.equals(b.timeseries)


def test_tensor_parallel_and_memory_errors():
    with pytest.raises(ScenarioError, match="GiB per GPU"):
        kavier.simulate(llm="Llama-3.1-70B", gpu="A100-80GB", num_sessions=2)
    r2 = kavier.simulate(llm="Llama-3.1-70B", gpu="A100-80GB", tp=2, num_sessions=3)
    r4 = kavier.simulate(llm="Llama-3.1-70B", gpu="A100-80GB", tp=4, num_sessions=3)
    assert r2.summary["num_gpus"] == 2 and r4.summary["num_gpus"] == 4
    assert r4.summary["tpot_mean_s"] < r2.summary["tpot_mean_s"]
    fp8 = kavier.simulate(llm="Llama-3.1-70B", gpu="H100-SXM", weight_dtype="fp8", num_sessions=3)
    assert fp8.summary["weight_bytes"] == pytest.approx(load_catalog().model("Llama-3.1-70B").num_params)


def test_moe_reads_more_experts_with_bigger_batches():
    catalog = load_catalog()
    perf = ServingPerfModel(catalog.model("Mixtral-8x7B"), catalog.gpu("H100-SXM"), tp=2)
    one, many = perf.weight_bytes_read(1), perf.weight_bytes_read(256)
    total = catalog.model("Mixtral-8x7B").num_params * 2
    assert one < 0.35 * total and many == pytest.approx(total, rel=1e-6)


def test_routers():
    req = {
        "num_input_tokens": [100] * 12,
        "num_output_tokens": [10] * 12,
        "arrival_s": np.arange(12) * 0.001,
        "session_id": [0, 1, 2, 3] * 3,
    }
    rr = kavier.simulate(requests=req, replicas=3, router="round_robin").requests
    assert sorted(rr.column("replica").to_pylist()) == [0] * 4 + [1] * 4 + [2] * 4
    aff = kavier.simulate(requests=req, replicas=3, router="session_affinity").requests
    by_session = {}
    for s, rep in zip(aff.column("session_id").to_pylist(), aff.column("replica").to_pylist(), strict=True):
        by_session.setdefault(s, set()).add(rep)
    assert all(len(v) == 1 for v in by_session.values())
    for name in ("random", "least_outstanding", "least_kv"):
        assert kavier.simulate(requests=req, replicas=3, router=name).requests.num_rows == 12


def test_closed_loop_keeps_concurrency():
    r = kavier.simulate(
        workload="closed-loop",
        concurrency=4,
        num_requests=60,
        input_tokens="200",
        output_tokens="20",
        think_time_s=0.5,
    )
    assert r.requests.num_rows == 60
    t = r.requests
    arrival, finish = t.column("arrival_s").to_numpy(), t.column("finish_s").to_numpy()
    for moment in np.linspace(0, finish.max(), 50):
        assert np.sum((arrival <= moment) & (finish > moment)) <= 4


def test_heterogeneous_groups(tmp_path):
    scenario = tmp_path / "s.toml"
    scenario.write_text(
        'num_sessions = 20\nrouter = "round_robin"\n'
        '[[replica_groups]]\ncount = 1\ngpu = "A100-80GB"\n'
        '[[replica_groups]]\ncount = 2\ngpu = "L4"\n'
    )
    r = kavier.simulate(scenario)
    assert r.summary["num_replicas"] == 3
    assert set(r.requests.column("replica").to_pylist()) == {0, 1, 2}


def test_goodput_under_slos():
    r = kavier.simulate(num_sessions=20, slo_ttft=0.5, slo_tpot=0.06).summary
    assert 0 <= r["goodput_requests_per_s"] <= r["requests_per_s"]
    ok = kavier.simulate(num_sessions=20, slo_ttft=1e6, slo_tpot=1e6).summary
    assert ok["goodput_requests_per_s"] == pytest.approx(ok["requests_per_s"])


def test_prefill_sequence_overhead_and_attention_efficiency():
    from dataclasses import replace

    catalog = load_catalog()
    model, gpu = catalog.model("Llama-2-70B"), catalog.gpu("A100-80GB")
    base = ServingPerfParams()
    a = ServingPerfModel(model, gpu, base, tp=4)
    # Defaults: no prefill-sequence term, attention at compute_efficiency (bit-identical).
    assert (
        a.iteration(4096, 8 * 512 * 513 / 2, 0, 0, 0, 8).time_s
        == a.iteration(4096, 8 * 512 * 513 / 2, 0, 0, 0).time_s
    )
    s = 0.015
    b = a.with_params(replace(base, prefill_seq_overhead_s=s))
    pairs = 8 * 512 * 513 / 2
    extra = b.iteration(4096, pairs, 0, 0, 0, 8).time_s - a.iteration(4096, pairs, 0, 0, 0, 8).time_s
    assert extra == pytest.approx(8 * s, rel=1e-9)
    # Not paid without prefill tokens (a decode-only iteration).
    assert b.iteration(0, 0, 0, 8, 8 * 600, 8).time_s == a.iteration(0, 0, 0, 8, 8 * 600, 8).time_s
    # Attention FLOPs at their own rate.
    ae = 0.2
    c = a.with_params(replace(base, attention_efficiency=ae))
    attn = a.attn_flops_per_pair * pairs
    rate = 4 * gpu.flops_fp16
    got = c.iteration(4096, pairs, 0, 0, 0).compute_s - a.iteration(4096, pairs, 0, 0, 0).compute_s
    assert got == pytest.approx(attn / (rate * ae) - attn / (rate * base.compute_efficiency), rel=1e-9)
    # Closed-form decode runs stay exact with attention at its own rate.
    seqs, ctx0, steps = 16, 16 * 700.0, 40
    per_step = [c.iteration(0, 0, 0, seqs, ctx0 + seqs * j).time_s for j in range(steps)]
    _, _, run = c.decode_run(seqs, ctx0, steps)
    np.testing.assert_allclose(run, per_step, rtol=1e-12)
    assert c.decode_line(seqs, ctx0).total(steps) == pytest.approx(sum(per_step), rel=1e-12)


def test_engine_charges_each_prefilling_sequence():
    req = {"num_input_tokens": [500] * 4, "num_output_tokens": [2] * 4, "arrival_s": [0.0] * 4}
    base = kavier.simulate(requests=req, context_terms=False).requests.to_pylist()
    slow = kavier.simulate(
        requests=req, context_terms=False, prefill_seq_overhead_s=0.01
    ).requests.to_pylist()
    # the first prompt is prefilled alone (+10 ms), the other three together after it (+10 + 3 x 10 ms)
    assert [round(r1["ttft_s"] - r0["ttft_s"], 9) for r0, r1 in zip(base, slow, strict=True)] == [
        0.01,
        0.04,
        0.04,
        0.04,
    ]


def test_scenario_serving_constants_reach_the_model(tmp_path):
    from dataclasses import fields

    from kavier.engine.system import load_perf_params
    from kavier.perf.profile import write_profile
    from kavier.scenario import Scenario

    names = [f.name for f in fields(ServingPerfParams)]
    scenario_names = {
        "prefill_overhead_s": "overhead_s",  # the thesis's per-request overhead O
    }
    defaults = ServingPerfParams()
    sc = Scenario()
    # Every constant has a scenario field with the model's default.
    for name in names:
        assert getattr(sc, scenario_names.get(name, name)) == getattr(defaults, name), name
    assert load_perf_params(sc) == defaults
    values = {
        "decode_seq_overhead_s": 2e-4,
        "prefill_seq_overhead_s": 0.012,
        "attention_efficiency": 0.4,
        "comm_latency_s": 2e-5,
        "comm_cache_bytes": 5e7,
        "comm_spill_efficiency": 0.2,
        "iteration_overhead_s": 0.01,
        "comm_efficiency": 0.8,
    }
    p = load_perf_params(Scenario(**values))
    for k, v in values.items():
        assert getattr(p, k) == v, k
    # A profile's values take precedence over the scenario's; the others stay the scenario's.
    prof = write_profile(tmp_path / "p.toml", ServingPerfParams(prefill_seq_overhead_s=0.02), {})
    text = prof.read_text().splitlines()
    keep = [
        ln for ln in text if ln.startswith(("prefill_seq_overhead_s", "comm_latency_s", "#", "[")) or not ln
    ]
    prof.write_text("\n".join(keep) + "\n")
    p = load_perf_params(Scenario(**values, perf_profile=str(prof)))
    assert p.prefill_seq_overhead_s == 0.02 and p.comm_latency_s == ServingPerfParams().comm_latency_s
    assert p.attention_efficiency == 0.4 and p.comm_cache_bytes == 5e7
    with pytest.raises(ValueError):  # pydantic's ValidationError is a ValueError
        Scenario(attention_efficiency=1.5)
