"""The validation suites ``kavier validate`` runs: each replays published measurements through
the simulator and returns :class:`~kavier.validate.compare.Comparison` rows.

A suite is a name, a description, the measurement file it needs (relative to the data folder,
see :mod:`kavier.validate.data`; None when its data is built in) and a ``run(data, **overrides)``
function; ``overrides`` are scenario keys applied to every replayed run (e.g. ``perf_profile``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kavier.validate.compare import REFERENCE, Comparison


@dataclass(frozen=True)
class Suite:
    """A validation suite (see the module docstring). ``split_by_profile``: the suite replays
    through the serving engine's profiles, so it runs once per split (fitted, held out).
    ``feeds_profiles``: ``benchmarks/fit_profiles.py`` pools its held-out errors into the
    shipped bands and profiles' ``[meta.validation]``."""

    name: str
    description: str
    data_file: str | None
    run: Callable[..., list[Comparison]]
    split_by_profile: bool = True
    feeds_profiles: bool = True


def _thesis(data: Any = None, **options: Any) -> list[Comparison]:
    from kavier.validate.thesis_a10 import thesis_a10

    report = thesis_a10()
    out = []
    for part, metric in zip(report.parts, ("ttft_s", "e2e_s"), strict=True):
        for row, sim, meas in zip(part.rows, part.simulated_s, part.measured_s, strict=True):
            out.append(
                Comparison(
                    "thesis-a10", f"{part.name} {row[0]}", metric, "A10", "Llama-3-8B", meas, sim, REFERENCE
                )
            )
    return out


def _run(module: str) -> Callable[..., list[Comparison]]:
    def run(data: Any = None, **options: Any) -> list[Comparison]:
        import importlib

        return importlib.import_module(module).run(data, **options)

    return run


SUITES: dict[str, Suite] = {
    s.name: s
    for s in (
        Suite(
            "thesis-a10",
            "the thesis preset on the thesis's A10 tables (Llama-3-8B, vLLM 0.9, batch 1): 7.50 % / 4.00 %",
            None,
            _thesis,
            split_by_profile=False,
        ),
        Suite(
            "a10-vllm",
            "the serving preset on the same A10 tables: TTFT of one prompt, latency of one request",
            None,
            _run("kavier.validate.a10_vllm"),
        ),
        Suite(
            "splitwise",
            "batched prefill, decode step and power, Llama-2-70B and BLOOM-176B on A100-80GB and H100-SXM",
            "measurements/splitwise_llama2_70b_bloom_176b_a100_h100.csv",
            _run("kavier.validate.splitwise"),
        ),
        Suite(
            "mlenergy-h100",
            "steady-state vLLM 0.11.1 serving on H100-SXM, Llama-3.1 8B/70B/405B, max_num_seqs 8-1024: "
            "throughput, J/token, power, ITL, batch",
            "measurements/mlenergy_v3_h100_llama_chat.csv",
            _run("kavier.validate.mlenergy"),
        ),
        Suite(
            "nim-h100",
            "closed-loop serving at concurrency 1-250 on 2 x H100, Llama-3.3-70B FP8 (NVIDIA NIM 1.8.0, "
            "public guide): TTFT, ITL, throughput; never fitted",
            None,
            _run("kavier.validate.nim_h100"),
        ),
        Suite(
            "vllm-public",
            "public vllm bench serve runs (vLLM V1) off H100: Qwen2.5-32B on A100-80GB, TP 1 and 2, "
            "TTFT, TPOT, ITL, throughput",
            None,
            _run("kavier.validate.vllm_public"),
        ),
        Suite(
            "trtllm-gpus",
            "GPU-to-GPU scaling: TensorRT-LLM max-throughput of H200, A100-80GB, L40S and B200 over H100-SXM "
            "(perf overview v0.13/v1.0), Llama/Mistral/Mixtral fp16/fp8: the throughput ratio",
            None,
            _run("kavier.validate.trtllm_gpus"),
            feeds_profiles=False,  # added after the shipped fit; its metric has no band class
        ),
        Suite(
            "xla-collectives",
            "the all-reduce term against OpenXLA's measured 8-GPU all-reduces on H100-SXM and B200, "
            "1 KiB-2 GiB; never fitted but for the B200's link share (its 2 GiB row)",
            None,
            _run("kavier.validate.xla_collectives"),
            feeds_profiles=False,  # kernel-level times, not a run's figures: no band class
        ),
        Suite(
            "xla-gemm",
            "the roofline's dense-GEMM terms against OpenXLA's measured BF16 GEMMs of 256-4096 tokens "
            "through a 4096 x 4096 weight on H100-SXM and B200; never fitted but for the B200's GEMM share",
            None,
            _run("kavier.validate.xla_gemm"),
            feeds_profiles=False,  # kernel-level times, not a run's figures: no band class
        ),
    )
}
