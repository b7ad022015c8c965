"""Fit the serving model's constants across GPUs and models at once, on iteration-level rows.

A :class:`FitRow` is one measured time (seconds) that the model predicts as a weighted sum of
iterations (:meth:`kavier.perf.roofline.ServingPerfModel.iteration`): a batched prefill is one
iteration, a decode step one, a request's latency a prefill plus ``n`` decode steps, a
steady-state inter-token latency one iteration of the mean steady-state batch. Rows carry their
group (suite, GPU, model): the objective is the mean over groups of each group's mean absolute
log error (|log(predicted / measured)|), so a large table does not outweigh a small one and
errors above and below weigh alike.

The fit is derivative-free (bounded Nelder-Mead in log space with restarts, then a coordinate
polish; the optimiser of :mod:`kavier.perf.calibrate`) and deterministic. Power constants are
fitted the same way on :class:`PowerRow` s (a measured mean power over iterations of known
compute and memory shares).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from kavier.library.catalog import load_catalog
from kavier.perf.calibrate import _coordinate_polish, _nelder_mead  # noqa: F401
from kavier.perf.roofline import ServingPerfModel, ServingPerfParams

# Iteration arguments: prefill tokens, prefill attention pairs, prefill context tokens,
# decode sequences, decode context tokens, prefill sequences.
Iteration = tuple[float, float, float, float, float, float]


@dataclass(frozen=True)
class FitRow:
    """A measured time and the iterations whose times sum to it: ``parts`` = (count, iteration).
    ``engine`` names the serving engine (and era) that was measured: host-side overheads are
    the engine's, efficiencies the GPU's. ``model`` groups and holds out the row (an
    architecture); ``llm``, when set, is the catalogue entry timed (a quantized checkpoint of it)."""

    group: tuple[str, str, str]  # (suite, gpu, model)
    gpu: str
    model: str
    tp: int
    weight_dtype: str
    parts: tuple[tuple[float, Iteration], ...]
    measured_s: float
    label: str = ""
    engine: str = "vllm-v1"
    llm: str = ""  # the catalogue entry timed (a checkpoint of ``model``); "" = ``model``


def prefill(batch: float, prompt: float) -> Iteration:
    """One iteration prefilling ``batch`` prompts of ``prompt`` tokens from scratch."""
    return (batch * prompt, batch * prompt * (prompt + 1.0) / 2.0, 0.0, 0.0, 0.0, batch)


def chunked_prefill(prompt: int, budget: int) -> tuple[tuple[float, Iteration], ...]:
    """The iterations prefilling one prompt in chunks of at most ``budget`` tokens (each chunk
    attends to the chunks before it and reads their KV)."""
    parts = []
    done = 0
    while done < prompt:
        c = min(budget, prompt - done)
        parts.append((1.0, (float(c), c * (done + (c + 1.0) / 2.0), float(done), 0.0, 0.0, 1.0)))
        done += c
    return tuple(parts)


def decode(batch: float, context: float) -> Iteration:
    """One decode iteration of ``batch`` sequences of mean context ``context`` tokens."""
    return (0.0, 0.0, 0.0, batch, batch * context, 0.0)


def mixed(batch: float, context: float, prefill_tokens: float, prompt: float) -> Iteration:
    """One iteration decoding ``batch`` sequences and prefilling ``prefill_tokens`` tokens of
    prompts of ``prompt`` tokens (``prefill_tokens / prompt`` sequences, possibly fractional)."""
    seqs = prefill_tokens / prompt if prompt else 0.0
    return (prefill_tokens, seqs * prompt * (prompt + 1.0) / 2.0, 0.0, batch, batch * context, seqs)


# A fitted constant and where it applies: "" (every row), "gpu=<name>" or "engine=<name>".
Slot = tuple[str, str]


def constants_for(
    base: ServingPerfParams, values: dict[Slot, float], gpu: str, engine: str
) -> ServingPerfParams:
    """``base`` with the shared values, then ``gpu``'s, then ``engine``'s."""
    chosen: dict[str, float] = {}
    for scope in ("", f"gpu={gpu}", f"engine={engine}"):
        chosen.update({key: v for (key, where), v in values.items() if where == scope})
    return replace(base, **chosen)


class Predictor:
    """Predicts rows under given constants, caching one performance model per (gpu, model, tp, dtype)."""

    def __init__(self, rows: Sequence[FitRow]) -> None:
        catalog = load_catalog()
        self.rows = list(rows)
        self._models: dict[tuple, ServingPerfModel] = {}
        for r in self.rows:
            key = (r.gpu, r.llm or r.model, r.tp, r.weight_dtype)
            if key not in self._models:
                self._models[key] = ServingPerfModel(
                    catalog.model(r.llm or r.model),
                    catalog.gpu(r.gpu),
                    ServingPerfParams(),
                    tp=r.tp,
                    weight_dtype=r.weight_dtype,
                )
        self.measured = np.array([r.measured_s for r in self.rows])
        groups = sorted({r.group for r in self.rows})
        index = {g: i for i, g in enumerate(groups)}
        self.group_of = np.array([index[r.group] for r in self.rows])
        self.group_sizes = np.bincount(self.group_of, minlength=len(groups)).astype(np.float64)

    def predict(self, base: ServingPerfParams, values: dict[Slot, float] | None = None) -> np.ndarray:
        """Every row's predicted seconds under ``base`` with the slot ``values``."""
        values = values or {}
        params: dict[tuple[str, str], ServingPerfParams] = {}
        models: dict[tuple, ServingPerfModel] = {}
        out = np.empty(len(self.rows))
        for i, r in enumerate(self.rows):
            key = (r.gpu, r.llm or r.model, r.tp, r.weight_dtype, r.engine)
            m = models.get(key)
            if m is None:
                if (r.gpu, r.engine) not in params:
                    params[r.gpu, r.engine] = constants_for(base, values, r.gpu, r.engine)
                m = models[key] = self._models[key[:4]].with_params(params[r.gpu, r.engine])
            out[i] = sum(count * m.iteration(*it).time_s for count, it in r.parts)
        return out

    def objective(self, base: ServingPerfParams, values: dict[Slot, float] | None = None) -> float:
        """Mean over groups of the mean |log(predicted / measured)|."""
        err = np.abs(np.log(self.predict(base, values) / self.measured))
        per_group = np.bincount(self.group_of, weights=err) / self.group_sizes
        return float(per_group.mean())


# Bounds of every fittable constant (log-space search).
BOUNDS: dict[str, tuple[float, float]] = {
    "compute_efficiency": (0.05, 1.0),
    "memory_efficiency": (0.2, 1.0),
    "attention_efficiency": (0.02, 1.0),
    # at most the bus-bandwidth share NCCL reaches on an H100 (OpenXLA's measured 2 GiB 8-GPU
    # all-reduce, data/public/xla_collectives.csv: 0.894 of NVLink's 450 GB/s)
    "comm_efficiency": (0.05, 0.894),
    "compute_saturation_tokens": (1.0, 4096.0),
    "roofline_norm": (1.0, 64.0),
    "comm_latency_s": (1e-7, 1e-3),
    "iteration_overhead_s": (1e-6, 0.05),
    "decode_seq_overhead_s": (1e-8, 1e-3),
    "prefill_seq_overhead_s": (1e-7, 0.05),
    "prefill_overhead_s": (1e-6, 0.2),
}


def _polish(
    f: Callable[[np.ndarray], float], x: np.ndarray, fx: float, lo: np.ndarray, hi: np.ndarray
) -> tuple:
    """Coordinate search in log space down to steps of 0.1 % (finer buys nothing here)."""
    h = 0.2
    while h > 1e-3:
        improved = False
        for i in range(x.size):
            for sign in (1.0, -1.0):
                y = x.copy()
                y[i] = min(max(y[i] + sign * h, lo[i]), hi[i])
                if y[i] == x[i]:
                    continue
                fy = f(y)
                if fy < fx - 1e-9:
                    x, fx, improved = y, fy, True
                    break
        if not improved:
            h /= 2.0
    return x, fx


def fit(
    predictor: Predictor,
    base: ServingPerfParams,
    slots: Sequence[Slot],
    max_evals: int = 2500,
    start: dict[Slot, float] | None = None,
    bounds: dict[Slot, tuple[float, float]] | None = None,
) -> tuple[dict[Slot, float], float]:
    """The values of ``slots`` that minimise the objective, from ``start`` (or ``base``'s values
    and the middle of the bounds); with the objective. (A slot's key is a constant of
    :class:`ServingPerfParams`; ``bounds`` narrows a slot's range from :data:`BOUNDS`.)"""
    slots = list(slots)
    limits = [(bounds or {}).get(slot, BOUNDS[slot[0]]) for slot in slots]
    lo = np.log([low for low, _ in limits])
    hi = np.log([high for _, high in limits])

    def values_of(x: np.ndarray) -> dict[Slot, float]:
        return {slot: float(math.exp(v)) for slot, v in zip(slots, x, strict=True)}

    def f(x: np.ndarray) -> float:
        return predictor.objective(base, values_of(x))

    def base_value(slot: Slot) -> float:
        if start and slot in start:
            return start[slot]
        v = getattr(base, slot[0])
        return v if v > 0 else math.sqrt(BOUNDS[slot[0]][0] * BOUNDS[slot[0]][1])

    starts = [np.clip(np.log([base_value(s) for s in slots]), lo, hi)]
    if start is None:
        starts.append((lo + hi) / 2.0)
    best_x, best_f = None, math.inf
    for x0 in starts:
        x, fx, _ = _nelder_mead(f, x0, lo, hi, max_evals=max_evals)
        x2, fx2, _ = _nelder_mead(f, x, lo, hi, step=0.1, max_evals=max_evals)
        if fx2 < fx:
            x, fx = x2, fx2
        if fx < best_f:
            best_x, best_f = x, fx
    assert best_x is not None
    best_x, best_f = _polish(f, best_x, best_f, lo, hi)
    return values_of(best_x), best_f


@dataclass(frozen=True)
class PowerRow:
    """A measured mean power per GPU over iterations whose compute and memory busy shares are
    known: ``parts`` = (seconds, compute share, memory share)."""

    group: tuple[str, str, str]
    idle_w: float
    max_w: float
    parts: tuple[tuple[float, float, float], ...]
    measured_w: float
    busy: float = 1.0  # GPU utilisation over the parts' time / the busy utilisation


def predict_power(
    rows: Sequence[PowerRow], floor: float, compute_weight: float, memory_weight: float
) -> np.ndarray:
    """Mean power per GPU of each row under the activity model with an active floor:
    ``level = floor + (1 - floor) min(1, compute_weight c + memory_weight m)``."""
    out = np.empty(len(rows))
    for i, r in enumerate(rows):
        total = sum(t for t, _, _ in r.parts)
        level = sum(
            t * (floor + (1.0 - floor) * min(1.0, compute_weight * c + memory_weight * m))
            for t, c, m in r.parts
        )
        out[i] = r.idle_w + (r.max_w - r.idle_w) * level / total * r.busy
    return out


def fit_power(rows: Sequence[PowerRow]) -> tuple[float, float, float, float]:
    """(active floor, compute weight, memory weight, objective) minimising the groups' mean
    |log error|."""
    measured = np.array([r.measured_w for r in rows])
    groups = sorted({r.group for r in rows})
    gi = np.array([groups.index(r.group) for r in rows])
    sizes = np.bincount(gi).astype(np.float64)

    def f(x: np.ndarray) -> float:
        err = np.abs(np.log(predict_power(rows, float(x[0]), float(x[1]), float(x[2])) / measured))
        return float((np.bincount(gi, weights=err) / sizes).mean())

    lo, hi = np.zeros(3), np.array([0.95, 3.0, 3.0])
    x, fx, _ = _nelder_mead(f, np.array([0.2, 1.0, 0.8]), lo, hi, step=0.2)
    x, fx = _polish(f, x, fx, lo, hi)
    return float(x[0]), float(x[1]), float(x[2]), fx
