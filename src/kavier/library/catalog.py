"""The model and GPU catalogue: built-in TOML data, user catalogues and HuggingFace configs.

The data files (``data/models.toml``, ``data/gpus.toml``) hold one table per entry,
``[models.NAME]`` or ``[gpus.NAME]``, with keys whose names carry their units
(``memory_gib``, ``memory_bandwidth_gb_per_s``, ``fp16_dense_tflops``, ``embodied_co2_kg`` ...).
:func:`load_catalog` converts them to the SI fields of :class:`ModelSpec` / :class:`GpuSpec`:
GiB -> bytes (1024**3), GB/s -> bytes/s (1e9), TFLOPS/TOPS -> FLOP/s (1e12), kg -> g.

A user catalogue has the same layout. A table whose name (or alias) matches an existing entry
overrides only the keys it gives; any other table adds a new, complete entry.

Names are matched case-insensitively, ignoring spaces, ``-``, ``_`` and ``.``, so
``llama3.1-8b``, ``Llama-3.1-8B`` and ``LLAMA_3_1_8B`` are the same model.
"""

from __future__ import annotations

import difflib
import json
import math
import re
import tomllib
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from kavier.errors import LibraryError
from kavier.library import quantization
from kavier.library.spec import GpuSpec, ModelSpec
from kavier.units import GB, GIB, KIB, TERA

__all__ = [
    "Catalog",
    "count_params",
    "gpu_rows",
    "load_catalog",
    "model_from_hf_config",
    "model_rows",
]

_KINDS = ("models", "gpus")

# key -> (type, required); "int" = positive integer, "num" = non-negative number.
_MODEL_KEYS: dict[str, tuple[str, bool]] = {
    "num_layers": ("int", True),
    "hidden_size": ("int", True),
    "num_attention_heads": ("int", True),
    "num_kv_heads": ("int", False),  # default: num_attention_heads (no GQA)
    "head_dim": ("int", False),  # default: hidden_size // num_attention_heads
    "intermediate_size": ("int", True),
    "vocab_size": ("int", True),
    "num_params": ("num", True),
    "num_active_params": ("num", False),  # default: num_params
    "nominal_params": ("num", True),
    "num_experts": ("int", False),
    "num_experts_per_token": ("int", False),
    "max_context_tokens": ("count", False),
    "checkpoint_dtype": ("str", False),  # a quantized checkpoint's weight dtype
    "unquantized_params": ("num", False),  # its parameters kept in 16 bits (default 0)
    "tied_embeddings": ("bool", False),  # the output head is the input embedding (default false)
    "aliases": ("aliases", False),
    "source": ("str", True),
}

# Weight dtypes a quantized checkpoint can name (the scenario's weight_dtype values but 16-bit).
CHECKPOINT_DTYPES = ("fp8", "int8", "fp4", "int4")

_GPU_KEYS: dict[str, tuple[str, bool]] = {
    "fp16_dense_tflops": ("pos", True),
    "fp8_dense_tflops": ("num", False),
    "fp4_dense_tflops": ("num", False),
    "int8_dense_tops": ("num", False),
    "memory_gib": ("pos", True),
    "memory_bandwidth_gb_per_s": ("pos", True),
    "idle_power_w": ("num", True),
    "max_power_w": ("pos", True),
    "interconnect_gb_per_s": ("pos", True),
    "price_per_hour_usd": ("num", True),
    "embodied_co2_kg": ("num", True),
    "cores": ("count", False),
    "boost_clock_mhz": ("num", False),
    "gemm_peak_fraction": ("num", False),
    "memory_bandwidth_fraction": ("num", False),
    "allreduce_link_fraction": ("num", False),
    "nearest": ("str", False),
    "aliases": ("aliases", False),
    "source": ("str", True),
}


def _norm(name: str) -> str:
    """Lookup key: lower case without spaces, dashes, underscores or dots."""
    return re.sub(r"[\s_.\-]+", "", name.strip().lower())


class _Entry:
    """One raw catalogue table and the file it was last written by (for error messages)."""

    def __init__(self, name: str, fields: dict[str, Any], origin: str) -> None:
        self.name = name
        self.fields = fields
        self.origin = origin


def _check(origin: str, kind: str, name: str, key: str, kind_of: str, value: Any) -> Any:
    """Validate one value; return it normalised (floats for numbers, tuple for aliases)."""
    where = f"{origin}: [{kind}.{name}] field '{key}'"
    if kind_of == "str":
        if not isinstance(value, str) or not value.strip():
            raise LibraryError(f"{where} must be a non-empty string")
        return value.strip()
    if kind_of == "bool":
        if not isinstance(value, bool):
            raise LibraryError(f"{where} must be true or false, got {value!r}")
        return value
    if kind_of == "aliases":
        if not isinstance(value, list) or not all(isinstance(a, str) and a.strip() for a in value):
            raise LibraryError(f"{where} must be a list of non-empty strings")
        return tuple(a.strip() for a in value)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise LibraryError(f"{where} must be a finite number, got {value!r}")
    if kind_of in ("int", "count"):
        if float(value) != int(value):
            raise LibraryError(f"{where} must be a whole number, got {value!r}")
        value = int(value)
        if value < 0 or (kind_of == "int" and value == 0):
            limit = "positive" if kind_of == "int" else "non-negative"
            raise LibraryError(f"{where} must be {limit}, got {value}")
        return value
    if value < 0 or (kind_of == "pos" and value == 0):
        limit = "positive" if kind_of == "pos" else "non-negative"
        raise LibraryError(f"{where} must be {limit}, got {value}")
    return float(value)


def _fields(entry: _Entry, kind: str, schema: dict[str, tuple[str, bool]]) -> dict[str, Any]:
    """Check an entry against its schema: unknown keys, missing keys, types and signs."""
    out: dict[str, Any] = {}
    for key, value in entry.fields.items():
        if key not in schema:
            raise LibraryError(
                f"{entry.origin}: [{kind}.{entry.name}] unknown field '{key}' "
                f"(expected one of: {', '.join(schema)})"
            )
        out[key] = _check(entry.origin, kind, entry.name, key, schema[key][0], value)
    for key, (_, required) in schema.items():
        if required and key not in out:
            raise LibraryError(f"{entry.origin}: [{kind}.{entry.name}] missing field '{key}'")
    return out


def _build_model(entry: _Entry) -> ModelSpec:
    f = _fields(entry, "models", _MODEL_KEYS)
    heads = f["num_attention_heads"]
    spec = ModelSpec(
        name=entry.name,
        num_layers=f["num_layers"],
        hidden_size=f["hidden_size"],
        num_attention_heads=heads,
        num_kv_heads=f.get("num_kv_heads", heads),
        head_dim=f.get("head_dim", f["hidden_size"] // heads),
        intermediate_size=f["intermediate_size"],
        vocab_size=f["vocab_size"],
        num_params=f["num_params"],
        num_active_params=f.get("num_active_params", f["num_params"]),
        nominal_params=f["nominal_params"],
        num_experts=f.get("num_experts", 1),
        num_experts_per_token=f.get("num_experts_per_token", 1),
        max_context_tokens=f.get("max_context_tokens", 0),
        checkpoint_dtype=f.get("checkpoint_dtype", ""),
        unquantized_params=f.get("unquantized_params", 0.0),
        tied_embeddings=f.get("tied_embeddings", False),
        source=f["source"],
        aliases=f.get("aliases", ()),
    )
    where = f"{entry.origin}: [models.{entry.name}]"
    if spec.checkpoint_dtype and spec.checkpoint_dtype not in CHECKPOINT_DTYPES:
        raise LibraryError(
            f"{where} field 'checkpoint_dtype' must be one of {', '.join(CHECKPOINT_DTYPES)}, "
            f"got {spec.checkpoint_dtype!r}"
        )
    if spec.unquantized_params and not spec.checkpoint_dtype:
        raise LibraryError(
            f"{where} field 'unquantized_params' needs 'checkpoint_dtype' (the quantized dtype)"
        )
    if spec.unquantized_params > spec.num_active_params:
        raise LibraryError(f"{where} field 'unquantized_params' exceeds the parameters every token touches")
    if spec.num_kv_heads > spec.num_attention_heads:
        raise LibraryError(f"{where} field 'num_kv_heads' exceeds num_attention_heads")
    if spec.num_active_params > spec.num_params:
        raise LibraryError(f"{where} field 'num_active_params' exceeds num_params")
    if spec.num_experts_per_token > spec.num_experts:
        raise LibraryError(f"{where} field 'num_experts_per_token' exceeds num_experts")
    return spec


def _build_gpu(entry: _Entry) -> GpuSpec:
    f = _fields(entry, "gpus", _GPU_KEYS)
    if f["idle_power_w"] > f["max_power_w"]:
        raise LibraryError(f"{entry.origin}: [gpus.{entry.name}] field 'idle_power_w' exceeds max_power_w")
    shares = (
        ("gemm_peak_fraction", "dense FP16 peak"),
        ("memory_bandwidth_fraction", "memory bandwidth"),
        ("allreduce_link_fraction", "link bandwidth"),
    )
    for share, of in shares:
        if f.get(share, 0.0) > 1.0:
            raise LibraryError(
                f"{entry.origin}: [gpus.{entry.name}] field '{share}' is a share of the {of} and "
                f"must be at most 1, got {f[share]!r}"
            )
    return GpuSpec(
        name=entry.name,
        flops_fp16=f["fp16_dense_tflops"] * TERA,
        memory_bytes=f["memory_gib"] * GIB,
        memory_bandwidth=f["memory_bandwidth_gb_per_s"] * GB,
        idle_power_w=f["idle_power_w"],
        max_power_w=f["max_power_w"],
        interconnect_bandwidth=f["interconnect_gb_per_s"] * GB,
        price_per_hour_usd=f["price_per_hour_usd"],
        embodied_co2_g=f["embodied_co2_kg"] * 1000.0,
        flops_fp8=f.get("fp8_dense_tflops", 0.0) * TERA,
        flops_fp4=f.get("fp4_dense_tflops", 0.0) * TERA,
        flops_int8=f.get("int8_dense_tops", 0.0) * TERA,
        cores=f.get("cores", 0),
        boost_clock_mhz=f.get("boost_clock_mhz", 0.0),
        gemm_peak_fraction=f.get("gemm_peak_fraction", 0.0),
        memory_bandwidth_fraction=f.get("memory_bandwidth_fraction", 0.0),
        allreduce_link_fraction=f.get("allreduce_link_fraction", 0.0),
        nearest=f.get("nearest", ""),
        source=f["source"],
        aliases=f.get("aliases", ()),
    )


def _index(entries: dict[str, _Entry], kind: str) -> dict[str, str]:
    """Lookup key -> canonical name; two entries claiming one key is a catalogue error."""
    index: dict[str, str] = {}
    for name, entry in entries.items():
        aliases = entry.fields.get("aliases")
        keys = [name, *(aliases if isinstance(aliases, list) else [])]
        for key in (_norm(k) for k in keys if isinstance(k, str)):
            other = index.setdefault(key, name)
            if other != name:
                raise LibraryError(
                    f"{entry.origin}: [{kind}.{name}] name or alias '{key}' is already used by '{other}'"
                )
    return index


def _read_toml(path: Path | str, text: str) -> dict[str, dict[str, Any]]:
    """Parse a catalogue file into {kind: {name: table}}."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise LibraryError(f"{path}: not valid TOML: {exc}") from None
    out: dict[str, dict[str, Any]] = {}
    for kind, tables in data.items():
        if kind not in _KINDS:
            raise LibraryError(f"{path}: unknown top-level table '{kind}' (use models or gpus)")
        if not isinstance(tables, dict):
            raise LibraryError(f"{path}: '{kind}' must hold tables like [{kind}.NAME]")
        for name, table in tables.items():
            if not isinstance(table, dict):
                raise LibraryError(f"{path}: [{kind}.{name}] must be a table of fields")
        out[kind] = tables
    return out


class Catalog:
    """Models and GPUs by name. ``models`` / ``gpus`` map canonical name -> spec in file order."""

    def __init__(self, raw: dict[str, dict[str, _Entry]]) -> None:
        self._raw = raw
        self._index = {kind: _index(raw[kind], kind) for kind in _KINDS}
        self.models: dict[str, ModelSpec] = {n: _build_model(e) for n, e in raw["models"].items()}
        self.gpus: dict[str, GpuSpec] = {n: _build_gpu(e) for n, e in raw["gpus"].items()}

    def extended(self, path: Path | str) -> Catalog:
        """A new catalogue with the entries of the TOML file at ``path`` added or overriding."""
        path = Path(path).expanduser()
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise LibraryError(f"{path}: cannot read catalogue: {exc}") from None
        raw = {kind: dict(self._raw[kind]) for kind in _KINDS}
        for kind, tables in _read_toml(path, text).items():
            index = dict(self._index[kind])
            for name, table in tables.items():
                target = index.get(_norm(name))
                if target is None:
                    raw[kind][name] = _Entry(name, dict(table), str(path))
                    aliases = table.get("aliases")
                    for key in [name, *(aliases if isinstance(aliases, list) else [])]:
                        if isinstance(key, str):
                            index.setdefault(_norm(key), name)
                else:
                    merged = {**raw[kind][target].fields, **table}
                    raw[kind][target] = _Entry(target, merged, str(path))
        return Catalog(raw)

    def _unknown(self, kind: str, what: str, name: str, hint: str) -> LibraryError:
        names = list(getattr(self, kind))
        index = self._index[kind]
        close = difflib.get_close_matches(_norm(name), list(index), n=6, cutoff=0.6)
        suggest = list(dict.fromkeys(index[k] for k in close))[:3]
        did_you_mean = f" (did you mean {', '.join(suggest)}?)" if suggest else ""
        return LibraryError(
            f"unknown {what} '{name}'{did_you_mean}; known: {', '.join(names)} (see `kavier library`){hint}"
        )

    def model(self, name_or_path: str) -> ModelSpec:
        """A model by name or alias, or parsed from a HuggingFace ``config.json`` file or folder."""
        hit = self._index["models"].get(_norm(name_or_path))
        if hit is not None:
            return self.models[hit]
        path = Path(name_or_path).expanduser()
        if path.is_file() or (path.is_dir() and (path / "config.json").is_file()):
            return model_from_hf_config(path)
        if path.is_dir():
            raise LibraryError(f"{path}: folder has no config.json; pass a model name or a config")
        if path.suffix.lower() == ".json":
            raise LibraryError(f"{path}: no such HuggingFace config file")
        hint = ", or pass a path to a HuggingFace config.json"
        raise self._unknown("models", "model", name_or_path, hint)

    def gpu(self, name: str) -> GpuSpec:
        """A GPU by name or alias (case-insensitive)."""
        hit = self._index["gpus"].get(_norm(name))
        if hit is None:
            raise self._unknown("gpus", "GPU", name, ", or add it with a user catalogue")
        return self.gpus[hit]


@lru_cache(maxsize=1)
def _builtin() -> Catalog:
    raw: dict[str, dict[str, _Entry]] = {kind: {} for kind in _KINDS}
    data = resources.files("kavier.library").joinpath("data")
    for kind in _KINDS:
        res = data.joinpath(f"{kind}.toml")
        origin = f"built-in {kind}.toml"
        tables = _read_toml(origin, res.read_text(encoding="utf-8"))
        if set(tables) - {kind}:
            raise LibraryError(f"{origin}: holds tables other than [{kind}.NAME]")
        for name, table in tables.get(kind, {}).items():
            raw[kind][name] = _Entry(name, dict(table), origin)
    return Catalog(raw)


def load_catalog(user_catalog: str | Path | None = None) -> Catalog:
    """The built-in catalogue (cached), extended by a user TOML catalogue when one is given."""
    base = _builtin()
    return base if user_catalog is None else base.extended(user_catalog)


# --- HuggingFace config.json ------------------------------------------------------------------

# Families whose MLP is up -> activation -> down (2 matrices); all others are gated (3).
_NON_GATED = {
    "opt", "bloom", "mpt", "gpt2", "gpt_bigcode", "gpt_neox", "gptj", "falcon", "phi",
    "starcoder2", "codegen", "gpt_neo",
}  # fmt: skip
# Families with biases on every linear layer and LayerNorm (weight + bias).
_BIASED = {
    "opt", "bloom", "gpt2", "gpt_bigcode", "gpt_neox", "gptj", "phi", "starcoder2", "codegen",
}  # fmt: skip
# Families whose config class defaults tie_word_embeddings to False (HF default is True).
_UNTIED_DEFAULT = {
    "llama", "mistral", "mixtral", "qwen2", "qwen2_moe", "qwen3", "qwen3_moe", "phi3",
    "deepseek_v2", "deepseek_v3", "granite", "olmo2",
}  # fmt: skip


def _first(cfg: dict[str, Any], *keys: str) -> Any:
    for key in keys:
        if cfg.get(key) is not None:
            return cfg[key]
    return None


def count_params(cfg: dict[str, Any]) -> tuple[int, int]:
    """Total and active (per token) parameter counts of a decoder-only transformer config.

    Counts embeddings, attention q/k/v/o, the MLP (3 matrices when gated, 2 otherwise), layer
    norms, biases where the family uses them, learned positions (OPT, GPT-2/BigCode), the LM head
    unless tied, and for MoE the router, all experts (total) or the routed top-k (active) plus
    shared experts. ``cfg`` uses HuggingFace key names; see :func:`model_from_hf_config`.
    """
    parts = _param_parts(cfg)
    return parts["total"], parts["active"]


def _param_parts(cfg: dict[str, Any]) -> dict[str, int]:
    """``total`` and ``active`` parameters (see :func:`count_params`), ``linear``: the weights of
    the transformer blocks' linear layers (attention projections, dense MLPs, experts and shared
    experts; no biases, router or embeddings), which weight quantization converts, and ``tied``
    (1 when the output head is the input embedding)."""
    a = _arch(cfg)
    h, L, heads, kv, hd, inter = (
        a["hidden"], a["layers"], a["heads"], a["kv"], a["head_dim"], a["inter"]
    )  # fmt: skip
    mtype = a["model_type"]
    biased = mtype in _BIASED
    mats = 2 if mtype in _NON_GATED else 3

    attn_weights = h * heads * hd * 2 + h * kv * hd * 2  # q, o and k, v
    attn = attn_weights
    if biased or cfg.get("attention_bias"):
        attn += heads * hd * 2 + kv * hd * 2
    elif mtype in ("qwen2", "qwen2_moe"):
        attn += heads * hd + kv * hd * 2  # q, k, v biases only
    norms = (4 if mtype.startswith("gemma") and mtype != "gemma" else 2) * h * (2 if biased else 1)

    def mlp(width: int) -> int:
        bias = (width * (mats - 1) + h) if (biased or cfg.get("mlp_bias")) else 0
        return mats * h * width + bias

    experts, top_k, moe_inter = a["experts"], a["top_k"], a["moe_inter"]
    dense_layers = int(cfg.get("first_k_dense_replace") or 0) if experts > 1 else L
    moe_layers = L - dense_layers
    shared = shared_weights = int(cfg.get("n_shared_experts") or 0) * mlp(moe_inter)
    if cfg.get("shared_expert_intermediate_size"):
        width = int(cfg["shared_expert_intermediate_size"])
        shared += mlp(width) + h  # + its gate
        shared_weights += mats * h * width
    router = h * experts
    layer_common = attn + norms
    total = L * layer_common + dense_layers * mlp(inter)
    total += moe_layers * (router + shared + experts * mlp(moe_inter))
    active = L * layer_common + dense_layers * mlp(inter)
    active += moe_layers * (router + shared + top_k * mlp(moe_inter))
    linear = L * attn_weights + dense_layers * mats * h * inter
    linear += moe_layers * (shared_weights + experts * mats * h * moe_inter)

    embed = a["vocab"] * h + h * (2 if biased else 1)  # + final norm
    if mtype == "opt":
        embed += (int(cfg.get("max_position_embeddings") or 2048) + 2) * h
    elif mtype in ("gpt2", "gpt_bigcode"):
        embed += int(_first(cfg, "n_positions", "max_position_embeddings") or 0) * h
    if mtype == "bloom":
        embed += 2 * h  # word_embeddings_layernorm
    tied = bool(cfg.get("tie_word_embeddings", mtype not in _UNTIED_DEFAULT))
    if not tied:
        embed += a["vocab"] * h
    return {"total": total + embed, "active": active + embed, "linear": linear, "tied": int(tied)}


def _arch(cfg: dict[str, Any]) -> dict[str, Any]:
    """Architecture numbers from a HuggingFace config, accepting the common key spellings."""
    mtype = str(cfg.get("model_type", "")).lower()
    attn_cfg = cfg.get("attn_config") if isinstance(cfg.get("attn_config"), dict) else {}
    hidden = _first(cfg, "hidden_size", "n_embd", "d_model")
    layers = _first(cfg, "num_hidden_layers", "n_layer", "n_layers", "num_layers")
    heads = _first(cfg, "num_attention_heads", "n_head", "n_heads")
    if not all(isinstance(v, int) and v > 0 for v in (hidden, layers, heads)):
        raise KeyError("num_hidden_layers/hidden_size/num_attention_heads")
    kv = _first(cfg, "num_key_value_heads", "num_kv_heads", "n_head_kv")
    kv = kv if kv is not None else attn_cfg.get("kv_n_heads")
    multi_query = cfg.get("multi_query") or attn_cfg.get("attn_type") == "multiquery_attention"
    if kv is None and multi_query:
        kv = 1
    inter = _first(cfg, "intermediate_size", "ffn_dim", "n_inner", "ffn_hidden_size")
    if inter is None:
        inter = int(cfg.get("expansion_ratio") or 4) * hidden
    vocab = _first(cfg, "vocab_size", "padded_vocab_size")
    if not isinstance(vocab, int) or vocab <= 0:
        raise KeyError("vocab_size")
    experts = int(_first(cfg, "num_local_experts", "num_experts", "n_routed_experts") or 1)
    top_k = int(_first(cfg, "num_experts_per_tok", "moe_topk") or 1) if experts > 1 else 1
    return {
        "model_type": mtype,
        "hidden": hidden,
        "layers": layers,
        "heads": heads,
        "kv": int(kv) if kv else heads,
        "head_dim": int(cfg.get("head_dim") or hidden // heads),
        "inter": int(inter),
        "vocab": vocab,
        "experts": experts,
        "top_k": top_k,
        "moe_inter": int(cfg.get("moe_intermediate_size") or inter),
        "context": int(
            _first(cfg, "max_position_embeddings", "n_positions", "max_seq_len", "seq_length") or 0
        ),
    }


def model_from_hf_config(path: str | Path) -> ModelSpec:
    """Parse a HuggingFace ``config.json`` (or a folder holding one) into a :class:`ModelSpec`.

    Parameter counts come from :func:`count_params`; ``nominal_params`` equals ``num_params``.
    The name is ``_name_or_path`` when set, else the folder (or file stem) name.
    """
    path = Path(path).expanduser()
    file = path / "config.json" if path.is_dir() else path
    try:
        cfg = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LibraryError(f"{file}: cannot read HuggingFace config: {exc}") from None
    if not isinstance(cfg, dict):
        raise LibraryError(f"{file}: a HuggingFace config must be a JSON object")
    if isinstance(cfg.get("text_config"), dict) and "num_hidden_layers" not in cfg:
        cfg = {**cfg, **cfg["text_config"]}  # multimodal wrappers keep the LM in text_config
    try:
        a = _arch(cfg)
        parts = _param_parts(cfg)
    except (KeyError, TypeError, ValueError) as exc:
        raise LibraryError(f"{file}: missing or invalid architecture field {exc}") from None
    name = cfg.get("_name_or_path") or (file.parent.name if file.stem == "config" else file.stem)
    dtype, kept = "", 0.0
    qc = cfg.get("quantization_config")
    if isinstance(qc, dict) and qc:
        try:
            dtype = quantization.checkpoint_dtype(qc)
        except quantization.QuantizationError as exc:
            raise LibraryError(
                f"{file}: quantization_config: cannot read {exc}; describe the checkpoint in a user "
                "catalogue (checkpoint_dtype, unquantized_params) or remove the block"
            ) from None
        gated = a["model_type"] not in _NON_GATED
        kept = quantization.unquantized_params(qc, a, parts["total"], gated, parts["linear"])
        kept = min(kept, float(parts["active"]))
    return ModelSpec(
        name=str(name),
        num_layers=a["layers"],
        hidden_size=a["hidden"],
        num_attention_heads=a["heads"],
        num_kv_heads=a["kv"],
        head_dim=a["head_dim"],
        intermediate_size=a["inter"],
        vocab_size=a["vocab"],
        num_params=float(parts["total"]),
        num_active_params=float(parts["active"]),
        nominal_params=float(parts["total"]),
        num_experts=a["experts"],
        num_experts_per_token=a["top_k"],
        max_context_tokens=a["context"],
        checkpoint_dtype=dtype,
        unquantized_params=kept,
        tied_embeddings=bool(parts["tied"]),
        source=f"HuggingFace config {file}" + (f" ({dtype} checkpoint)" if dtype else ""),
    )


# --- display rows -----------------------------------------------------------------------------


def model_row(m: ModelSpec) -> dict[str, Any]:
    """One model in display units (billions of parameters, KiB of bf16 KV per token)."""
    return {
        "name": m.name,
        "params_b": round(m.num_params / 1e9, 2),
        "active_params_b": round(m.num_active_params / 1e9, 2),
        "layers": m.num_layers,
        "heads": m.num_attention_heads,
        "kv_heads": m.num_kv_heads,
        "head_dim": m.head_dim,
        "kv_kib_per_token": round(m.kv_bytes_per_token(2.0) / KIB, 1),
        # a quantized checkpoint: its dtype and the billions of parameters it kept in 16 bits
        "checkpoint": (
            f"{m.checkpoint_dtype}, {m.unquantized_params / 1e9:.1f} B in 16-bit"
            if m.checkpoint_dtype
            else "-"
        ),
        "source": m.source,
    }


def model_rows(catalog: Catalog) -> list[dict[str, Any]]:
    """One dict per model in display units (see :func:`model_row`)."""
    return [model_row(m) for m in catalog.models.values()]


def gpu_rows(catalog: Catalog) -> list[dict[str, Any]]:
    """One dict per GPU in display units (TFLOPS, GiB, GB/s, W, US$/h, kg CO2e)."""
    return [
        {
            "name": g.name,
            "fp16_tflops": round(g.flops_fp16 / TERA, 1),
            "memory_gib": round(g.memory_bytes / GIB, 1),
            "bandwidth_gb_s": round(g.memory_bandwidth / GB, 1),
            "idle_w": g.idle_power_w,
            "max_w": g.max_power_w,
            "interconnect_gb_s": round(g.interconnect_bandwidth / GB, 1),
            "usd_per_hour": g.price_per_hour_usd,
            "embodied_kgco2": round(g.embodied_co2_g / 1000.0, 1),
        }
        for g in catalog.gpus.values()
    ]
