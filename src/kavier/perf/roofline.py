"""The serving performance model: time of one engine iteration with many requests in the batch.

An iteration processes ``P`` prompt tokens (prefill chunks) and ``D`` decoding sequences. With
``N_a`` active parameters, ``b`` bytes per weight, per-GPU dense throughput ``F`` and bandwidth
``B``, compute efficiency ``Ce``, memory efficiency ``Me``, tensor parallelism ``tp``:

- compute ``= 2 N_a (P + D) / (tp F Ce) + attention FLOPs / (tp F_kv Ae)``; attention FLOPs
  are ``4 L H d`` per (query token x context token): ``c (p + (c+1)/2)`` for a prefill chunk of
  ``c`` tokens after ``p`` cached ones, ``ctx`` for each decoding sequence; ``Ae`` is
  ``attention_efficiency`` (0, the default, means ``Ae = Ce`` at ``F``); ``F_kv`` is the peak of
  the KV cache's dtype (FP8 with an FP8 cache, else 16-bit), whatever the weights';
- memory ``= (weight bytes read + KV bytes read) / (tp B Me)``; weights are read once per
  iteration (for MoE, the experts the batch's tokens touch), KV bytes are each sequence's context;
- under weights narrower than 16 bits, the parameters kept in 16 bits
  (``ModelSpec.params_kept_16bit``: the embedding and output head, or a quantized checkpoint's
  ``unquantized_params``, e.g. the self-attention of Meta's FP8 Llama-3.1-405B) are read in
  2 bytes and multiplied at the 16-bit peak: ``F`` becomes ``F / (1 + U / N_a (F / F16 - 1))``
  for the dense GEMMs;
- time ``= join(compute, memory) + all-reduce + iteration overhead + D x decode-sequence overhead
  (+ prefill overhead + S x prefill-sequence overhead when the iteration holds prefill chunks of
  S sequences)``, where ``join`` is ``max`` or, with ``roofline_norm`` p > 0, the p-norm
  (:mod:`kavier.perf.roofline_join`).

All-reduce (``tp > 1``): ``2 L`` all-reduces per iteration (after attention and after the MLP of
every layer) of the batch's activations, ``S = (P + D) x hidden x 2`` bytes each. One costs

    ``(tp - 1) x comm_latency_s  +  2 (tp-1)/tp x S / (bw x e(S))``

(a ring all-reduce: ``tp - 1`` hops, so the latency of two GPUs, ``comm_latency_s``, times
``tp - 1``; each GPU sends ``2 (tp-1)/tp`` of the message). The effective bandwidth efficiency is
``comm_efficiency`` for messages that stay in the GPUs' on-chip cache and ``comm_spill_efficiency``
for those that spill to HBM: with ``x = S / comm_cache_bytes``, the share that spills is
``phi = x^4 / (1 + x^4)`` and ``1 / e(S) = (1 - phi) / comm_efficiency + phi / comm_spill_efficiency``.
``comm_cache_bytes = 0`` (the default) switches the spill off (``e = comm_efficiency``). Pipeline
stages (``pp``) split the weights and the KV cache across GPUs and add one activation hand-over
per stage boundary; they do not speed up one iteration.

``decode_seq_overhead_s`` is host-side time per decoding sequence per iteration (sampling, the
scheduler's and detokeniser's per-sequence work) that tensor parallelism does not divide; it is
constant along a decode-only run, so decode step time stays affine in the context length (see
:mod:`kavier.perf.linear_run`). ``prefill_seq_overhead_s`` is its prefill counterpart: seconds
per sequence that has a prefill chunk in the iteration, not divided by tensor parallelism (the
per-sequence input preparation, slot mapping and first-token sampling; in the Splitwise A100
measurements a batch of ``b`` prompts of 512 tokens costs about 15 ms per prompt more than one
prompt of ``512 b`` tokens, which no term of the token counts alone can express).

``attention_efficiency`` is the achieved share of peak FLOP/s of the attention kernels, which
need not be that of the weight GEMMs: FlashAttention-2 reaches about 70 % of an A100's peak but
only about 35 % of an H100's (Dao, arXiv:2307.08691; FlashAttention-3, arXiv:2407.08608), while
GEMMs reach 60-75 % on both. 0 (the default) uses ``compute_efficiency`` for attention too.

With the context-dependent terms off (``context_terms=False``), at batch one and for prompts that
are compute-bound, this is exactly the thesis model: prefill ``n 2N/(F Ce) + O``, decode step
``max(2N/(F Ce), b N/(B Me))`` (``tp = 1``: no all-reduce; ``iteration_overhead_s``,
``decode_seq_overhead_s`` and ``prefill_seq_overhead_s`` default to 0, and
``attention_efficiency = 0`` means ``Ce``). (The thesis ignores the weight read in prefill, which
only matters for prompts of a few dozen tokens.)
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from kavier.errors import ScenarioError
from kavier.library.spec import GpuSpec, ModelSpec
from kavier.perf.linear_run import LinearRun
from kavier.perf.roofline_join import overlap_factor, roofline_s

# Steepness of the all-reduce cache spill: the spilled share of a message of ``x`` cache sizes is
# ``x^4 / (1 + x^4)`` (about 6 % at half the cache, 94 % at twice it).
SPILL_EXPONENT = 4.0

# fp4 is NVFP4: 4-bit values with one FP8 scale per 16 of them (4.5 bits a weight)
BYTES_PER_DTYPE = {
    "fp32": 4.0,
    "bf16": 2.0,
    "fp16": 2.0,
    "fp8": 1.0,
    "int8": 1.0,
    "fp4": 0.5625,
    "int4": 0.5,
}


@dataclass(frozen=True)
class ServingPerfParams:
    """The serving model's free constants (``kavier calibrate`` fits them).

    - ``compute_efficiency``, ``memory_efficiency``: achieved share of peak dense FLOP/s and of
      memory bandwidth (the thesis's ``Ce`` and ``Me``);
    - ``prefill_overhead_s``: seconds added to an iteration that holds prefill (the thesis's
      per-request ``O``); ``iteration_overhead_s``: seconds added to every iteration (kernel
      launches, scheduling);
    - ``decode_seq_overhead_s``: seconds per decoding sequence per iteration, not divided by
      tensor parallelism (sampling and the host's per-sequence work);
    - ``prefill_seq_overhead_s``: seconds per sequence with a prefill chunk in the iteration, not
      divided by tensor parallelism (per-sequence input preparation and first-token sampling);
    - ``attention_efficiency``: achieved share of peak dense FLOP/s by the attention kernels
      (0: the same as ``compute_efficiency``);
    - ``comm_efficiency``: achieved share of the interconnect bandwidth by an all-reduce whose
      message stays in on-chip cache; ``comm_latency_s``: latency of one all-reduce between two
      GPUs (a ring of ``tp`` GPUs pays it ``tp - 1`` times);
    - ``comm_cache_bytes``: all-reduce message size (bytes) at which half of it spills from the
      GPUs' on-chip (L2) cache to HBM (0: no spill); ``comm_spill_efficiency``: achieved share of
      the interconnect bandwidth for the spilled part;
    - ``context_terms``: count attention FLOPs and KV-cache reads (off: the thesis model);
    - ``compute_saturation_tokens``: tokens per iteration at which the dense GEMMs reach half of
      ``compute_efficiency`` (small matrices leave tensor cores idle: the achieved share of peak
      is ``compute_efficiency x T / (T + compute_saturation_tokens)`` for ``T`` tokens in the
      iteration); 0 (the default) keeps one efficiency for every shape;
    - ``roofline_norm``: how an iteration's compute and memory seconds join: ``p`` of the p-norm
      ``(compute^p + memory^p)^(1/p)`` (an iteration near the roofline's ridge, where both are
      about equal, overlaps them imperfectly: ``2^(1/p)`` times the larger at the ridge, within
      ``(1 + 2^-p)^(1/p)`` of it at twice the ridge); 0 (the default) is ``max`` (perfect overlap).
    """

    compute_efficiency: float = 0.30
    memory_efficiency: float = 0.60
    prefill_overhead_s: float = 0.025
    iteration_overhead_s: float = 0.0
    decode_seq_overhead_s: float = 0.0
    prefill_seq_overhead_s: float = 0.0
    attention_efficiency: float = 0.0
    comm_efficiency: float = 0.70
    comm_latency_s: float = 10e-6
    comm_cache_bytes: float = 0.0
    comm_spill_efficiency: float = 0.15
    context_terms: bool = True
    compute_saturation_tokens: float = 0.0
    roofline_norm: float = 0.0


def dense_rate(rate_flops_per_s: float, tokens: float, saturation_tokens: float) -> float:
    """FLOP/s the dense GEMMs of an iteration of ``tokens`` tokens reach at full rate
    ``rate_flops_per_s``: that rate times ``tokens / (tokens + saturation_tokens)``
    (``ServingPerfParams.compute_saturation_tokens``; 0: the full rate)."""
    if saturation_tokens:
        return rate_flops_per_s * (tokens / (tokens + saturation_tokens))
    return rate_flops_per_s


def peak_flops(gpu: GpuSpec, weight_dtype: str = "bf16") -> float:
    """Peak dense FLOP/s of one GPU in the weights' data type: the FP4, FP8 or INT8 tensor-core
    peak when the weights are in that type and the GPU has one, else the FP16/BF16 peak (the
    weights are then widened before the matmul)."""
    if weight_dtype == "fp4" and gpu.flops_fp4 > 0:
        return gpu.flops_fp4
    if weight_dtype == "fp8" and gpu.flops_fp8 > 0:
        return gpu.flops_fp8
    if weight_dtype == "int8" and gpu.flops_int8 > 0:
        return gpu.flops_int8
    return gpu.flops_fp16


@dataclass(frozen=True)
class IterationCost:
    """Seconds an iteration spends computing and moving memory, and in total; ``comm_s`` of the
    total is tensor/pipeline-parallel communication and ``host_s`` host-side overhead (the rest
    is ``max(compute_s, memory_s)``)."""

    compute_s: float
    memory_s: float
    time_s: float
    comm_s: float = 0.0
    host_s: float = 0.0
    flops: float = 0.0  # FLOPs the iteration computes (dense + attention, every GPU together)
    bytes: float = 0.0  # bytes it moves from memory (weights read + KV read, every GPU together)


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
        self.flops = peak_flops(gpu, weight_dtype)
        # attention multiplies queries by the cached keys and values: in FP8 on FP8 tensor cores
        # with an FP8 KV cache (FlashAttention-3, TensorRT-LLM's FP8 FMHA), else at 16 bits
        self.attention_flops = peak_flops(gpu, "fp8") if kv_dtype == "fp8" else gpu.flops_fp16
        # the parameters kept in 16 bits under narrower weights (ModelSpec.params_kept_16bit):
        # their extra bytes, and the dense GEMMs' time over that of all at the dtype's peak
        narrow = self.weight_bytes_per_param < 2.0
        kept = model.params_kept_16bit if narrow else 0.0
        self.unquantized_extra_bytes = kept * (2.0 - self.weight_bytes_per_param)
        self.dense_slowdown = 1.0 + kept / model.num_active_params * (self.flops / gpu.flops_fp16 - 1.0)
        self.kv_bytes_per_token = model.kv_bytes_per_token(self.kv_bytes_per_value)
        self.attn_flops_per_pair = 4.0 * model.num_layers * model.num_attention_heads * model.head_dim
        self._moe_split()
        self._set_rates()

    def with_params(self, params: ServingPerfParams) -> ServingPerfModel:
        """The same hardware and model with other constants."""
        clone = ServingPerfModel.__new__(ServingPerfModel)
        clone.__dict__.update(self.__dict__)
        clone.p = params
        clone._set_rates()
        return clone

    def _set_rates(self) -> None:
        p = self.p
        self._saturation = p.compute_saturation_tokens
        self._compute_rate = self.tp * self.flops * p.compute_efficiency / self.dense_slowdown
        self._memory_rate = self.tp * self.gpu.memory_bandwidth * p.memory_efficiency
        # attention FLOPs at their own rate, or (0) folded into the GEMM FLOPs as before
        self._attn_rate = (
            self.tp * self.attention_flops * p.attention_efficiency if p.attention_efficiency > 0 else 0.0
        )

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
        """All weights of the model (bytes; under narrower weights, those kept in 16 bits at 2)."""
        return self.model.num_params * self.weight_bytes_per_param + self.unquantized_extra_bytes

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
        touched = (self.shared_params + self.expert_params * share) * self.weight_bytes_per_param
        return touched + self.unquantized_extra_bytes

    def allreduce_bytes(self, tokens: float) -> float:
        """Bytes of one tensor-parallel all-reduce message in an iteration of ``tokens`` tokens."""
        return tokens * self.model.hidden_size * 2.0

    def comm_spill_share(self, message_bytes: float) -> float:
        """Share of an all-reduce message that spills from on-chip cache (0 when the term is off)."""
        return spill_share(message_bytes, self.p.comm_cache_bytes)

    def _comm_s(self, tokens: float) -> float:
        s = 0.0
        act = self.allreduce_bytes(tokens)
        if self.tp > 1:
            per = ring_allreduce_s(act, self.tp, self.gpu.interconnect_bandwidth, self.p)
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
        prefill_seqs: float = 1.0,
    ) -> IterationCost:
        """Cost of one iteration.

        ``prefill_attn_pairs`` = sum over chunks of ``c (p + (c+1)/2)``; ``prefill_context_tokens``
        = tokens already cached before the chunks (their KV is read); ``decode_context_tokens`` =
        sum of the decoding sequences' context lengths; ``prefill_seqs`` = sequences with a
        prefill chunk (counts only when ``prefill_tokens > 0``).
        """
        p = self.p
        n_active = self.model.num_active_params
        tokens = prefill_tokens + decode_seqs
        flops = 2.0 * n_active * tokens
        kv_read = 0.0
        attn = 0.0
        if p.context_terms:
            attn = self.attn_flops_per_pair * (prefill_attn_pairs + decode_context_tokens)
            kv_read = self.kv_bytes_per_token * (decode_context_tokens + prefill_context_tokens)
        rate = dense_rate(self._compute_rate, tokens, self._saturation)
        compute = flops / rate + attn / self._attn_rate if self._attn_rate else (flops + attn) / rate
        moved = self.weight_bytes_read(tokens) + kv_read
        memory = moved / self._memory_rate
        comm = self._comm_s(tokens)
        host = p.iteration_overhead_s
        if decode_seqs > 0:
            host += decode_seqs * p.decode_seq_overhead_s
        if prefill_tokens > 0:
            host += p.prefill_overhead_s + prefill_seqs * p.prefill_seq_overhead_s
        time = roofline_s(compute, memory, p.roofline_norm) + comm + host
        return IterationCost(compute, memory, time, comm, host, flops + attn, moved)

    def decode_line(self, seqs: int, context0: float, steps: int = 1) -> LinearRun:
        """Decode-only steps of ``seqs`` sequences whose total context starts at ``context0``
        (and grows by ``seqs`` per step), as linear compute/memory seconds per step; with
        ``roofline_norm`` set, every step's join of the two takes the factor of the middle one of
        ``steps`` (the run's expected length; :class:`LinearRun`)."""
        flops = 2.0 * self.model.num_active_params * seqs
        rate = dense_rate(self._compute_rate, seqs, self._saturation)
        c0 = flops / rate
        weights = self.weight_bytes_read(seqs)
        m0 = weights / self._memory_rate
        c1 = m1 = 0.0
        f0, f1, b0, b1 = flops, 0.0, weights, 0.0
        if self.p.context_terms:
            attn_rate = self._attn_rate or rate
            c0 += self.attn_flops_per_pair * context0 / attn_rate
            c1 = self.attn_flops_per_pair * seqs / attn_rate
            m0 += self.kv_bytes_per_token * context0 / self._memory_rate
            m1 = self.kv_bytes_per_token * seqs / self._memory_rate
            f0 += self.attn_flops_per_pair * context0
            f1 = self.attn_flops_per_pair * seqs
            b0 += self.kv_bytes_per_token * context0
            b1 = self.kv_bytes_per_token * seqs
        comm = self._comm_s(seqs)
        host = self.p.iteration_overhead_s + seqs * self.p.decode_seq_overhead_s
        extra = comm + self.p.iteration_overhead_s + seqs * self.p.decode_seq_overhead_s
        mid = (max(steps, 1) - 1) / 2.0
        overlap = overlap_factor(c0 + c1 * mid, m0 + m1 * mid, self.p.roofline_norm)
        return LinearRun(c0, c1, m0, m1, extra, comm, host, f0, f1, b0, b1, overlap)

    def decode_run(self, seqs: int, context0: float, steps: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per-step (compute, memory, time) of ``steps`` decode-only iterations of ``seqs``
        sequences whose total context starts at ``context0`` and grows by ``seqs`` per step."""
        j = np.arange(steps, dtype=np.float64)
        ctx = context0 + seqs * j
        flops = 2.0 * self.model.num_active_params * seqs
        kv = 0.0
        attn = 0.0
        if self.p.context_terms:
            attn = self.attn_flops_per_pair * ctx
            kv = self.kv_bytes_per_token * ctx
        rate = dense_rate(self._compute_rate, seqs, self._saturation)
        compute = flops / rate + attn / self._attn_rate if self._attn_rate else (flops + attn) / rate
        compute = np.broadcast_to(compute, j.shape).astype(np.float64)
        memory = (self.weight_bytes_read(seqs) + kv) / self._memory_rate
        memory = np.broadcast_to(memory, j.shape).astype(np.float64)
        extra = self._comm_s(seqs) + self.p.iteration_overhead_s + seqs * self.p.decode_seq_overhead_s
        time = roofline_s(compute, memory, self.p.roofline_norm) + extra
        return compute, memory, time


def spill_share(message_bytes: float, cache_bytes: float) -> float:
    """Share of an all-reduce message of ``message_bytes`` that spills from an on-chip cache of
    ``cache_bytes`` (0 when ``cache_bytes`` is 0: the term is off)."""
    if cache_bytes <= 0.0 or message_bytes <= 0.0:
        return 0.0
    x = (message_bytes / cache_bytes) ** SPILL_EXPONENT
    return x / (1.0 + x)


def ring_allreduce_s(message_bytes: float, tp: int, link_bytes_per_s: float, p: ServingPerfParams) -> float:
    """Seconds of one ring all-reduce of ``message_bytes`` (bytes per GPU) across ``tp`` GPUs
    joined by links of ``link_bytes_per_s`` (bytes/s per GPU, one direction):
    ``2 (tp - 1) / tp x bytes / (link x comm_efficiency) + (tp - 1) x comm_latency_s``, the
    efficiency falling towards ``comm_spill_efficiency`` for messages that spill from the cache
    (``comm_cache_bytes``). Every tensor-parallel all-reduce of an iteration costs this."""
    inv_eff = 1.0 / p.comm_efficiency
    if p.comm_cache_bytes > 0.0:
        phi = spill_share(message_bytes, p.comm_cache_bytes)
        inv_eff += phi * (1.0 / p.comm_spill_efficiency - inv_eff)
    per = 2.0 * (tp - 1) / tp * message_bytes * inv_eff / link_bytes_per_s
    per += (tp - 1) * p.comm_latency_s
    return per


def default_params(**overrides: float) -> ServingPerfParams:
    """Default constants with some replaced."""
    return replace(ServingPerfParams(), **overrides)
