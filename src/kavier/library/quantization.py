"""A HuggingFace config's ``quantization_config``: the checkpoint's weight dtype and the
parameters its quantization left in 16 bits (:class:`kavier.library.spec.ModelSpec`'s
``checkpoint_dtype`` and ``unquantized_params``).

Every method read here quantizes the linear layers of the transformer blocks only: the
embedding, the norms and the output head stay in 16 bits (vLLM quantizes ``LinearBase`` layers,
never its ``ParallelLMHead``, unless a method says otherwise: GPTQ's ``lm_head``), and so do the
modules a checkpoint lists as skipped (``modules_to_not_convert`` for ``fbgemm_fp8`` and
``fp8``, ``ignore`` for ``compressed-tensors``, ``exclude_modules`` for ``modelopt``; a name
skips that module and everything under it, ``re:`` starts a regular expression, as vLLM reads
them). Module names are Llama-style (``model.layers.N.self_attn.q_proj``, ``.mlp.down_proj``,
``lm_head``); MoE experts are never counted as skipped.
"""

from __future__ import annotations

import re
from typing import Any

# quant_method (lower case, "-" read as "_") -> how its weight dtype is read
_FP8_METHODS = {"fp8", "fbgemm_fp8", "ptpc_fp8"}
_BITS_METHODS = {"awq", "gptq", "gptq_marlin", "awq_marlin", "autoround", "auto_round", "hqq", "bitblas"}
KNOWN_METHODS = sorted(
    _FP8_METHODS | _BITS_METHODS | {"compressed_tensors", "modelopt", "bitsandbytes", "mxfp4"}
)


class QuantizationError(ValueError):
    """A quantization_config Kavier cannot read (the message says which field)."""


def _bits_dtype(bits: Any, floating: bool = False) -> str:
    if bits == 8:
        return "fp8" if floating else "int8"
    if bits == 4:
        return "fp4" if floating else "int4"
    raise QuantizationError(f"{bits!r}-bit weights (Kavier knows 4- and 8-bit ones)")


def checkpoint_dtype(qc: dict[str, Any]) -> str:
    """The weight dtype of a ``quantization_config`` (fp8, int8, fp4 or int4)."""
    method = str(qc.get("quant_method", "")).lower().replace("-", "_")
    if method in _FP8_METHODS:
        return "fp8"
    if method == "compressed_tensors":
        for group in (qc.get("config_groups") or {}).values():
            weights = group.get("weights") or {}
            return _bits_dtype(weights.get("num_bits"), weights.get("type") == "float")
        raise QuantizationError("compressed-tensors config without config_groups.*.weights")
    if method == "modelopt":
        algo = str(qc.get("quant_algo", "")).upper()
        if "FP8" in algo:
            return "fp8"
        if "FP4" in algo:
            return "fp4"
        if "W4" in algo or "INT4" in algo:
            return "int4"
        if "W8" in algo or "INT8" in algo:
            return "int8"
        raise QuantizationError(f"modelopt quant_algo {algo!r}")
    if method == "bitsandbytes":
        return "int4" if qc.get("load_in_4bit") else "int8"
    if method == "mxfp4":
        return "fp4"
    if method in _BITS_METHODS:
        return _bits_dtype(qc.get("bits", qc.get("w_bit")))
    raise QuantizationError(f"quant_method {qc.get('quant_method')!r} (known: {', '.join(KNOWN_METHODS)})")


def _skipped_names(qc: dict[str, Any]) -> list[str]:
    for key in ("modules_to_not_convert", "ignore", "exclude_modules", "ignored_layers"):
        names = qc.get(key)
        if names:
            return [str(n) for n in names]
    return []


def _skips(entry: str, module: str) -> bool:
    if entry.startswith("re:"):
        return re.fullmatch(entry[3:], module) is not None
    return module == entry or module.startswith(entry + ".")


def linear_modules(arch: dict[str, Any], gated: bool) -> dict[str, int]:
    """Parameters of each dense linear module of the transformer blocks, by Llama-style name
    (attention projections of every layer; the MLP of every layer that is not MoE)."""
    h, heads, kv, hd, inter = arch["hidden"], arch["heads"], arch["kv"], arch["head_dim"], arch["inter"]
    attention = {
        "q_proj": h * heads * hd,
        "k_proj": h * kv * hd,
        "v_proj": h * kv * hd,
        "o_proj": heads * hd * h,
    }
    mlp = ("gate_proj", "up_proj", "down_proj") if gated else ("up_proj", "down_proj")
    dense_mlp = arch["experts"] <= 1
    out: dict[str, int] = {}
    for i in range(arch["layers"]):
        layer = f"model.layers.{i}"
        out.update({f"{layer}.self_attn.{name}": n for name, n in attention.items()})
        if dense_mlp:
            out.update({f"{layer}.mlp.{name}": h * inter for name in mlp})
    return out


def unquantized_params(
    qc: dict[str, Any], arch: dict[str, Any], total_params: float, gated: bool, quantized_linear: float
) -> float:
    """Parameters the checkpoint keeps in 16 bits: all of ``total_params`` but the transformer
    blocks' linear weights (``quantized_linear`` of them), plus the listed skipped modules (and
    the output head's share when a GPTQ config quantizes it)."""
    kept = total_params - quantized_linear
    names = _skipped_names(qc)
    if names:
        for module, n in linear_modules(arch, gated).items():
            if any(_skips(entry, module) for entry in names):
                kept += n
    if qc.get("lm_head") is True:  # GPTQ with a quantized head
        kept -= arch["vocab"] * arch["hidden"]
    return float(max(kept, 0.0))
