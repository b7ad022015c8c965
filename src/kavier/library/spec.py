"""Model and GPU specifications: the numbers the performance, power and cost models read.

All fields are SI: parameters are counts, memory in bytes, bandwidth in bytes/s, throughput in
FLOP/s, power in watts, prices in US dollars, embodied carbon in grams of CO2.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ModelSpec:
    """A transformer LLM's architecture.

    ``num_params`` is the exact total parameter count; ``num_active_params`` the parameters
    touched per token (equal to ``num_params`` for dense models, the routed experts' share for
    MoE). ``nominal_params`` is the rounded size in the model's name (8e9 for "8B"), which the
    thesis used in its equations and which the thesis preset therefore uses too. Under weights
    narrower than 16 bits, ``params_kept_16bit`` parameters stay in 16 bits (stored in 2 bytes and
    multiplied at the 16-bit rate): a quantized checkpoint's (``checkpoint_dtype`` set)
    ``unquantized_params``, dense ones touched by every token; else the embedding and head.
    """

    name: str
    num_layers: int
    hidden_size: int
    num_attention_heads: int
    num_kv_heads: int
    head_dim: int
    intermediate_size: int
    vocab_size: int
    num_params: float
    num_active_params: float
    nominal_params: float
    num_experts: int = 1
    num_experts_per_token: int = 1
    max_context_tokens: int = 0
    # a quantized checkpoint: the weight dtype it was published in ("" = any: the scenario's
    # weight_dtype applies to every parameter) and the parameters it keeps in 16 bits (those its
    # quantization skipped, e.g. self-attention, embeddings, first and last layers)
    checkpoint_dtype: str = ""
    unquantized_params: float = 0.0
    tied_embeddings: bool = False  # the output head is the input embedding
    source: str = ""
    aliases: tuple[str, ...] = field(default_factory=tuple)

    @property
    def params_kept_16bit(self) -> float:
        """Parameters a run with narrower weights keeps in 16 bits: a quantized checkpoint's
        ``unquantized_params``; for a 16-bit entry quantized on the fly, its input embedding and
        output head (vLLM, TensorRT-LLM and the common checkpoint formats quantize only the linear
        layers of the transformer blocks)."""
        if self.checkpoint_dtype:
            return self.unquantized_params
        return self.vocab_size * self.hidden_size * (1.0 if self.tied_embeddings else 2.0)

    @property
    def is_moe(self) -> bool:
        """True when the model routes tokens to a subset of experts."""
        return self.num_experts > 1

    def kv_bytes_per_token(self, bytes_per_value: float = 2.0) -> float:
        """KV-cache bytes per token: 2 (K, V) x layers x KV heads x head size x bytes.

        Thesis Eq. 4.1, with the KV heads of grouped-query attention.
        """
        return 2.0 * self.num_layers * self.num_kv_heads * self.head_dim * bytes_per_value


@dataclass(frozen=True)
class GpuSpec:
    """An accelerator's datasheet numbers (dense FP16/BF16 tensor throughput, never the sparse figure)."""

    name: str
    flops_fp16: float  # FLOP/s, dense FP16/BF16 tensor
    memory_bytes: float  # bytes
    memory_bandwidth: float  # bytes/s
    idle_power_w: float  # W
    max_power_w: float  # W (TDP/TBP)
    interconnect_bandwidth: float  # bytes/s, per GPU, one direction (NVLink/Infinity Fabric or PCIe)
    price_per_hour_usd: float  # US$ per GPU-hour
    embodied_co2_g: float  # g CO2e per GPU (manufacturing, incl. its share of the board)
    flops_fp8: float = 0.0  # FLOP/s, dense; 0 when unsupported
    flops_fp4: float = 0.0  # FLOP/s, dense FP4 (NVFP4) tensor cores; 0 when unsupported
    flops_int8: float = 0.0  # OP/s, dense; 0 when unsupported
    cores: int = 0  # CUDA cores / stream processors (OpenDC gpu_capacity = cores x clock)
    boost_clock_mhz: float = 0.0  # MHz
    # measured dense BF16 GEMM FLOP/s at a large shape over flops_fp16 (0: not measured); scales a
    # borrowed profile's compute efficiency (kavier.perf.profiles.share_scale)
    gemm_peak_fraction: float = 0.0
    # measured STREAM-like triad bandwidth over memory_bandwidth (0: not measured); scales a
    # borrowed profile's memory efficiency the same way
    memory_bandwidth_fraction: float = 0.0
    # measured bus bandwidth of a large 8-GPU all-reduce over interconnect_bandwidth (0: not
    # measured); scales a borrowed profile's comm efficiency the same way
    allreduce_link_fraction: float = 0.0
    # a GPU with a calibrated profile whose profile this one takes when it has none of its own
    # ("" = Kavier's table, kavier.perf.profiles.NEAREST, then the generic fit)
    nearest: str = ""
    source: str = ""
    aliases: tuple[str, ...] = field(default_factory=tuple)

    @property
    def capacity_mhz(self) -> float:
        """OpenDC GPU capacity in MHz: cores x boost clock (the thesis's convention)."""
        return float(self.cores) * float(self.boost_clock_mhz)
