"""``kavier.engine.engines``: the engine presets' default knobs, their overrides and their errors."""

from __future__ import annotations

from dataclasses import replace

import pytest

import kavier
from kavier.engine.engines import engine_knobs
from kavier.errors import ScenarioError
from kavier.library.catalog import load_catalog
from kavier.perf.profiles import HERE as PROFILE_ROOT
from kavier.registry import ENGINES
from kavier.scenario import Scenario
from tests.cli_helper import kavier as kavier_cli

# A few requests arriving together: enough to fill a small batch, fast on two cores.
SMALL = {
    "llm": "Llama-3.1-8B",
    "workload": "poisson",
    "rate": 50.0,
    "num_requests": 12,
    "input_tokens": "300",
    "output_tokens": "16",
    "seed": 1,
    "opendc": False,
    "prefix_cache": "off",
}

# vLLM v1's larger defaults apply to GPUs with >= 70 GiB that are not A100s (docs/engines.md).
V1_LARGE = {"H100-PCIe", "H100-SXM", "H200", "B200", "MI300X"}


def knobs(engine, gpu, llm, **scenario):
    cat = load_catalog()
    return engine_knobs(engine, cat.gpu(gpu), cat.model(llm), Scenario(**scenario))


def summary_knobs(summary):
    return tuple(summary[k] for k in ("engine", "max_num_seqs", "max_batched_tokens", "chunked_prefill"))


def test_the_presets_are_registered_with_a_profile_folder_each():
    """Both vLLM presets are registered; each names itself and a shipped profile folder."""
    assert {"vllm-v1", "vllm-v0"} <= set(ENGINES.names())
    for name in ENGINES.names():
        engine = ENGINES.get(name)
        assert engine.name == name
        assert (PROFILE_ROOT / engine.profile_family).is_dir(), name


@pytest.mark.parametrize("gpu", list(load_catalog().gpus))
def test_vllm_v1_defaults_by_gpu(gpu):
    """vllm-v1 takes 1024 sequences / 8192 tokens on >= 70 GiB non-A100 GPUs, else 256 / 2048."""
    k = knobs("vllm-v1", gpu, "Llama-3.1-8B")
    expected = (1024, 8192) if gpu in V1_LARGE else (256, 2048)
    assert (k.max_num_seqs, k.max_batched_tokens) == expected
    assert k.chunked_prefill is True and k.admit_after_preemption is False and k.watermark_fraction == 0.0


@pytest.mark.parametrize(
    ("gpu", "expected"),
    [("H100-SXM", (1024, 8192)), ("A100-80GB", (256, 2048)), ("A10", (256, 2048))],
)
def test_vllm_v1_defaults_reach_the_summary(gpu, expected):
    """A run with engine vllm-v1 reports the GPU's default knobs and chunked prefill on."""
    s = kavier.simulate(gpu=gpu, engine="vllm-v1", **SMALL).summary
    assert summary_knobs(s) == ("vllm-v1", *expected, True)


def test_vllm_v1_is_the_default_engine():
    """A serving scenario without --engine runs vllm-v1."""
    assert Scenario().engine == "vllm-v1"
    assert kavier.simulate(gpu="H100-SXM", **SMALL).summary["engine"] == "vllm-v1"


@pytest.mark.parametrize(
    ("llm", "expected"),
    [
        ("Llama-3-8B", (256, 8192, False)),  # context 8192
        ("Llama-2-7B", (256, 4096, False)),  # context 4096
        ("OPT-30B", (256, 2048, False)),  # context 2048
        ("Llama-3.1-8B", (256, 512, True)),  # context 131072 > 32768: chunked, 512 tokens
    ],
)
def test_vllm_v0_defaults_by_model(llm, expected):
    """vllm-v0 takes 256 sequences and max(context, 2048) tokens, chunked (512) above 32k context."""
    for gpu in ("A10", "H100-SXM"):  # no dependence on the GPU
        k = knobs("vllm-v0", gpu, llm)
        assert (k.max_num_seqs, k.max_batched_tokens, k.chunked_prefill) == expected
        assert k.admit_after_preemption is True and k.watermark_fraction == 0.01


def test_vllm_v0_token_budget_is_at_least_2048(llama3_8b, a10):
    """vllm-v0's token budget is 2048 for a context below 2048 or an unknown one (0)."""
    v0 = ENGINES.get("vllm-v0")()
    for context in (0, 1000, 2047):
        k = v0.knobs(a10, replace(llama3_8b, max_context_tokens=context), None, None, None)
        assert k.max_batched_tokens == 2048 and k.chunked_prefill is False
    for context, chunked in ((32768, False), (32769, True)):
        k = v0.knobs(a10, replace(llama3_8b, max_context_tokens=context), None, None, None)
        assert k.chunked_prefill is chunked, context


def test_vllm_v0_explicit_chunking_sets_the_budget():
    """vllm-v0 with chunked prefill switched on takes 512 tokens; switched off, max(context, 2048)."""
    on = knobs("vllm-v0", "H100-SXM", "Llama-3-8B", chunked_prefill=True)
    off = knobs("vllm-v0", "H100-SXM", "Llama-3.1-8B", chunked_prefill=False)
    assert (on.chunked_prefill, on.max_batched_tokens) == (True, 512)
    assert (off.chunked_prefill, off.max_batched_tokens) == (False, 131072)


def test_vllm_v0_defaults_reach_the_summary():
    """A run with engine vllm-v0 reports 256 sequences, the model's context as budget, no chunking."""
    s = kavier.simulate(gpu="H100-SXM", engine="vllm-v0", **{**SMALL, "llm": "Llama-3-8B"}).summary
    assert summary_knobs(s) == ("vllm-v0", 256, 8192, False)


def test_vllm_v1_rejects_chunked_prefill_off():
    """chunked_prefill=False with vllm-v1 is a ScenarioError naming the option and the engine."""
    with pytest.raises(ScenarioError, match=r"--chunked-prefill off.*vllm-v1") as info:
        kavier.simulate(gpu="H100-SXM", engine="vllm-v1", chunked_prefill=False, **SMALL)
    assert "--engine vllm-v0" in str(info.value)  # and says what to use instead
    ok = kavier.simulate(gpu="H100-SXM", engine="vllm-v1", chunked_prefill=True, **SMALL)
    assert ok.summary["chunked_prefill"] is True


def test_cli_vllm_v1_chunked_prefill_off_is_a_one_line_error(tmp_path):
    """`kavier run --chunked-prefill off` with vllm-v1 exits 2 with one error line and no folder."""
    out = tmp_path / "run"
    res = kavier_cli(
        "run", "--engine", "vllm-v1", "--chunked-prefill", "off", "--workload", "poisson",
        "--num-requests", "5", "--llm", "Llama-3.1-8B", "--gpu", "H100-SXM", "--output-folder", out,
    )  # fmt: skip
    assert res.returncode == 2, res.stdout + res.stderr
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error") and "--chunked-prefill" in lines[0], res.stderr
    assert not out.exists()


@pytest.mark.parametrize("engine", ENGINES.names())
def test_explicit_knobs_override_the_engine(engine):
    """Explicit max_num_seqs and max_batched_tokens replace the engine's and bound the batch."""
    k = knobs(engine, "H100-SXM", "Llama-3-8B", max_num_seqs=3, max_batched_tokens=9000)
    assert (k.max_num_seqs, k.max_batched_tokens) == (3, 9000)
    explicit = {"max_num_seqs": 3, "max_batched_tokens": 9000}
    s = kavier.simulate(gpu="H100-SXM", engine=engine, **explicit, **SMALL).summary
    assert (s["engine"], s["max_num_seqs"], s["max_batched_tokens"]) == (engine, 3, 9000)
    assert 1 <= s["mean_batch_size"] <= 3
    free = kavier.simulate(gpu="H100-SXM", engine=engine, **SMALL).summary
    assert free["mean_batch_size"] > 3  # the limit, not the workload, kept the batch small


# SGLang 0.5.23's chunked_prefill_size by GPU memory (GB): < 20 2048, < 60 4096, < 160 8192, else 16384.
SGLANG_CHUNK = {
    "T4": 2048, "A10": 4096, "L4": 4096, "A100-40GB": 4096, "L40S": 4096, "A100-80GB": 8192,
    "H100-PCIe": 8192, "H100-SXM": 8192, "H200": 8192, "B200": 16384, "MI300X": 16384,
}  # fmt: skip


@pytest.mark.parametrize("gpu", list(load_catalog().gpus))
def test_sglang_chunk_budget_by_gpu_memory(gpu):
    """sglang chunks prompts by SGLang's chunked_prefill_size for the GPU's memory and batches
    with its own scheduler (prefill first, decode-token reservation)."""
    k = knobs("sglang", gpu, "Llama-3.1-8B")
    assert k.max_batched_tokens == SGLANG_CHUNK[gpu] and k.chunked_prefill is True
    assert k.batching == "sglang"


def test_sglang_max_running_requests_from_the_kv_tokens():
    """max_running_requests: KV tokens / context x 512, within [2048, 4096], at most half the KV
    tokens (Llama-3.1-8B: a 131,072-token context)."""
    cat = load_catalog()
    h100, llm = cat.gpu("H100-SXM"), cat.model("Llama-3.1-8B")
    assert engine_knobs("sglang", h100, llm, Scenario(), kv_tokens=400_000).max_num_seqs == 2048
    assert engine_knobs("sglang", h100, llm, Scenario(), kv_tokens=1_500_000).max_num_seqs == 4096
    assert engine_knobs("sglang", h100, llm, Scenario(), kv_tokens=3000).max_num_seqs == 1500
    assert engine_knobs("sglang", h100, llm, Scenario(max_num_seqs=7), kv_tokens=3000).max_num_seqs == 7


def test_sglang_runs_and_says_whose_timing_it_borrows():
    """A run with engine sglang serves every request, reports the engine and its knobs, and its
    note says the timing is vLLM V1's profile."""
    s = kavier.simulate(gpu="H100-SXM", engine="sglang", **SMALL).summary
    assert s["engine"] == "sglang" and s["max_batched_tokens"] == 8192 and s["chunked_prefill"] is True
    assert s["perf_profile_used"] == "vllm-v1/H100-SXM"
    assert "engine sglang is timed with vllm-v1's profiles" in s["perf_profile_note"]
    assert s["num_requests"] == SMALL["num_requests"] and s["rejected_requests"] == 0


def test_sglang_with_a_users_profile_does_not_claim_vllm_timing(tmp_path):
    """Given --perf-profile, the run is timed with the user's constants: no note about vLLM V1's."""
    from kavier.engine.system import load_perf_params
    from kavier.perf.profile import profile_text
    from kavier.perf.roofline import ServingPerfParams

    path = tmp_path / "mine.toml"
    path.write_text(profile_text(ServingPerfParams(compute_efficiency=0.5)))
    params, _, note = load_perf_params(Scenario(engine="sglang", perf_profile=str(path)), 1, "H100-SXM")
    assert params.compute_efficiency == 0.5 and "timed with" not in note
    _, _, note = load_perf_params(Scenario(engine="sglang"), 1, "H100-SXM")
    assert note == "engine sglang is timed with vllm-v1's profiles (none measured of its own)"


def test_sglang_reservation_preempts_less_than_vllm_v1_when_kv_runs_short():
    """Overloaded on one A10 (20 req/s of 500 + 600 tokens): vLLM V1 admits whatever's first
    chunk fits and then preempts as sequences grow; SGLang's admission reserves their future
    tokens, so it retracts far less (388 against 49 preemptions when written)."""
    load = {
        "gpu": "A10", "llm": "Llama-3.1-8B", "workload": "poisson", "rate": 20.0, "num_requests": 300,
        "input_tokens": "500", "output_tokens": "600", "seed": 3, "opendc": False, "prefix_cache": "off",
    }  # fmt: skip
    vllm = kavier.simulate(engine="vllm-v1", **load).summary
    sglang = kavier.simulate(engine="sglang", **load).summary
    assert vllm["preemptions"] > 100
    assert sglang["preemptions"] < vllm["preemptions"] / 2
