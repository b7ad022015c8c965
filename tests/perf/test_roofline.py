"""``kavier.perf.roofline``: the serving model reduces to the thesis at batch one, and each term
adds exactly its own time."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kavier.library.catalog import load_catalog
from kavier.perf.roofline import ServingPerfModel, ServingPerfParams, roofline_s

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


def test_moe_reads_more_experts_with_bigger_batches():
    catalog = load_catalog()
    perf = ServingPerfModel(catalog.model("Mixtral-8x7B"), catalog.gpu("H100-SXM"), tp=2)
    one, many = perf.weight_bytes_read(1), perf.weight_bytes_read(256)
    total = catalog.model("Mixtral-8x7B").num_params * 2
    assert one < 0.35 * total and many == pytest.approx(total, rel=1e-6)


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


def test_fp4_weights_run_on_fp4_tensor_cores_where_the_gpu_has_them():
    from kavier.perf.roofline import BYTES_PER_DTYPE, peak_flops

    catalog = load_catalog()
    b200, h100 = catalog.gpu("B200"), catalog.gpu("H100-SXM")
    # HGX B200: 144 PFLOPS FP4 with sparsity over 8 GPUs = 9 PFLOPS dense per GPU
    assert peak_flops(b200, "fp4") == pytest.approx(9e15)
    assert peak_flops(b200, "fp4") == 2 * peak_flops(b200, "fp8")
    # Hopper has no FP4 tensor cores: the weights are widened, the matmul runs at the 16-bit peak
    assert peak_flops(h100, "fp4") == peak_flops(h100, "bf16")
    # NVFP4: 4-bit values and one FP8 scale per 16 of them
    assert BYTES_PER_DTYPE["fp4"] == pytest.approx((16 * 4 + 8) / 16 / 8)
    llm = catalog.model("Llama-3.1-70B")
    fp4 = ServingPerfModel(llm, b200, ServingPerfParams(), weight_dtype="fp4")
    fp8 = ServingPerfModel(llm, b200, ServingPerfParams(), weight_dtype="fp8")
    kept = 2 * llm.vocab_size * llm.hidden_size  # embedding and head stay 16-bit
    assert fp4.weight_bytes == pytest.approx((llm.num_params - kept) * 0.5625 + 2 * kept)
    assert fp8.weight_bytes == pytest.approx((llm.num_params - kept) * 1.0 + 2 * kept)


def test_a_checkpoints_16_bit_parameters_are_read_in_2_bytes_and_multiplied_at_the_16_bit_peak():
    catalog = load_catalog()
    fp8, base = catalog.model("Llama-3.1-405B-FP8"), catalog.model("Llama-3.1-405B")
    h100, a100 = catalog.gpu("H100-SXM"), catalog.gpu("A100-80GB")
    kept, n = fp8.unquantized_params, fp8.num_params
    p = ServingPerfParams(prefill_overhead_s=0.0, context_terms=False, roofline_norm=0.0)
    mixed = ServingPerfModel(fp8, h100, p, tp=8, weight_dtype="fp8")
    whole = ServingPerfModel(base, h100, p, tp=8, weight_dtype="fp8")
    assert mixed.weight_bytes == pytest.approx((n - kept) * 1.0 + kept * 2.0)
    assert mixed.weight_bytes_read(512) == mixed.weight_bytes
    # a compute-bound prefill: the FP8 part at the FP8 peak, the 16-bit part at the BF16 peak
    tokens = 8192
    rate = 8 * p.compute_efficiency
    expected = 2 * tokens * ((n - kept) / (rate * h100.flops_fp8) + kept / (rate * h100.flops_fp16))
    assert mixed.iteration(tokens, 0, 0, 0, 0).compute_s == pytest.approx(expected, rel=1e-12)
    head = 2 * base.vocab_size * base.hidden_size  # quantized on the fly: embedding and head 16-bit
    assert whole.iteration(tokens, 0, 0, 0, 0).compute_s == pytest.approx(
        2 * tokens * ((n - head) / (rate * h100.flops_fp8) + head / (rate * h100.flops_fp16)), rel=1e-12
    )
    assert whole.weight_bytes == pytest.approx(n + head)
    # the FLOPs counted (for MFU) are the same: only their rate differs
    assert mixed.iteration(tokens, 0, 0, 0, 0).flops == whole.iteration(tokens, 0, 0, 0, 0).flops
    # a GPU without FP8 tensor cores widens every weight: the same rate, still fewer bytes
    on_a100 = ServingPerfModel(fp8, a100, p, tp=8, weight_dtype="fp8")
    assert on_a100.dense_slowdown == 1.0 and on_a100.weight_bytes == mixed.weight_bytes
    # in 16 bits the checkpoint's split changes nothing
    in_bf16 = ServingPerfModel(fp8, h100, p, tp=8)
    assert in_bf16.weight_bytes == ServingPerfModel(base, h100, p, tp=8).weight_bytes
    assert in_bf16.dense_slowdown == 1.0


def test_attention_runs_at_the_peak_of_the_kv_caches_dtype():
    """Queries meet cached keys and values: FP8 tensor cores only with an FP8 cache, whatever
    the weights (an FP8-weight model with a BF16 cache attends at the BF16 peak)."""
    catalog = load_catalog()
    llm, h100, b200 = catalog.model("Llama-3.1-8B"), catalog.gpu("H100-SXM"), catalog.gpu("B200")
    p = ServingPerfParams(attention_efficiency=0.5, roofline_norm=0.0, prefill_overhead_s=0.0)

    def attention_s(gpu, weights, kv):
        m = ServingPerfModel(llm, gpu, p, weight_dtype=weights, kv_dtype=kv)
        with_attn = m.iteration(4096, 4096 * 4097 / 2, 0, 0, 0).compute_s
        return with_attn - m.iteration(4096, 0, 0, 0, 0).compute_s

    pairs = 4096 * 4097 / 2 * 4 * llm.num_layers * llm.num_attention_heads * llm.head_dim
    assert attention_s(h100, "fp8", "bf16") == pytest.approx(pairs / (h100.flops_fp16 * 0.5))
    assert attention_s(h100, "bf16", "bf16") == pytest.approx(pairs / (h100.flops_fp16 * 0.5))
    assert attention_s(h100, "fp8", "fp8") == pytest.approx(pairs / (h100.flops_fp8 * 0.5))
    assert attention_s(b200, "fp4", "fp8") == pytest.approx(pairs / (b200.flops_fp8 * 0.5))


def test_ring_allreduce_formula_and_its_use_per_layer():
    """One ring all-reduce: 2 (tp - 1) / tp x bytes / (link x efficiency) + (tp - 1) x latency;
    an iteration at tp > 1 pays two per layer of its activation message."""
    from dataclasses import replace

    from kavier.perf.roofline import ring_allreduce_s

    p = ServingPerfParams(comm_efficiency=0.5, comm_latency_s=1e-5)
    assert ring_allreduce_s(1e6, 8, 100e9, p) == pytest.approx(2 * 7 / 8 * 1e6 / 50e9 + 7e-5, rel=1e-12)
    assert ring_allreduce_s(0.0, 2, 100e9, p) == pytest.approx(1e-5)
    catalog = load_catalog()
    model, gpu = catalog.model("Llama-2-70B"), catalog.gpu("H100-SXM")
    m = ServingPerfModel(model, gpu, replace(p, context_terms=False), tp=4)
    tokens = 300
    per = ring_allreduce_s(m.allreduce_bytes(tokens), 4, gpu.interconnect_bandwidth, m.p)
    assert m._comm_s(tokens) == 2 * model.num_layers * per


@given(
    c=st.floats(0.0, 1.0),
    m=st.floats(0.0, 1.0),
    p=st.sampled_from([1.0, 1.5, 2.0, 2.8, 8.0, 64.0]),
)
def test_p_norm_join_lies_between_max_and_sum(c, m, p):
    """The p-norm of compute and memory seconds is at least their max and (for p >= 1) at most
    their sum; 0 is exactly max; arrays give what scalars give."""
    assert roofline_s(c, m, 0.0) == max(c, m)
    got = roofline_s(c, m, p)
    assert max(c, m) - 1e-15 <= got <= c + m + 1e-15
    assert roofline_s(np.array([c]), np.array([m]), p)[0] == pytest.approx(got, rel=1e-12, abs=1e-300)


def test_p_norm_join_at_the_ridge_and_twice_it():
    """At the ridge (compute = memory) the join is 2^(1/p) times either; at twice the ridge
    (1 + 2^-p)^(1/p) times the larger."""
    assert roofline_s(3e-3, 3e-3, 2.0) == pytest.approx(3e-3 * 2**0.5, rel=1e-12)
    assert roofline_s(2e-3, 1e-3, 4.0) == pytest.approx(2e-3 * (1 + 2**-4) ** 0.25, rel=1e-12)
    assert roofline_s(0.0, 0.0, 2.0) == 0.0


@settings(max_examples=40, deadline=None)
@given(
    seqs=st.integers(1, 512),
    ctx_per_seq=st.floats(1.0, 8000.0),
    steps=st.integers(1, 400),
    p=st.sampled_from([1.2, 2.0, 2.8, 6.0]),
    share=st.floats(0.0, 1.0),
)
def test_decode_runs_with_a_p_norm_join_stay_within_the_drift_of_their_overlap(
    seqs, ctx_per_seq, steps, p, share
):
    """With roofline_norm > 0 a decode run charges each step max(c, m) times the p-norm's
    factor at its middle step: exact there, and its total is off the per-iteration sum by at
    most the largest relative drift of that factor over the run. steps_until stays the first
    step whose cumulative time reaches the asked seconds."""
    from dataclasses import replace

    catalog = load_catalog()
    base = replace(ServingPerfParams(), roofline_norm=p, attention_efficiency=0.5)
    perf = ServingPerfModel(catalog.model("Llama-3.1-8B"), catalog.gpu("H100-SXM"), base)
    ctx0 = seqs * ctx_per_seq
    costs = [perf.iteration(0, 0, 0, seqs, ctx0 + seqs * j) for j in range(steps)]
    per_step = np.array([c.time_s for c in costs])
    factors = np.array([c.time_s - c.comm_s - c.host_s for c in costs]) / np.array(
        [max(c.compute_s, c.memory_s) for c in costs]
    )
    run = perf.decode_line(seqs, ctx0, steps)
    _, _, times = perf.decode_run(seqs, ctx0, steps)
    np.testing.assert_allclose(times, per_step, rtol=1e-12)
    mid = (steps - 1) // 2
    if steps % 2:  # an odd run's middle step is charged exactly
        assert run.overlap == pytest.approx(factors[mid], rel=1e-12)
    drift = float(np.max(np.abs(run.overlap / factors - 1.0)))
    assert abs(run.total(steps) / per_step.sum() - 1.0) <= drift + 1e-12
    assert run.overlap >= 1.0
    target = share * run.total(steps)
    k = run.steps_until(target, steps)
    assert run.total(k) >= target - 1e-12
    assert k == 1 or run.total(k - 1) < target


def test_a_p_norm_join_slows_a_run_near_the_ridge_and_not_far_from_it():
    """Llama-3.1-8B on one H100: 256 decoding sequences sit near the ridge (compute about equal
    to memory), 8 far below it; the p-norm slows the first by about 2^(1/p), the second barely."""
    from dataclasses import replace

    catalog = load_catalog()
    base = replace(ServingPerfParams(), compute_efficiency=0.76, memory_efficiency=0.87)
    off = ServingPerfModel(catalog.model("Llama-3.1-8B"), catalog.gpu("H100-SXM"), base)
    on = off.with_params(replace(base, roofline_norm=2.8))
    near = on.decode_line(256, 256 * 10.0).overlap
    far = on.decode_line(8, 8 * 10.0).overlap
    assert 1.2 < near <= 2 ** (1 / 2.8) + 1e-12
    assert 1.0 <= far < 1.01
    assert off.decode_line(256, 2560.0).overlap == 1.0
