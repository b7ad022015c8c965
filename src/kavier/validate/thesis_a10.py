"""Thesis accuracy experiment: Llama-3-8B on an NVIDIA A10, simulated vs measured (vLLM 0.9).

The measured medians are the published figures of the Kavier thesis, Tables 6.5 (prefill
latency vs prompt size, batch 1, median of 10 runs) and 6.6 (decode latency vs response size,
7-token prompt). Prefill is compared with the simulated prefill time; decode with the simulated
prefill of the 7-token prompt plus the decode of the measured median response size.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

# Thesis Table 6.5: prompt size (tokens) -> median prefill latency (s).
PREFILL_MEDIANS: tuple[tuple[int, float], ...] = (
    (64, 0.054),
    (128, 0.072),
    (256, 0.123),
    (512, 0.213),
    (1024, 0.436),
    (2048, 0.819),
    (4096, 1.749),
    (8192, 3.860),
    (16384, 7.347),
)
# Thesis Table 6.6: requested response size, actual median response size (tokens) -> latency (s).
DECODE_MEDIANS: tuple[tuple[int, int, float], ...] = (
    (64, 53, 2.316),
    (128, 106, 4.526),
    (256, 206, 9.052),
    (512, 409, 18.120),
    (1024, 769, 36.332),
    (2048, 1838, 73.062),
    (4096, 3109, 147.257),
    (8192, 6585, 299.566),
    (16384, 13940, 617.688),
)
DECODE_PROMPT_TOKENS = 7


@dataclass
class Part:
    """One compared quantity: table rows as strings and its MAPE in percent."""

    name: str
    title: str
    columns: tuple[str, ...]
    rows: list[tuple[str, ...]]
    simulated_s: np.ndarray
    measured_s: np.ndarray
    mape_pct: float
    note: str


@dataclass
class Report:
    """The parts of an experiment."""

    parts: list[Part]


def mape_pct(simulated: np.ndarray, measured: np.ndarray) -> float:
    """Mean absolute percentage error, in percent."""
    return float(np.mean(np.abs(simulated - measured) / measured) * 100.0)


def thesis_a10(**overrides) -> Report:
    """Run the experiment with the thesis preset (``overrides`` change scenario fields)."""
    from kavier.api import simulate

    sizes = np.array([p for p, _ in PREFILL_MEDIANS])
    actual = np.array([a for _, a, _ in DECODE_MEDIANS])
    n = sizes.size + actual.size
    # Requests far apart in time, so none waits for another.
    requests = {
        "num_input_tokens": np.concatenate([sizes, np.full(actual.size, DECODE_PROMPT_TOKENS)]),
        "num_output_tokens": np.concatenate([np.zeros(sizes.size, dtype=np.int64), actual]),
        "arrival_s": np.arange(n) * 10_000.0,
    }
    scenario = {"preset": "thesis", "llm": "Llama-3-8B", "gpu": "A10", "prefix_len": 0}
    scenario.update(overrides)
    result = simulate(requests=requests, **scenario)
    table = result.requests
    service = table.column("prefill_s").to_numpy() + table.column("decode_s").to_numpy()
    sim_prefill = table.column("prefill_s").to_numpy()[: sizes.size]
    sim_decode = service[sizes.size :]
    meas_prefill = np.array([m for _, m in PREFILL_MEDIANS])
    meas_decode = np.array([m for *_, m in DECODE_MEDIANS])

    def rows(labels, sim, meas) -> list[tuple[str, ...]]:
        return [
            (str(lab), f"{m:.3f}", f"{s:.3f}", f"{(s - m) / m * 100:+.1f} %")
            for lab, s, m in zip(labels, sim, meas, strict=True)
        ]

    prefill = Part(
        name="prefill",
        title="Prefill latency, Llama-3-8B on A10 (thesis Table 6.5)",
        columns=("prompt tokens", "measured s", "simulated s", "error"),
        rows=rows(sizes, sim_prefill, meas_prefill),
        simulated_s=sim_prefill,
        measured_s=meas_prefill,
        mape_pct=mape_pct(sim_prefill, meas_prefill),
        note="thesis: 7.39 % from values rounded to ms; exact equations: 7.50 %",
    )
    decode = Part(
        name="decode",
        title="Decode latency, 7-token prompt, Llama-3-8B on A10 (thesis Table 6.6)",
        columns=("output tokens", "measured s", "simulated s", "error"),
        rows=rows(actual, sim_decode, meas_decode),
        simulated_s=sim_decode,
        measured_s=meas_decode,
        mape_pct=mape_pct(sim_decode, meas_decode),
        note="exact thesis equations: 4.00 %",
    )
    return Report(parts=[prefill, decode])


EXPERIMENTS: dict[str, Callable[[], Report]] = {"thesis-a10": thesis_a10}
