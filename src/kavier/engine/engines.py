"""Engine presets: how a real serving engine schedules, as defaults of Kavier's serving backend.

An engine preset is registered in :data:`kavier.registry.ENGINES` and chosen with ``--engine``
(the serving preset's default: ``vllm-v1``). It resolves the scheduler knobs a scenario leaves
unset (``max_num_seqs``, ``max_batched_tokens``, ``chunked_prefill``) the way the engine's own
defaults do, gives the continuous scheduler the engine's admission rules, and names the
calibrated profiles (:mod:`kavier.perf.profiles`) that time its iterations. Each rule is
documented with its source in ``docs/engines.md``.

- ``vllm-v1`` (vLLM >= 0.10): chunked prefill always on; each step the running requests first
  (decodes and partial prefills), then waiting requests FCFS, but none in a step in which a
  request was preempted; a request is admitted when blocks for its first chunk are free.
  ``max_num_seqs`` 1024 and ``max_batched_tokens`` 8192 on GPUs with at least 70 GiB other than
  the A100, else 256 and 2048.
- ``vllm-v0`` (vLLM 0.6, the Splitwise era): chunked prefill off (on, with a 512-token budget,
  for models whose context exceeds 32,768 tokens); prefills run in iterations of their own; a
  request is admitted only when blocks for its whole prompt are free with 1 % of the blocks to
  spare (the watermark); ``max_num_seqs`` 256, ``max_batched_tokens`` the larger of the model's
  context and 2048.

- ``sglang`` (SGLang 0.5): prefill-only iterations first (chunked by ``chunked_prefill_size``:
  2,048 to 16,384 tokens by GPU memory), admission that reserves room for future decode tokens,
  retraction of the fewest-generated requests to the tail of the queue; ``max_num_seqs`` is
  ``max_running_requests`` (2,048-4,096 from the KV tokens). Timed with vLLM V1's profiles.

All put a serial frontend before the engine (the server's request processing and
tokenization, :data:`FRONTEND_S_PER_REQUEST`, :data:`FRONTEND_S_PER_TOKEN`): a request reaches
its replica's scheduler when the frontend has processed it and every request before it; its
TTFT counts from its arrival at the server, as a benchmark client measures it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import ClassVar, Protocol

from kavier.errors import ScenarioError
from kavier.library.spec import GpuSpec, ModelSpec
from kavier.registry import ENGINES
from kavier.units import GIB


@dataclass(frozen=True)
class EngineKnobs:
    """The scheduler knobs an engine resolves: sequences per batch, tokens per iteration, whether
    prompts are chunked, whether waiting requests may join in a step that preempted, and the
    share of KV blocks an admission must leave free."""

    max_num_seqs: int
    max_batched_tokens: int
    chunked_prefill: bool
    admit_after_preemption: bool
    watermark_fraction: float
    # the server's serial request processing before the engine (see FRONTEND_S_PER_REQUEST)
    frontend_s_per_request: float = 0.0
    frontend_s_per_token: float = 0.0
    # the scheduler (kavier.registry.SCHEDULERS) that stands for the engine's continuous
    # batching: "" keeps the scenario's ("continuous", vLLM's)
    batching: str = ""


class Engine(Protocol):
    """An engine preset (see the module docstring)."""

    name: ClassVar[str]
    profile_family: ClassVar[str]

    def knobs(
        self,
        gpu: GpuSpec,
        model: ModelSpec,
        max_num_seqs: int | None,
        max_batched_tokens: int | None,
        chunked_prefill: bool | None,
        kv_tokens: int | None = None,
    ) -> EngineKnobs: ...


# The OpenAI-compatible server in front of a vLLM engine prepares requests one at a time: it
# parses each, applies the chat template and tokenizes the prompt on a single thread
# (vllm/entrypoints/openai/serving_engine.py, ``ThreadPoolExecutor(max_workers=1)`` for
# tokenization since vLLM 0.6.5, PR #10635; vllm-project/vllm#25301 reports the resulting serial
# queue), and only then hands the request to the engine. Requests that reach the server together
# therefore reach the engine spread out, which is what desynchronises closed-loop clients that
# finish on the same iteration. Estimated, not fitted (no public measurement isolates it): 0.5 ms
# per request and 1 us per prompt token (a Rust BPE tokenizer on one thread, ~10^6 tokens/s).
FRONTEND_S_PER_REQUEST = 0.5e-3
FRONTEND_S_PER_TOKEN = 1e-6


def _frontend(scenario: object) -> tuple[float, float]:
    """The scenario's frontend costs (s per request, s per prompt token), else the engine's."""
    per_request = getattr(scenario, "frontend_s_per_request", None)
    per_token = getattr(scenario, "frontend_s_per_token", None)
    return (
        FRONTEND_S_PER_REQUEST if per_request is None else float(per_request),
        FRONTEND_S_PER_TOKEN if per_token is None else float(per_token),
    )


def _large_gpu(gpu: GpuSpec) -> bool:
    """vLLM's test for its larger defaults: at least 70 GiB of memory and not an A100."""
    return gpu.memory_bytes >= 70 * GIB and not gpu.name.upper().startswith("A100")


@ENGINES.register("vllm-v1")
class VllmV1:
    """vLLM >= 0.10 (the V1 engine): chunked prefill always, running requests first, no new
    admissions in a step that preempted."""

    name: ClassVar[str] = "vllm-v1"
    profile_family: ClassVar[str] = "vllm-v1"

    def knobs(
        self,
        gpu: GpuSpec,
        model: ModelSpec,
        max_num_seqs: int | None,
        max_batched_tokens: int | None,
        chunked_prefill: bool | None,
        kv_tokens: int | None = None,
    ) -> EngineKnobs:
        if chunked_prefill is False:
            raise ScenarioError(
                "--chunked-prefill off: vLLM v1 always chunks prefills (engine vllm-v1); use "
                "--engine vllm-v0 for prefill-only iterations"
            )
        large = _large_gpu(gpu)
        return EngineKnobs(
            max_num_seqs=max_num_seqs or (1024 if large else 256),
            max_batched_tokens=max_batched_tokens or (8192 if large else 2048),
            chunked_prefill=True,
            admit_after_preemption=False,
            watermark_fraction=0.0,
        )


@ENGINES.register("vllm-v0")
class VllmV0:
    """vLLM 0.6 (the V0 engine): prefill-only iterations, whole-prompt admission with a 1 % free
    block watermark."""

    name: ClassVar[str] = "vllm-v0"
    profile_family: ClassVar[str] = "vllm-v0"

    def knobs(
        self,
        gpu: GpuSpec,
        model: ModelSpec,
        max_num_seqs: int | None,
        max_batched_tokens: int | None,
        chunked_prefill: bool | None,
        kv_tokens: int | None = None,
    ) -> EngineKnobs:
        long_context = model.max_context_tokens > 32768
        chunked = long_context if chunked_prefill is None else chunked_prefill
        if max_batched_tokens is None:
            max_batched_tokens = 512 if chunked else max(model.max_context_tokens or 2048, 2048)
        return EngineKnobs(
            max_num_seqs=max_num_seqs or 256,
            max_batched_tokens=max_batched_tokens,
            chunked_prefill=chunked,
            admit_after_preemption=True,
            watermark_fraction=0.01,
        )


# SGLang's chunked_prefill_size by GPU memory (GB): below each limit, that many tokens
# (sgl-project/sglang@v0.5.23 python/sglang/srt/arg_groups/memory_hook.py,
# handle_gpu_memory_settings); larger GPUs (B200, MI300X) 16,384.
SGLANG_CHUNK_BY_MEMORY_GB = ((20, 2048), (35, 4096), (60, 4096), (90, 8192), (160, 8192))


@ENGINES.register("sglang")
class Sglang:
    """SGLang 0.5 (overlap scheduler on, radix cache on): prefill-only iterations first, chunked
    by ``chunked_prefill_size``; admission reserves room for the requests' future decode tokens;
    retraction of the fewest-generated requests to the tail of the queue
    (:mod:`kavier.engine.schedulers.sglang`). Timed with the vLLM V1 profiles: no public SGLang
    measurements were at hand to fit its host times (docs/engines.md)."""

    name: ClassVar[str] = "sglang"
    profile_family: ClassVar[str] = "vllm-v1"

    def knobs(
        self,
        gpu: GpuSpec,
        model: ModelSpec,
        max_num_seqs: int | None,
        max_batched_tokens: int | None,
        chunked_prefill: bool | None,
        kv_tokens: int | None = None,
    ) -> EngineKnobs:
        memory_gb = gpu.memory_bytes / 1e9
        chunk = next((size for limit, size in SGLANG_CHUNK_BY_MEMORY_GB if memory_gb < limit), 16384)
        chunked = True if chunked_prefill is None else chunked_prefill
        if max_num_seqs is None:
            # max_running_requests: KV tokens / context x 512 within [2048, 4096], at most half
            # the KV tokens (sglang/srt/mem_cache/kv_cache_configurator.py, resolve_max_num_reqs)
            context = model.max_context_tokens or 8192
            tokens = kv_tokens or 0
            max_num_seqs = min(max(tokens * 512 // context, 2048), 4096)
            if tokens:
                max_num_seqs = max(1, min(max_num_seqs, tokens // 2))
        return EngineKnobs(
            max_num_seqs=max_num_seqs,
            max_batched_tokens=max_batched_tokens or (chunk if chunked else max(chunk, 16384)),
            chunked_prefill=chunked,
            admit_after_preemption=True,
            watermark_fraction=0.0,
            batching="sglang",
        )


def engine_knobs(
    name: str, gpu: GpuSpec, model: ModelSpec, scenario: object, kv_tokens: int | None = None
) -> EngineKnobs:
    """The knobs of engine ``name`` for a replica of ``model`` on ``gpu`` holding ``kv_tokens``
    of KV cache (None: unknown), with the scenario's explicit ``max_num_seqs``,
    ``max_batched_tokens`` and ``chunked_prefill`` (None: the engine's)."""
    engine = ENGINES.get(name)()
    knobs = engine.knobs(
        gpu,
        model,
        getattr(scenario, "max_num_seqs", None),
        getattr(scenario, "max_batched_tokens", None),
        getattr(scenario, "chunked_prefill", None),
        kv_tokens,
    )
    per_request, per_token = _frontend(scenario)
    return replace(knobs, frontend_s_per_request=per_request, frontend_s_per_token=per_token)
