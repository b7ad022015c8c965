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
"""

from __future__ import annotations

from dataclasses import dataclass
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
    ) -> EngineKnobs: ...


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


def engine_knobs(name: str, gpu: GpuSpec, model: ModelSpec, scenario: object) -> EngineKnobs:
    """The knobs of engine ``name`` for a replica of ``model`` on ``gpu``, with the scenario's
    explicit ``max_num_seqs``, ``max_batched_tokens`` and ``chunked_prefill`` (None: the engine's)."""
    engine = ENGINES.get(name)()
    return engine.knobs(
        gpu,
        model,
        getattr(scenario, "max_num_seqs", None),
        getattr(scenario, "max_batched_tokens", None),
        getattr(scenario, "chunked_prefill", None),
    )
