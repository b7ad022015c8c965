"""The serving performance model: time of one engine iteration with many requests in the batch.

An iteration processes ``P`` prompt tokens (prefill chunks) and ``D`` decoding sequences. With
``N_a`` active parameters, ``b`` bytes per weight, per-GPU dense throughput ``F`` and bandwidth
``B``, compute efficiency ``Ce``, memory efficiency ``Me``, tensor parallelism ``tp``:

- compute ``= (2 N_a (P + D) + attention FLOPs) / (tp F Ce)``; attention FLOPs are
  ``4 L H d`` per (query token x context token): ``c (p + (c+1)/2)`` for a prefill chunk of ``c``
  tokens after ``p`` cached ones, ``ctx`` for each decoding sequence;
- memory ``= (weight bytes read + KV bytes read) / (tp B Me)``; weights are read once per
  iteration (for MoE, the experts the batch's tokens touch), KV bytes are each sequence's context;
- time ``= max(compute, memory) + all-reduce + iteration overhead (+ prefill overhead when the
  iteration holds prefill)``; all-reduce is ``2 L`` ring all-reduces of the batch's activations
  over the GPU interconnect when ``tp > 1``. Pipeline stages (``pp``) split the weights and the
  KV cache across GPUs and add one activation hand-over per stage boundary; they do not speed up
  one iteration.

With the context-dependent terms off (``context_terms=False``), at batch one and for prompts that
are compute-bound, this is exactly the thesis model: prefill ``n 2N/(F Ce) + O``, decode step
``max(2N/(F Ce), b N/(B Me))``. (The thesis ignores the weight read in prefill, which only matters
for prompts of a few dozen tokens.)
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from kavier.engine.linear_run import LinearRun
from kavier.errors import ScenarioError
from kavier.library.spec import GpuSpec, ModelSpec

BYTES_PER_DTYPE = {"fp32": 4.0, "bf16": 2.0, "fp16": 2.0, "fp8": 1.0, "int8": 1.0, "int4": 0.5}


@dataclass(frozen=True)
class ServingPerfParams:
    """The serving model's free constants (``kavier calibrate`` fits them)."""

    compute_efficiency: float = 0.30
    memory_efficiency: float = 0.60
    prefill_overhead_s: float = 0.025
    iteration_overhead_s: float = 0.0
    comm_efficiency: float = 0.70
    comm_latency_s: float = 10e-6
    context_terms: bool = True


@dataclass(frozen=True)
class IterationCost:
    """Seconds an iteration spends computing and moving memory, and in total."""

    compute_s: float
    memory_s: float
    time_s: float


class ServingPerfModel:
    """Iteration times for a model on ``tp x pp`` GPUs of one kind."""

    def __init__(
        self,
        model: ModelSpec,
        gpu: GpuSpec,
        params: ServingPerfParams | None = None,
        tp: int = 1,
        pp: int = 1,
        weight_dtype: str = "bf16",
        kv_dtype: str = "bf16",
    ) -> None:
        if weight_dtype not in BYTES_PER_DTYPE or kv_dtype not in BYTES_PER_DTYPE:
            raise ScenarioError(f"dtype must be one of {', '.join(BYTES_PER_DTYPE)}")
        self.model = model
        self.gpu = gpu
        self.p = params or ServingPerfParams()
        self.tp, self.pp = int(tp), int(pp)
        self.weight_bytes_per_param = BYTES_PER_DTYPE[weight_dtype]
        self.kv_bytes_per_value = BYTES_PER_DTYPE[kv_dtype]
        self.weight_dtype = weight_dtype
        flops = gpu.flops_fp16
        if weight_dtype == "fp8" and gpu.flops_fp8 > 0:
            flops = gpu.flops_fp8
        elif weight_dtype == "int8" and gpu.flops_int8 > 0:
            flops = gpu.flops_int8
        self.flops = flops
        self.kv_bytes_per_token = model.kv_bytes_per_token(self.kv_bytes_per_value)
        self.attn_flops_per_pair = 4.0 * model.num_layers * model.num_attention_heads * model.head_dim
        self._moe_split()
        self._compute_rate = self.tp * self.flops * self.p.compute_efficiency
        self._memory_rate = self.tp * gpu.memory_bandwidth * self.p.memory_efficiency

    def with_params(self, params: ServingPerfParams) -> ServingPerfModel:
        """The same hardware and model with other constants."""
        clone = ServingPerfModel.__new__(ServingPerfModel)
        clone.__dict__.update(self.__dict__)
        clone.p = params
        clone._compute_rate = clone.tp * clone.flops * params.compute_efficiency
        clone._memory_rate = clone.tp * clone.gpu.memory_bandwidth * params.memory_efficiency
        return clone

    def _moe_split(self) -> None:
        m = self.model
        if m.is_moe and m.num_experts > m.num_experts_per_token:
            expert_total = (
                (m.num_params - m.num_active_params)
                * m.num_experts
                / (m.num_experts - m.num_experts_per_token)
            )
            self.expert_params = expert_total
            self.shared_params = m.num_params - expert_total
        else:
            self.expert_params = 0.0
            self.shared_params = m.num_params

    @property
    def weight_bytes(self) -> float:
        """All weights of the model (bytes)."""
        return self.model.num_params * self.weight_bytes_per_param

    @property
    def weight_bytes_per_gpu(self) -> float:
        """Weights each GPU holds (bytes)."""
        return self.weight_bytes / (self.tp * self.pp)

    def weight_bytes_read(self, tokens: float) -> float:
        """Weight bytes one iteration of ``tokens`` tokens streams (MoE: experts touched)."""
        m = self.model
        if self.expert_params <= 0:
            return self.weight_bytes
        share = 1.0 - (1.0 - m.num_experts_per_token / m.num_experts) ** max(tokens, 1.0)
        return (self.shared_params + self.expert_params * share) * self.weight_bytes_per_param

    def _comm_s(self, tokens: float) -> float:
        s = 0.0
        act = tokens * self.model.hidden_size * 2.0
        if self.tp > 1:
            bw = self.gpu.interconnect_bandwidth * self.p.comm_efficiency
            per = 2.0 * (self.tp - 1) / self.tp * act / bw + self.p.comm_latency_s
            s += 2.0 * self.model.num_layers * per
        if self.pp > 1:
            bw = self.gpu.interconnect_bandwidth * self.p.comm_efficiency
            s += (self.pp - 1) * (act / bw + self.p.comm_latency_s)
        return s

    def iteration(
        self,
        prefill_tokens: float,
        prefill_attn_pairs: float,
        prefill_context_tokens: float,
        decode_seqs: float,
        decode_context_tokens: float,
    ) -> IterationCost:
        """Cost of one iteration.

        ``prefill_attn_pairs`` = sum over chunks of ``c (p + (c+1)/2)``; ``prefill_context_tokens``
        = tokens already cached before the chunks (their KV is read); ``decode_context_tokens`` =
        sum of the decoding sequences' context lengths.
        """
        n_active = self.model.num_active_params
        tokens = prefill_tokens + decode_seqs
        flops = 2.0 * n_active * tokens
        kv_read = 0.0
        if self.p.context_terms:
            flops += self.attn_flops_per_pair * (prefill_attn_pairs + decode_context_tokens)
            kv_read = self.kv_bytes_per_token * (decode_context_tokens + prefill_context_tokens)
        compute = flops / self._compute_rate
        memory = (self.weight_bytes_read(tokens) + kv_read) / self._memory_rate
        time = max(compute, memory) + self._comm_s(tokens) + self.p.iteration_overhead_s
        if prefill_tokens > 0:
            time += self.p.prefill_overhead_s
        return IterationCost(compute, memory, time)

    def decode_line(self, seqs: int, context0: float) -> LinearRun:
        """Decode-only steps of ``seqs`` sequences whose total context starts at ``context0``
        (and grows by ``seqs`` per step), as linear compute/memory seconds per step."""
        flops = 2.0 * self.model.num_active_params * seqs
        c0 = flops / self._compute_rate
        m0 = self.weight_bytes_read(seqs) / self._memory_rate
        c1 = m1 = 0.0
        if self.p.context_terms:
            c0 += self.attn_flops_per_pair * context0 / self._compute_rate
            c1 = self.attn_flops_per_pair * seqs / self._compute_rate
            m0 += self.kv_bytes_per_token * context0 / self._memory_rate
            m1 = self.kv_bytes_per_token * seqs / self._memory_rate
        extra = self._comm_s(seqs) + self.p.iteration_overhead_s
        return LinearRun(c0, c1, m0, m1, extra)

    def decode_run(self, seqs: int, context0: float, steps: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per-step (compute, memory, time) of ``steps`` decode-only iterations of ``seqs``
        sequences whose total context starts at ``context0`` and grows by ``seqs`` per step."""
        j = np.arange(steps, dtype=np.float64)
        ctx = context0 + seqs * j
        flops = 2.0 * self.model.num_active_params * seqs
        kv = 0.0
        if self.p.context_terms:
            flops = flops + self.attn_flops_per_pair * ctx
            kv = self.kv_bytes_per_token * ctx
        compute = np.broadcast_to(flops / self._compute_rate, j.shape).astype(np.float64)
        memory = (self.weight_bytes_read(seqs) + kv) / self._memory_rate
        memory = np.broadcast_to(memory, j.shape).astype(np.float64)
        time = np.maximum(compute, memory) + self._comm_s(seqs) + self.p.iteration_overhead_s
        return compute, memory, time


def default_params(**overrides: float) -> ServingPerfParams:
    """Default constants with some replaced."""
    return replace(ServingPerfParams(), **overrides)
