"""The thesis performance model (batch of one), exactly as the thesis states its equations.

For a model of ``N`` parameters of ``b`` bytes on a GPU of dense FP16 throughput ``F`` (FLOP/s)
and memory bandwidth ``B`` (bytes/s), with compute efficiency ``Ce``, memory efficiency ``Me``
and per-request overhead ``O`` (s):

- prefill ``T_p = n_in * 2N / (F * Ce) + O``
- time per output token ``T_t = max(2N / (F * Ce), b * N / (B * Me))``
- decode with KV cache ``T_d = n_out * T_t``; without ``T_d = n_out (n_out + 1) / 2 * T_t``

``N`` is the model's nominal size (8e9 for Llama-3-8B), as the thesis used.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kavier.library.spec import GpuSpec, ModelSpec

FLOP_PER_PARAM_PER_TOKEN = 2.0


@dataclass(frozen=True)
class ThesisPerfModel:
    """Per-request prefill and decode times (seconds) of the thesis roofline model."""

    model: ModelSpec
    gpu: GpuSpec
    compute_efficiency: float = 0.30
    memory_efficiency: float = 0.60
    overhead_s: float = 0.025
    kv_cache: bool = True
    bytes_per_param: float = 2.0

    @property
    def params(self) -> float:
        """Parameters in the equations: the nominal size, active share for MoE."""
        nominal = self.model.nominal_params
        if self.model.is_moe and self.model.num_params > 0:
            return nominal * self.model.num_active_params / self.model.num_params
        return nominal

    @property
    def prefill_s_per_token(self) -> float:
        """Compute-bound seconds per prompt token: 2N / (F * Ce)."""
        return FLOP_PER_PARAM_PER_TOKEN * self.params / (self.gpu.flops_fp16 * self.compute_efficiency)

    @property
    def time_per_token_s(self) -> float:
        """Roofline seconds per output token: max(2N/(F Ce), b N/(B Me))."""
        memory_bound = (
            self.bytes_per_param * self.params / (self.gpu.memory_bandwidth * self.memory_efficiency)
        )
        return max(self.prefill_s_per_token, memory_bound)

    def prefill_s(self, num_input_tokens: np.ndarray) -> np.ndarray:
        """Prefill seconds for each prompt length (tokens)."""
        n = np.asarray(num_input_tokens, dtype=np.float64)
        return n * self.prefill_s_per_token + self.overhead_s

    def decode_s(self, num_output_tokens: np.ndarray) -> np.ndarray:
        """Decode seconds for each output length (tokens); quadratic without a KV cache."""
        n = np.asarray(num_output_tokens, dtype=np.float64)
        if self.kv_cache:
            return n * self.time_per_token_s
        return n * (n + 1.0) / 2.0 * self.time_per_token_s

    @property
    def weights_read_s(self) -> float:
        """Seconds to stream the weights once at the achievable bandwidth: b N / (B Me)."""
        return self.bytes_per_param * self.params / (self.gpu.memory_bandwidth * self.memory_efficiency)

    def prefill_activity(self, num_input_tokens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Fractions of prefill time the tensor cores and the memory system are busy."""
        n = np.asarray(num_input_tokens, dtype=np.float64)
        total = self.prefill_s(n)
        compute = n * self.prefill_s_per_token
        return np.minimum(1.0, compute / total), np.minimum(1.0, self.weights_read_s / total)

    def decode_activity(self) -> tuple[float, float]:
        """Fractions of a decode step the tensor cores and the memory system are busy."""
        step = self.time_per_token_s
        return min(1.0, self.prefill_s_per_token / step), min(1.0, self.weights_read_s / step)

    def first_token_offset_s(self) -> float:
        """Seconds from the end of prefill to the first output token (one decode step)."""
        return self.time_per_token_s
