"""``kavier.library.catalog``: built-in numbers, lookups, HF configs, user catalogues, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kavier.errors import LibraryError
from kavier.library.catalog import (
    Catalog,
    count_params,
    gpu_rows,
    load_catalog,
    model_from_hf_config,
    model_rows,
)
from kavier.units import GB, GIB, TERA


@pytest.fixture(scope="module")
def cat() -> Catalog:
    return load_catalog()


REQUIRED_MODELS = [
    "Llama-3-8B", "Llama-2-7B", "Llama-2-13B", "Llama-2-70B", "Granite-20B", "MPT-30B", "OPT-30B",
    "BLOOM-176B", "Llama-3.1-8B", "Llama-3.1-70B", "Llama-3-70B", "Mistral-7B", "Mixtral-8x7B",
    "Qwen2.5-7B", "Qwen2.5-72B",
]  # fmt: skip


# name: (layers, heads, kv_heads, head_dim, nominal params)
ARCH = {
    "Llama-3-8B": (32, 32, 8, 128, 8e9),
    "Llama-2-7B": (32, 32, 32, 128, 7e9),
    "Llama-2-13B": (40, 40, 40, 128, 13e9),
    "Llama-2-70B": (80, 64, 8, 128, 70e9),
    "Granite-20B": (52, 48, 1, 128, 20e9),
    "MPT-30B": (48, 64, 64, 112, 30e9),
    "OPT-30B": (48, 56, 56, 128, 30e9),
    "BLOOM-176B": (70, 112, 112, 128, 176e9),
    "Llama-3.1-8B": (32, 32, 8, 128, 8e9),
    "Llama-3.1-70B": (80, 64, 8, 128, 70e9),
    "Llama-3-70B": (80, 64, 8, 128, 70e9),
    "Mistral-7B": (32, 32, 8, 128, 7e9),
    "Mixtral-8x7B": (32, 32, 8, 128, 47e9),
    "Qwen2.5-7B": (28, 28, 4, 128, 7e9),
    "Qwen2.5-72B": (80, 64, 8, 128, 72e9),
}


# name: (dense fp16 TFLOPS, memory GiB, bandwidth GB/s, max W, interconnect GB/s per direction)
GPUS = {
    "A10": (125, 24, 600, 150, 32),
    "A100-40GB": (312, 40, 1555, 400, 300),
    "A100-80GB": (312, 80, 2039, 400, 300),
    "L4": (121, 24, 300, 72, 32),
    "L40S": (362, 48, 864, 350, 32),
    "H100-PCIe": (756, 80, 2000, 350, 64),
    "H100-SXM": (989, 80, 3350, 700, 450),
    "H200": (989, 141, 4800, 700, 450),
    "B200": (2250, 180, 8000, 1000, 900),
    "MI300X": (1307, 192, 5300, 750, 448),
}


# The 2:4-sparsity FP16 figures datasheets print next to the dense ones (TFLOPS).
SPARSE_FP16 = {
    "A10": 250, "A100-40GB": 624, "A100-80GB": 624, "L4": 242, "L40S": 733, "H100-PCIe": 1513,
    "H100-SXM": 1979, "H200": 1979, "B200": 4500, "MI300X": 2615,
}  # fmt: skip


@pytest.mark.parametrize("name", REQUIRED_MODELS)
def test_required_models_have_their_architecture(cat: Catalog, name: str) -> None:
    layers, heads, kv, head_dim, nominal = ARCH[name]
    m = cat.model(name)
    assert (m.num_layers, m.num_attention_heads, m.num_kv_heads, m.head_dim) == (
        layers, heads, kv, head_dim
    )  # fmt: skip
    assert m.nominal_params == nominal
    assert 0.85 * nominal < m.num_params < 1.15 * nominal
    assert m.num_attention_heads % m.num_kv_heads == 0


def test_llama3_8b_numbers_match_the_thesis(cat: Catalog) -> None:
    m = cat.model("Llama-3-8B")
    assert m.nominal_params == 8e9  # exactly: the thesis equations use 8B
    assert m.num_params == pytest.approx(8.03e9, rel=1e-3)
    assert m.kv_bytes_per_token(2.0) == 131072  # 128 KiB per token in bf16
    assert cat.model("Llama-2-13B").kv_bytes_per_token(2.0) == 819200  # no GQA


def test_mixtral_is_moe_with_fewer_active_params(cat: Catalog) -> None:
    m = cat.model("Mixtral-8x7B")
    assert m.is_moe and (m.num_experts, m.num_experts_per_token) == (8, 2)
    assert m.num_params == pytest.approx(46.7e9, rel=0.01)
    assert m.num_active_params == pytest.approx(12.9e9, rel=0.01)
    assert m.num_active_params < m.num_params
    dense = [x for x in cat.models.values() if not x.is_moe]
    assert dense and all(x.num_active_params == x.num_params for x in dense)


@pytest.mark.parametrize("name", list(GPUS))
def test_required_gpus_have_their_datasheet_numbers(cat: Catalog, name: str) -> None:
    tflops, gib, gbs, max_w, link = GPUS[name]
    g = cat.gpu(name)
    assert g.flops_fp16 == tflops * TERA
    assert g.memory_bytes == gib * GIB
    assert g.memory_bandwidth == gbs * GB
    assert g.max_power_w == max_w
    assert g.interconnect_bandwidth == link * GB
    assert 0 < g.idle_power_w < g.max_power_w
    assert g.price_per_hour_usd > 0 and g.embodied_co2_g > 0
    assert g.cores > 0 and g.boost_clock_mhz > 0 and g.capacity_mhz > 0


def test_a10_is_the_thesis_card(cat: Catalog) -> None:
    g = cat.gpu("a10")
    assert (g.flops_fp16, g.memory_bytes, g.memory_bandwidth, g.max_power_w) == (
        125e12, 24 * 1024**3, 600e9, 150.0
    )  # fmt: skip
    assert g.interconnect_bandwidth == 32e9  # PCIe 4.0 x16, one direction
    assert g.flops_fp8 == 0.0  # Ampere has no FP8


@pytest.mark.parametrize("name", list(SPARSE_FP16))
def test_dense_flops_are_never_the_sparse_figure(cat: Catalog, name: str) -> None:
    g = cat.gpu(name)
    assert g.flops_fp16 != SPARSE_FP16[name] * TERA
    assert g.flops_fp16 == pytest.approx(SPARSE_FP16[name] * TERA / 2, rel=0.02)
    if g.flops_fp8:
        assert g.flops_fp8 == pytest.approx(2 * g.flops_fp16, rel=0.02)  # dense FP8 = 2x FP16


def test_every_entry_cites_a_source(cat: Catalog) -> None:
    for spec in [*cat.models.values(), *cat.gpus.values()]:
        assert spec.source.strip(), spec.name
        assert "\n" not in spec.source


def test_builtin_param_counts_agree_with_the_architecture(cat: Catalog) -> None:
    """Recomputing the llama-family counts from the catalogue's numbers gives the stored count."""
    for name in [
        "Llama-3-8B",
        "Llama-2-13B",
        "Llama-2-70B",
        "Llama-3.1-405B",
        "Mistral-7B",
        "Llama-3.2-1B",
        "Llama-3.2-3B",
    ]:
        m = cat.model(name)
        total, active = count_params(_llama_config(m.name, cat))
        assert total == m.num_params == active, name


def test_meta_fp8_405b_keeps_attention_embeddings_and_end_layers_in_16_bits(cat: Catalog) -> None:
    """The checkpoint's 16-bit parameters, recomputed from the architecture, are the stored ones,
    and with the 124 FP8 MLPs they make up the whole model."""
    fp8, base = cat.model("meta-llama/Llama-3.1-405B-Instruct-FP8"), cat.model("Llama-3.1-405B")
    assert (fp8.name, fp8.checkpoint_dtype) == ("Llama-3.1-405B-FP8", "fp8")
    h, f, layers = base.hidden_size, base.intermediate_size, base.num_layers
    attention = h * base.num_attention_heads * base.head_dim * 2 + h * base.num_kv_heads * base.head_dim * 2
    mlp = 3 * h * f
    kept = layers * attention + 2 * mlp + 2 * base.vocab_size * h + (2 * layers + 1) * h
    assert fp8.unquantized_params == kept
    assert fp8.unquantized_params + (layers - 2) * mlp == fp8.num_params == base.num_params
    assert base.checkpoint_dtype == "" and base.unquantized_params == 0
    # quantized on the fly, the 16-bit entry keeps its embedding and head in 16 bits
    assert base.params_kept_16bit == 2 * base.vocab_size * h
    assert cat.model("Llama-3.2-1B").params_kept_16bit == 128256 * 2048  # tied: one matrix


def test_catalogue_is_cached_and_ordered(cat: Catalog) -> None:
    assert load_catalog() is load_catalog()
    assert list(cat.models)[:2] == ["Llama-3-8B", "Llama-2-7B"]
    assert list(cat.gpus)[0] == "A10"


@pytest.mark.parametrize(
    ("alias", "name"),
    [
        ("llama3-8b", "Llama-3-8B"),
        ("LLAMA-3-8B", "Llama-3-8B"),
        ("meta-llama/Meta-Llama-3-8B", "Llama-3-8B"),
        ("llama3.1-8b", "Llama-3.1-8B"),
        ("llama_3_1_8b", "Llama-3.1-8B"),
        ("llama2-13b", "Llama-2-13B"),
        ("granite-20b", "Granite-20B"),
        ("ibm-granite/granite-20b-code-base", "Granite-20B"),
        ("bloom", "BLOOM-176B"),
        ("mistralai/Mixtral-8x7B-Instruct-v0.1", "Mixtral-8x7B"),
        ("Qwen/Qwen2.5-72B-Instruct", "Qwen2.5-72B"),
    ],
)
def test_model_aliases(cat: Catalog, alias: str, name: str) -> None:
    assert cat.model(alias).name == name


@pytest.mark.parametrize(
    ("alias", "name"),
    [
        ("a10", "A10"),
        ("nvidia-a10", "A10"),
        ("NVIDIA A10", "A10"),
        ("h100", "H100-SXM"),
        ("H100-SXM5-80GB", "H100-SXM"),
        ("NVIDIA H100 80GB HBM3", "H100-SXM"),
        ("h100_pcie", "H100-PCIe"),
        ("a100", "A100-80GB"),
        ("NVIDIA A100-SXM4-40GB", "A100-40GB"),
        ("amd instinct mi300x", "MI300X"),
        ("l40s", "L40S"),
    ],
)
def test_gpu_aliases(cat: Catalog, alias: str, name: str) -> None:
    assert cat.gpu(alias).name == name


def test_unknown_model_is_one_line_with_close_matches(cat: Catalog) -> None:
    with pytest.raises(LibraryError) as err:
        cat.model("Llama-9B")
    msg = str(err.value)
    assert "\n" not in msg
    assert "unknown model 'Llama-9B'" in msg
    assert "did you mean" in msg and "Llama-3-8B" in msg.split(";")[0]
    assert "config.json" in msg and "kavier library" in msg


def test_unknown_gpu_is_one_line_with_close_matches(cat: Catalog) -> None:
    with pytest.raises(LibraryError) as err:
        cat.gpu("H1000")
    msg = str(err.value)
    assert "\n" not in msg and "unknown GPU 'H1000'" in msg
    assert "H100" in msg.split(";")[0]


def _llama_config(name: str, cat: Catalog) -> dict[str, object]:
    m = cat.model(name)
    return {
        "_name_or_path": f"test/{name}",
        "model_type": "llama",
        "architectures": ["LlamaForCausalLM"],
        "num_hidden_layers": m.num_layers,
        "hidden_size": m.hidden_size,
        "num_attention_heads": m.num_attention_heads,
        "num_key_value_heads": m.num_kv_heads,
        "intermediate_size": m.intermediate_size,
        "vocab_size": m.vocab_size,
        "hidden_act": "silu",
        "max_position_embeddings": m.max_context_tokens,
        "tie_word_embeddings": m.tied_embeddings,
    }


def test_hf_config_llama3_8b_matches_library(cat: Catalog, tmp_path: Path) -> None:
    folder = tmp_path / "Meta-Llama-3-8B"
    folder.mkdir()
    cfg = _llama_config("Llama-3-8B", cat)
    del cfg["_name_or_path"]
    (folder / "config.json").write_text(json.dumps(cfg))
    lib = cat.model("Llama-3-8B")
    for arg in (folder, folder / "config.json"):
        m = cat.model(str(arg))
        assert m.name == "Meta-Llama-3-8B"  # no _name_or_path: the folder name
        assert m.num_params == pytest.approx(lib.num_params, rel=0.01)
        assert m.nominal_params == m.num_params == m.num_active_params
        assert m.kv_bytes_per_token(2.0) == lib.kv_bytes_per_token(2.0) == 131072
        assert (m.head_dim, m.max_context_tokens, m.num_experts) == (128, 8192, 1)
        assert not m.tied_embeddings
    tied = tmp_path / "tied.json"
    tied.write_text(json.dumps(_llama_config("Llama-3.2-1B", cat)))
    one = cat.model(str(tied))
    assert one.tied_embeddings and one.num_params == cat.model("Llama-3.2-1B").num_params


def _quantized(tmp_path: Path, base: dict[str, object], qc: dict[str, object]) -> Path:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({**base, "quantization_config": qc}))
    return path


def test_hf_config_of_metas_fp8_405b_gives_the_catalogue_entry(cat: Catalog, tmp_path: Path) -> None:
    """Meta's config lists every layer's self-attention and the first and last MLPs as not
    converted: read from it, the 16-bit parameters are the built-in entry's, counted by hand."""
    skipped = [f"model.layers.{i}.self_attn.{p}_proj" for i in range(126) for p in "qkvo"]
    skipped += [f"model.layers.{i}.mlp.{p}_proj" for i in (0, 125) for p in ("gate", "up", "down")]
    qc = {"quant_method": "fbgemm_fp8", "activation_scale_ub": 1200.0, "modules_to_not_convert": skipped}
    m = cat.model(str(_quantized(tmp_path, _llama_config("Llama-3.1-405B", cat), qc)))
    entry = cat.model("Llama-3.1-405B-FP8")
    assert m.checkpoint_dtype == "fp8" and m.unquantized_params == entry.unquantized_params
    assert "fp8 checkpoint" in m.source


@pytest.mark.parametrize(
    ("qc", "dtype", "extra"),
    [
        # Red Hat / Neural Magic FP8: every block linear layer, the head ignored (16-bit anyway)
        (
            {
                "quant_method": "compressed-tensors",
                "config_groups": {"group_0": {"weights": {"num_bits": 8, "type": "float"}}},
                "ignore": ["lm_head"],
            },
            "fp8",
            0,
        ),
        # a regular expression skipping every attention projection
        (
            {
                "quant_method": "compressed-tensors",
                "config_groups": {"g": {"weights": {"num_bits": 4, "type": "int"}}},
                "ignore": ["re:.*self_attn.*"],
            },
            "int4",
            32 * (4096 * 4096 * 2 + 4096 * 1024 * 2),
        ),
        ({"quant_method": "awq", "bits": 4}, "int4", 0),
        ({"quant_method": "modelopt", "quant_algo": "NVFP4", "exclude_modules": ["lm_head"]}, "fp4", 0),
        ({"quant_method": "fp8", "modules_to_not_convert": ["model.layers.0"]}, "fp8", 218_103_808),
    ],
)
def test_hf_quantization_configs(cat: Catalog, tmp_path: Path, qc: dict, dtype: str, extra: int) -> None:
    """Embedding, head and norms stay 16-bit; a listed module (or everything under a listed
    prefix, or a regex's matches) adds its weights."""
    m = cat.model(str(_quantized(tmp_path, _llama_config("Llama-3-8B", cat), qc)))
    always = 2 * 128256 * 4096 + (2 * 32 + 1) * 4096  # embedding, head, norms
    assert m.checkpoint_dtype == dtype
    assert m.unquantized_params == always + extra


def test_hf_quantization_config_not_understood_is_one_line(cat: Catalog, tmp_path: Path) -> None:
    path = _quantized(tmp_path, _llama_config("Llama-3-8B", cat), {"quant_method": "quip#"})
    with pytest.raises(LibraryError) as err:
        cat.model(str(path))
    msg = str(err.value)
    assert str(path) in msg and "quant_method 'quip#'" in msg and "\n" not in msg


def test_hf_config_mixtral_counts_total_and_active(cat: Catalog, tmp_path: Path) -> None:
    cfg = {
        "_name_or_path": "mistralai/Mixtral-8x7B-v0.1",
        "model_type": "mixtral",
        "num_hidden_layers": 32,
        "hidden_size": 4096,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "intermediate_size": 14336,
        "vocab_size": 32000,
        "num_local_experts": 8,
        "num_experts_per_tok": 2,
        "max_position_embeddings": 32768,
        "tie_word_embeddings": False,
    }
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    m = model_from_hf_config(path)
    assert m.name == "mistralai/Mixtral-8x7B-v0.1"
    assert m.num_params == pytest.approx(46.7e9, rel=0.02)
    assert m.num_active_params == pytest.approx(12.9e9, rel=0.02)
    lib = cat.model("Mixtral-8x7B")
    assert m.num_params == lib.num_params and m.num_active_params == lib.num_active_params
    assert (m.num_experts, m.num_experts_per_token) == (8, 2)


def test_hf_config_defaults_and_legacy_key_names(tmp_path: Path) -> None:
    # No num_key_value_heads / head_dim: plain multi-head attention, head_dim = hidden / heads.
    llama2 = {
        "model_type": "llama",
        "num_hidden_layers": 40,
        "hidden_size": 5120,
        "num_attention_heads": 40,
        "intermediate_size": 13824,
        "vocab_size": 32000,
    }
    (tmp_path / "l2.json").write_text(json.dumps(llama2))
    m = model_from_hf_config(tmp_path / "l2.json")
    assert (m.name, m.num_kv_heads, m.head_dim) == ("l2", 40, 128)
    assert m.kv_bytes_per_token(2.0) == 819200
    assert m.num_params == pytest.approx(13.016e9, rel=1e-3)  # untied by default for llama
    # BLOOM: n_layer/n_head spelling, 2-matrix GELU MLP, biases, tied embeddings.
    bloom = {"model_type": "bloom", "n_layer": 70, "hidden_size": 14336, "n_head": 112,
             "vocab_size": 250880}  # fmt: skip
    total, active = count_params(bloom)
    assert total == active == 176_247_271_424
    # GPTBigCode multi-query attention: one KV head.
    bigcode = {"model_type": "gpt_bigcode", "n_layer": 52, "n_embd": 6144, "n_head": 48,
               "multi_query": True, "n_inner": 24576, "vocab_size": 49152,
               "n_positions": 8192}  # fmt: skip
    (tmp_path / "g.json").write_text(json.dumps(bigcode))
    g = model_from_hf_config(tmp_path / "g.json")
    assert (g.num_kv_heads, g.head_dim, g.max_context_tokens) == (1, 128, 8192)
    assert g.num_params == pytest.approx(20e9, rel=0.01)


def test_hf_config_errors_name_the_file(cat: Catalog, tmp_path: Path) -> None:
    bad = tmp_path / "config.json"
    bad.write_text("{not json")
    with pytest.raises(LibraryError, match="config.json"):
        cat.model(str(bad))
    bad.write_text(json.dumps({"model_type": "llama", "hidden_size": 4096}))
    with pytest.raises(LibraryError, match="config.json.*architecture"):
        cat.model(str(tmp_path))
    with pytest.raises(LibraryError, match="no such HuggingFace config file"):
        cat.model(str(tmp_path / "missing" / "config.json"))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(LibraryError, match="no config.json"):
        cat.model(str(empty))


def test_user_catalogue_adds_a_gpu_and_overrides_one(tmp_path: Path) -> None:
    user = tmp_path / "mine.toml"
    user.write_text(
        """
[gpus.RTX-4090]
fp16_dense_tflops = 165.2
memory_gib = 24
memory_bandwidth_gb_per_s = 1008
idle_power_w = 20
max_power_w = 450
interconnect_gb_per_s = 32
price_per_hour_usd = 0.4
embodied_co2_kg = 80
aliases = ["4090"]
source = "NVIDIA Ada whitepaper"

[gpus.a10]          # overrides only the price of the built-in A10
price_per_hour_usd = 0.5

[models."Tiny-1B"]
num_layers = 2
hidden_size = 64
num_attention_heads = 4
intermediate_size = 128
vocab_size = 100
num_params = 1e9
nominal_params = 1e9
source = "made up for a test"
"""
    )
    cat = load_catalog(user)
    new = cat.gpu("4090")
    assert new.name == "RTX-4090" and new.memory_bytes == 24 * GIB and new.embodied_co2_g == 80e3
    a10 = cat.gpu("A10")
    assert a10.price_per_hour_usd == 0.5
    assert a10.flops_fp16 == 125e12 and a10.source == load_catalog().gpu("A10").source
    assert list(cat.gpus)[-1] == "RTX-4090" and list(cat.gpus)[0] == "A10"
    tiny = cat.model("tiny-1b")
    assert (tiny.num_kv_heads, tiny.head_dim, tiny.num_active_params) == (4, 16, 1e9)
    # the built-in catalogue is untouched
    assert load_catalog().gpu("A10").price_per_hour_usd == 0.86
    with pytest.raises(LibraryError):
        load_catalog().gpu("RTX-4090")


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("[gpus.X\nfoo = 1", "not valid TOML"),
        ("[gpus.X]\nfp16_dense_tflops = 1\nsource = 'x'", "[gpus.X] missing field"),
        ("[gpus.a10]\nmax_power_w = -5", "[gpus.A10] field 'max_power_w' must be positive"),
        ("[gpus.a10]\nmemory_gb = 24", "[gpus.A10] unknown field 'memory_gb'"),
        ("[gpus.a10]\nidle_power_w = 'low'", "field 'idle_power_w' must be a finite number"),
        ('[models."Llama-3-8B"]\nnum_layers = 3.5', "field 'num_layers' must be a whole number"),
        ('[models."Llama-3-8B"]\nnum_kv_heads = 64', "num_kv_heads' exceeds"),
        ("[cpus.epyc]\ncores = 64", "unknown top-level table 'cpus' (use models or gpus)"),
        ("[gpus.Z]\nsource = ''\n", "[gpus.Z] field 'source' must be a non-empty string"),
        ("[gpus.a10]\ngemm_peak_fraction = 1.2", "[gpus.A10] field 'gemm_peak_fraction' is a share"),
        ("[gpus.a10]\nallreduce_link_fraction = 2", "[gpus.A10] field 'allreduce_link_fraction' is a share"),
        ('[models."Llama-3-8B"]\ncheckpoint_dtype = "fp9"', "field 'checkpoint_dtype' must be one of fp8"),
        ('[models."Llama-3-8B"]\ntied_embeddings = 1', "field 'tied_embeddings' must be true or false"),
        (
            '[models."Llama-3-8B"]\nunquantized_params = 1e9',
            "field 'unquantized_params' needs 'checkpoint_dtype'",
        ),
        (
            '[models."Llama-3-8B"]\ncheckpoint_dtype = "fp8"\nunquantized_params = 9e9',
            "field 'unquantized_params' exceeds",
        ),
        (
            "[gpus.a10]\nmemory_bandwidth_fraction = 1.1",
            "[gpus.A10] field 'memory_bandwidth_fraction' is a share of the memory bandwidth",
        ),
    ],
)
def test_malformed_user_catalogue_names_file_entry_field(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "broken.toml"
    path.write_text(text)
    with pytest.raises(LibraryError) as err:
        load_catalog(path)
    msg = str(err.value)
    assert str(path) in msg and needle in msg and "\n" not in msg


def test_missing_user_catalogue(tmp_path: Path) -> None:
    with pytest.raises(LibraryError, match="cannot read catalogue"):
        load_catalog(tmp_path / "nope.toml")


def test_rows_are_in_display_units(cat: Catalog) -> None:
    models = {r["name"]: r for r in model_rows(cat)}
    assert list(models) == list(cat.models)
    row = models["Llama-3-8B"]
    assert row["params_b"] == 8.03 and row["kv_kib_per_token"] == 128.0
    assert (row["layers"], row["heads"], row["kv_heads"], row["head_dim"]) == (32, 32, 8, 128)
    assert models["Mixtral-8x7B"]["active_params_b"] == pytest.approx(12.88)
    assert row["checkpoint"] == "-" and models["Llama-3.1-405B-FP8"]["checkpoint"] == "fp8, 81.3 B in 16-bit"
    assert row["source"]
    gpus = {r["name"]: r for r in gpu_rows(cat)}
    assert gpus["A10"] == {
        "name": "A10",
        "fp16_tflops": 125.0,
        "memory_gib": 24.0,
        "bandwidth_gb_s": 600.0,
        "idle_w": 15.0,
        "max_w": 150.0,
        "interconnect_gb_s": 32.0,
        "usd_per_hour": 0.86,
        "embodied_kgco2": 100.0,
    }
