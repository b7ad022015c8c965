"""``kavier.engine.system``: tensor parallelism and fit checks, replica groups, perf constants."""

from __future__ import annotations

from dataclasses import replace

import pytest

import kavier
from kavier.errors import ScenarioError
from kavier.library.catalog import load_catalog
from kavier.perf.profile import write_profile
from kavier.perf.roofline import ServingPerfParams


def test_tensor_parallel_and_memory_errors():
    with pytest.raises(ScenarioError, match="GiB per GPU"):
        kavier.simulate(llm="Llama-3.1-70B", gpu="A100-80GB", num_sessions=2)
    r2 = kavier.simulate(llm="Llama-3.1-70B", gpu="A100-80GB", tp=2, num_sessions=3)
    r4 = kavier.simulate(llm="Llama-3.1-70B", gpu="A100-80GB", tp=4, num_sessions=3)
    assert r2.summary["num_gpus"] == 2 and r4.summary["num_gpus"] == 4
    assert r4.summary["tpot_mean_s"] < r2.summary["tpot_mean_s"]
    fp8 = kavier.simulate(llm="Llama-3.1-70B", gpu="H100-SXM", weight_dtype="fp8", num_sessions=3)
    llm = load_catalog().model("Llama-3.1-70B")  # its embedding and head stay 16-bit
    assert fp8.summary["weight_bytes"] == pytest.approx(llm.num_params + 2 * llm.vocab_size * llm.hidden_size)


def test_a_quantized_checkpoint_needs_its_weight_dtype():
    with pytest.raises(ScenarioError) as err:
        kavier.simulate(llm="meta-llama/Llama-3.1-405B-Instruct-FP8", gpu="H100-SXM", tp=8, num_sessions=2)
    msg = str(err.value)
    assert "Llama-3.1-405B-FP8 is a checkpoint quantized to fp8" in msg and "--weight-dtype fp8" in msg
    assert "\n" not in msg
    run = kavier.simulate(llm="Llama-3.1-405B-FP8", gpu="H100-SXM", tp=8, weight_dtype="fp8", num_sessions=2)
    fp8 = load_catalog().model("Llama-3.1-405B-FP8")
    assert run.summary["weight_bytes"] == pytest.approx(fp8.num_params + fp8.unquantized_params)


def test_a_hf_config_with_a_quantization_config_is_that_checkpoint(tmp_path):
    import json

    base = load_catalog().model("Llama-3.1-8B")
    config = {
        "model_type": "llama",
        "num_hidden_layers": 32,
        "hidden_size": 4096,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "intermediate_size": 14336,
        "vocab_size": 128256,
        "max_position_embeddings": 131072,
        "tie_word_embeddings": False,
        "quantization_config": {"quant_method": "fp8", "activation_scheme": "dynamic"},
    }
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    with pytest.raises(ScenarioError, match="is a checkpoint quantized to fp8 but weight_dtype is bf16"):
        kavier.simulate(llm=str(path), gpu="H100-SXM", num_sessions=2)
    run = kavier.simulate(llm=str(path), gpu="H100-SXM", weight_dtype="fp8", num_sessions=2)
    kept = 2 * 128256 * 4096 + 65 * 4096  # embedding, head and norms stay 16-bit
    assert run.summary["weight_bytes"] == pytest.approx(base.num_params + kept, rel=1e-9)


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
    # Every constant has a scenario field, unset (None: the engine's profile decides) by default.
    for name in names:
        assert getattr(sc, scenario_names.get(name, name)) in (None, getattr(defaults, name)), name
    assert load_perf_params(sc)[0] == defaults  # no GPU given: no shipped profile
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
    p = load_perf_params(Scenario(**values))[0]
    for k, v in values.items():
        assert getattr(p, k) == v, k
    # A profile's values take precedence over the scenario's; the others stay the scenario's.
    prof = write_profile(tmp_path / "p.toml", ServingPerfParams(prefill_seq_overhead_s=0.02), {})
    text = prof.read_text().splitlines()
    keep = [
        ln for ln in text if ln.startswith(("prefill_seq_overhead_s", "comm_latency_s", "#", "[")) or not ln
    ]
    prof.write_text("\n".join(keep) + "\n")
    p = load_perf_params(Scenario(**values, perf_profile=str(prof)))[0]
    assert p.prefill_seq_overhead_s == 0.02 and p.comm_latency_s == ServingPerfParams().comm_latency_s
    assert p.attention_efficiency == 0.4 and p.comm_cache_bytes == 5e7
    with pytest.raises(ValueError):  # pydantic's ValidationError is a ValueError
        Scenario(attention_efficiency=1.5)


def test_serving_replicas_take_their_degrees_constants(tmp_path):
    from kavier.engine.system import plan_replicas
    from kavier.scenario import build_scenario

    by_tp = {4: replace(ServingPerfParams(), compute_efficiency=0.6)}
    profile = write_profile(tmp_path / "p.toml", ServingPerfParams(compute_efficiency=0.4), by_tp=by_tp)
    groups = [{"count": 1, "tp": 4}, {"count": 1, "tp": 2}]
    scenario = build_scenario(
        None,
        {"llm": "Llama-2-70B", "gpu": "A100-80GB", "perf_profile": str(profile), "replica_groups": groups},
    )
    plans = plan_replicas(scenario)
    assert [p.tp for p in plans] == [4, 2]
    assert [p.perf.p.compute_efficiency for p in plans] == [0.6, 0.4]


def test_explicit_constants_override_the_shipped_profile():
    """An explicit constant replaces the shipped profile's; the others stay the profile's."""
    from kavier.engine.system import load_perf_params
    from kavier.perf.profile import load_profile
    from kavier.perf.profiles import HERE
    from kavier.scenario import Scenario

    shipped = load_profile(HERE / "vllm-v1" / "H100-SXM.toml")
    assert shipped.compute_efficiency != 0.5
    params, name, note = load_perf_params(Scenario(), gpu="H100-SXM")
    assert (params, name, note) == (shipped, "vllm-v1/H100-SXM", "")
    params, name, _ = load_perf_params(Scenario(compute_efficiency=0.5), gpu="H100-SXM")
    assert params == replace(shipped, compute_efficiency=0.5) and name == "vllm-v1/H100-SXM"


def test_explicit_compute_efficiency_changes_a_runs_prefill_time():
    """A lower explicit compute efficiency than the profile's lengthens a compute-bound TTFT."""
    run = {
        "llm": "Llama-3.1-8B",
        "gpu": "H100-SXM",
        "workload": "poisson",
        "rate": 0.5,
        "num_requests": 6,
        "input_tokens": "4000",
        "output_tokens": "4",
        "seed": 1,
        "opendc": False,
        "prefix_cache": "off",
    }
    base = kavier.simulate(**run).summary
    slow = kavier.simulate(**run, compute_efficiency=0.5).summary
    assert slow["perf_profile_used"] == base["perf_profile_used"] == "vllm-v1/H100-SXM"
    assert slow["ttft_p50_s"] > 1.2 * base["ttft_p50_s"]
