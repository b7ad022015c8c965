"""Fit the serving model's free constants to measured prefill and decode times.

:func:`calibrate` reads a measurements CSV, keeps the rows of one model on one GPU kind, predicts
each row with :class:`~kavier.perf.roofline.ServingPerfModel` and fits the constants of
:class:`~kavier.perf.roofline.ServingPerfParams` (``compute_efficiency``, ``memory_efficiency``,
``prefill_overhead_s``, ``iteration_overhead_s``, ``decode_seq_overhead_s``,
``prefill_seq_overhead_s``, ``attention_efficiency``, ``comm_efficiency``, ``comm_latency_s``,
``comm_cache_bytes`` and ``comm_spill_efficiency``; in general every float field whose name ends
in ``efficiency``, ``_s`` or ``_bytes``) by minimising the mean absolute percentage error (MAPE)
on the *fitting* rows; the other rows are *held out* and only scored. The objective is the mean
of the prompt_time MAPE and the token_time MAPE, each weighing every measured configuration
once (rows repeating one configuration share its weight; ``weigh_repeats=False`` weighs every
row once). ``attention_efficiency`` is bounded by ``compute_efficiency`` (attention kernels do
not beat the dense GEMMs) and fitted only when the attention share of the compute varies. One set of
constants is fitted for all tensor-parallel degrees in the file. A constant the fitting rows
cannot determine keeps its base value: one no row depends on, or an additive one whose effect is
a multiple of an earlier one's (``comm_latency_s`` when every row has the same ``tp > 1``: it is
then indistinguishable from ``iteration_overhead_s``), and the all-reduce cache spill
(``comm_cache_bytes``, ``comm_spill_efficiency``) unless rows with ``tp > 1`` have all-reduce
messages of sizes at least 4x apart.

Accepted CSV layouts (recognised by their header; column order is free, extra columns ignored):

1. **Splitwise** (``perf_model.csv`` of the Splitwise simulator): ``model, hardware,
   tensor_parallel, prompt_size, batch_size, token_size, prompt_time, token_time`` and optionally
   ``e2e_time``; times in **milliseconds**, ``prompt_time`` = prefill of the whole batch,
   ``token_time`` = one decode step. Model names ``llama2-70b``, ``bloom-176b`` and hardware
   ``a100-80gb``, ``h100-80gb`` map to the catalogue's ``Llama-2-70B``, ``BLOOM-176B``,
   ``A100-80GB``, ``H100-SXM`` (other names are looked up in the catalogue); power-capped hardware
   (``*-pcap``) is skipped unless ``include_power_capped=True``.
2. **Simple**: ``batch_size, prompt_size, tp`` and ``prompt_time_s`` and/or ``token_time_s``
   (seconds; a cell may be empty when only the other time was measured); optionally
   ``context_tokens`` (mean context length per sequence over the measured decode steps; default
   ``prompt_size + token_size/2`` when a ``token_size`` column is present, else ``prompt_size``),
   ``token_size``, and ``model`` / ``gpu`` (then only the matching rows are used; without them
   every row is taken to be of the requested model and GPU).

Each row is predicted as one engine iteration:

- ``prompt_time`` = one prefill iteration of ``P = batch_size x prompt_size`` tokens, attention
  pairs ``batch_size x p (p+1)/2``, no cached context, no decoding sequences (so it includes
  ``prefill_overhead_s`` and ``iteration_overhead_s``);
- ``token_time`` = one decode iteration of ``D = batch_size`` sequences whose total context is
  ``batch_size x (prompt_size + token_size/2)``, the mean over the generation (simple layout:
  ``batch_size x context_tokens``).

Rows that cannot be real are dropped before fitting and reported: a prefill faster than the GPUs'
peak dense FLOP/s allow (``2 N_active P / (tp F)``), or an ``e2e_time`` more than 1.5x the
prefill plus ``token_size`` decode steps (the run was preempted or split into waves, so its
``prompt_time`` and ``token_time`` do not describe one batch). In the Splitwise file these are
the batch-64 rows of Llama-2-70B at TP 2.

The optimiser is a bounded Nelder-Mead in log-space (several fixed starting points, restarts,
then a coordinate-search polish): derivative-free and deterministic, no SciPy.
"""

from __future__ import annotations

import csv
import math
import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from kavier.errors import KavierError, ScenarioError
from kavier.library.catalog import Catalog, load_catalog
from kavier.library.spec import GpuSpec, ModelSpec
from kavier.perf.profile import write_profile
from kavier.perf.roofline import SPILL_EXPONENT, ServingPerfModel, ServingPerfParams, roofline_s

__all__ = [
    "DEFAULT_FIT_ROWS",
    "FIT_KEYS",
    "CalibrationResult",
    "Measurement",
    "RowPrediction",
    "calibrate",
    "calibrate_cli",
    "calibrate_report",
    "mape",
    "parse_row_filter",
    "predict_rows",
    "read_measurements",
]

DEFAULT_FIT_ROWS = "batch_size<=8"

# The constants the calibration may fit, in the optimiser's order: every float field of
# ServingPerfParams whose name ends in ``efficiency`` (a rate divisor in (0, 1]), ``_s``
# (seconds added to an iteration) or ``_bytes`` (a size), so constants added to the model later
# are fitted too.
_ROOF = ("compute_efficiency", "memory_efficiency")
# The attention kernels' own compute efficiency: inside the roofline's compute term, next to
# compute_efficiency (0 means "the same as compute_efficiency").
_ATTN = "attention_efficiency"
# The all-reduce cache spill: the share of a message of S bytes that spills is a function of
# S / comm_cache_bytes, and its bandwidth time is a (1 - phi) / comm_efficiency + a phi / spill.
_COMM, _SPILL_SIZE, _SPILL_EFF = "comm_efficiency", "comm_cache_bytes", "comm_spill_efficiency"
_KNOWN_BOUNDS: dict[str, tuple[float, float]] = {
    "prefill_overhead_s": (1e-6, 5.0),
    "iteration_overhead_s": (1e-7, 1.0),
    "decode_seq_overhead_s": (1e-9, 0.1),
    "comm_latency_s": (1e-9, 1e-2),
}
_EFF_BOUNDS = (0.01, 1.0)
_SEC_BOUNDS = (1e-9, 5.0)
_BYTES_BOUNDS = (float(2**20), float(2**34))
_BYTES_START = 32e6  # bytes: of the order of a datacentre GPU's L2 cache (A100 40 MB, H100 50 MB)


def _param_kinds() -> dict[str, str]:
    """Fittable constant -> ``roof`` (compute/memory efficiency), ``attn`` (the attention
    kernels' compute efficiency), ``inverse`` (other efficiency, a rate divisor), ``linear``
    (seconds) or ``size`` (bytes)."""
    kinds: dict[str, str] = {}
    defaults = ServingPerfParams()
    for f in fields(ServingPerfParams):
        value = getattr(defaults, f.name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if f.name in _ROOF:
            kinds[f.name] = "roof"
        elif f.name == _ATTN:
            kinds[f.name] = "attn"
        elif f.name.endswith("efficiency"):
            kinds[f.name] = "inverse"
        elif f.name.endswith("_s"):
            kinds[f.name] = "linear"
        elif f.name.endswith("_bytes"):
            kinds[f.name] = "size"
    return kinds


FIT_KEYS: tuple[str, ...] = tuple(_param_kinds())


def _bounds(key: str, kind: str) -> tuple[float, float]:
    if kind in ("roof", "attn", "inverse"):
        return _EFF_BOUNDS
    if kind == "size":
        return _BYTES_BOUNDS
    return _KNOWN_BOUNDS.get(key, _SEC_BOUNDS)


SPLITWISE_COLUMNS = (
    "model",
    "hardware",
    "tensor_parallel",
    "prompt_size",
    "batch_size",
    "token_size",
    "prompt_time",
    "token_time",
)
SIMPLE_COLUMNS = ("batch_size", "prompt_size", "tp")
SIMPLE_TIMES = ("prompt_time_s", "token_time_s")
SIMPLE_OPTIONAL = ("context_tokens", "token_size", "model", "gpu")

SPLITWISE_MODELS = {"llama2-70b": "Llama-2-70B", "bloom-176b": "BLOOM-176B"}
SPLITWISE_GPUS = {"a100-80gb": "A100-80GB", "h100-80gb": "H100-SXM", "h100-80gb-pcap": "H100-SXM"}
_PCAP_SUFFIX = "-pcap"
_E2E_SLACK = 1.5


# ----------------------------------------------------------------------------------------------
# Measurements


@dataclass(frozen=True)
class Measurement:
    """One measured row, in seconds and token counts.

    ``context_tokens`` is the mean context length per sequence over the measured decode steps
    (the decode iteration reads ``batch_size x context_tokens`` tokens of KV cache).
    """

    line: int
    batch_size: int
    prompt_size: int
    tp: int
    prompt_time_s: float | None
    token_time_s: float | None
    context_tokens: float
    token_size: int | None = None
    e2e_time_s: float | None = None
    model: str | None = None
    hardware: str | None = None

    def value(self, column: str) -> float:
        """A column for row filters (``batch_size``, ``prompt_size``, ``token_size``, ``tp`` ...)."""
        column = _FILTER_ALIASES.get(column, column)
        got = getattr(self, column, None) if column in _FILTER_COLUMNS else None
        return float("nan") if got is None else float(got)


_FILTER_COLUMNS = ("batch_size", "prompt_size", "token_size", "tp", "context_tokens")
_FILTER_ALIASES = {"tensor_parallel": "tp", "batch": "batch_size", "prompt": "prompt_size"}


def _layout_error(path: Path | str, header: Sequence[str]) -> ScenarioError:
    shown = ", ".join(h for h in header if h) or "none"
    return ScenarioError(
        f"{path}: unknown measurements layout (columns: {shown}); expected either Splitwise columns "
        f"{', '.join(SPLITWISE_COLUMNS)} [e2e_time] (times in ms) or simple columns "
        f"{', '.join(SIMPLE_COLUMNS)} plus {' and/or '.join(SIMPLE_TIMES)} (seconds) "
        f"[{', '.join(SIMPLE_OPTIONAL)}]"
    )


def _num(path: Path | str, line: int, row: dict[str, str], column: str, *, kind: str, optional: bool = False):
    raw = (row.get(column) or "").strip()
    where = f"{path} line {line}: column '{column}'"
    if not raw:
        if optional:
            return None
        raise ScenarioError(f"{where} is empty")
    try:
        value = float(raw)
    except ValueError:
        raise ScenarioError(f"{where} must be a number, got {raw!r}") from None
    if not math.isfinite(value):
        raise ScenarioError(f"{where} must be finite, got {raw!r}")
    if kind == "count":
        if value != int(value) or value < 1:
            raise ScenarioError(f"{where} must be a whole number >= 1, got {raw!r}")
        return int(value)
    if kind == "count0":
        if value != int(value) or value < 0:
            raise ScenarioError(f"{where} must be a whole number >= 0, got {raw!r}")
        return int(value)
    if value <= 0:
        raise ScenarioError(f"{where} must be positive, got {raw!r}")
    return value


def read_measurements(path: Path | str) -> tuple[str, list[Measurement]]:
    """The layout name (``"splitwise"`` or ``"simple"``) and every row of a measurements CSV."""
    p = Path(path)
    try:
        with p.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            header = [h.strip() for h in (reader.fieldnames or [])]
            reader.fieldnames = header
            cols = set(header)
            if set(SPLITWISE_COLUMNS) <= cols:
                layout = "splitwise"
            elif set(SIMPLE_COLUMNS) <= cols and cols & set(SIMPLE_TIMES):
                layout = "simple"
            else:
                raise _layout_error(path, header)
            rows = [_parse_row(path, layout, cols, i + 2, row) for i, row in enumerate(reader)]
    except FileNotFoundError:
        raise ScenarioError(f"{path}: measurements file not found") from None
    except UnicodeDecodeError:
        raise ScenarioError(f"{path}: not a UTF-8 text CSV file") from None
    except csv.Error as exc:
        raise ScenarioError(f"{path}: malformed CSV ({exc})") from None
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read the measurements ({exc.strerror or exc})") from None
    if not rows:
        raise ScenarioError(f"{path}: no measurement rows below the header")
    return layout, rows


def _parse_row(path: Path | str, layout: str, cols: set[str], line: int, row: dict[str, str]) -> Measurement:
    if None in row:  # more cells than header columns
        raise ScenarioError(f"{path} line {line}: more cells than header columns")
    batch = _num(path, line, row, "batch_size", kind="count")
    prompt = _num(path, line, row, "prompt_size", kind="count")
    if layout == "splitwise":
        tp = _num(path, line, row, "tensor_parallel", kind="count")
        tokens = _num(path, line, row, "token_size", kind="count")
        pt = _num(path, line, row, "prompt_time", kind="pos") / 1e3
        tt = _num(path, line, row, "token_time", kind="pos") / 1e3
        e2e = _num(path, line, row, "e2e_time", kind="pos", optional=True) if "e2e_time" in cols else None
        if e2e is not None:
            e2e /= 1e3
        return Measurement(
            line=line,
            batch_size=batch,
            prompt_size=prompt,
            tp=tp,
            prompt_time_s=pt,
            token_time_s=tt,
            context_tokens=prompt + tokens / 2.0,
            token_size=tokens,
            e2e_time_s=e2e,
            model=(row.get("model") or "").strip(),
            hardware=(row.get("hardware") or "").strip(),
        )
    tp = _num(path, line, row, "tp", kind="count")

    def opt(column: str, kind: str):
        return _num(path, line, row, column, kind=kind, optional=True) if column in cols else None

    pt = opt("prompt_time_s", "pos")
    tt = opt("token_time_s", "pos")
    if pt is None and tt is None:
        raise ScenarioError(f"{path} line {line}: needs prompt_time_s or token_time_s (both are empty)")
    tokens = opt("token_size", "count0")
    ctx = opt("context_tokens", "pos")
    if ctx is None:
        ctx = prompt + (tokens or 0) / 2.0
    model = (row.get("model") or "").strip() or None
    gpu = (row.get("gpu") or "").strip() or None
    return Measurement(
        line=line,
        batch_size=batch,
        prompt_size=prompt,
        tp=tp,
        prompt_time_s=pt,
        token_time_s=tt,
        context_tokens=float(ctx),
        token_size=tokens,
        model=model,
        hardware=gpu,
    )


# ----------------------------------------------------------------------------------------------
# Row filters

_OPS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    ">": operator.gt,
    "=": operator.eq,
}
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_CLAUSE = re.compile(rf"^\s*([A-Za-z_]+)\s*(<=|>=|==|!=|<|>|=)\s*({_NUMBER})\s*$")


def parse_row_filter(text: str) -> Callable[[Measurement], bool]:
    """A row predicate from ``"batch_size<=8"``-style clauses joined by ``,``, ``&`` or ``and``."""
    clauses = [c for c in re.split(r",|&|\band\b", text, flags=re.IGNORECASE) if c.strip()]
    columns = ", ".join(_FILTER_COLUMNS)
    if not clauses:
        raise ScenarioError(
            f"row filter {text!r} is empty (expected e.g. 'batch_size<=8'; columns: {columns})"
        )
    tests: list[tuple[str, Callable[[float, float], bool], float]] = []
    for clause in clauses:
        m = _CLAUSE.match(clause)
        if not m:
            raise ScenarioError(
                f"row filter {text!r}: cannot read {clause.strip()!r} "
                f"(expected clauses like 'batch_size<=8' joined by ',' or 'and'; columns: {columns})"
            )
        col, op, num = m.group(1).lower(), m.group(2), float(m.group(3))
        if _FILTER_ALIASES.get(col, col) not in _FILTER_COLUMNS:
            raise ScenarioError(f"row filter {text!r}: unknown column {col!r} (columns: {columns})")
        tests.append((col, _OPS[op], num))

    def predicate(row: Measurement) -> bool:
        return all(fn(row.value(col), num) for col, fn, num in tests)

    return predicate


# ----------------------------------------------------------------------------------------------
# Predictions


def _prompt_args(row: Measurement) -> tuple[float, float, float, float, float, float]:
    b, p = float(row.batch_size), float(row.prompt_size)
    return b * p, b * p * (p + 1.0) / 2.0, 0.0, 0.0, 0.0, b


def _token_args(row: Measurement) -> tuple[float, float, float, float, float, float]:
    b = float(row.batch_size)
    return 0.0, 0.0, 0.0, b, b * row.context_tokens, 0.0


def predict_rows(
    rows: Sequence[Measurement],
    llm: ModelSpec,
    gpu: GpuSpec,
    params: ServingPerfParams,
) -> tuple[np.ndarray, np.ndarray]:
    """Predicted (prompt_time_s, token_time_s) of each row under ``params`` (NaN where not measured)."""
    models: dict[int, ServingPerfModel] = {}
    prompt = np.full(len(rows), np.nan)
    token = np.full(len(rows), np.nan)
    for i, row in enumerate(rows):
        m = models.get(row.tp)
        if m is None:
            m = models[row.tp] = ServingPerfModel(llm, gpu, params, tp=row.tp)
        if row.prompt_time_s is not None:
            prompt[i] = m.iteration(*_prompt_args(row)).time_s
        if row.token_time_s is not None:
            token[i] = m.iteration(*_token_args(row)).time_s
    return prompt, token


def mape(predicted: Sequence[float] | np.ndarray, measured: Sequence[float] | np.ndarray) -> float | None:
    """Mean absolute percentage error in percent (``None`` for no rows); NaN pairs are skipped."""
    p = np.asarray(predicted, dtype=np.float64)
    m = np.asarray(measured, dtype=np.float64)
    ok = np.isfinite(p) & np.isfinite(m)
    if not ok.any():
        return None
    return float(np.mean(np.abs(p[ok] - m[ok]) / m[ok]) * 100.0)


class _Points:
    """Every measured time of the fitting rows, decomposed so that the model's time is

    ``roofline_s(c / compute_efficiency + c_a / attention_efficiency, m / memory_efficiency)
    + sum_k a_k / eff_k + sum_k n_k sec_k + r``

    over the other efficiencies ``eff_k`` and the seconds constants ``sec_k`` (``c_a`` are the
    attention FLOPs' seconds at peak; ``attention_efficiency = 0`` means compute_efficiency), with the
    coefficients read off the real model by probing it with chosen constants. With the all-reduce
    cache spill on (``comm_cache_bytes > 0``), the all-reduce bandwidth term ``a / comm_efficiency``
    becomes ``a ((1 - phi) / comm_efficiency + phi / comm_spill_efficiency)`` with ``phi`` the
    spilled share of each row's message. The decomposition is checked against the real model at
    two parameter points; if it does not hold (a model whose constants enter otherwise), every
    evaluation calls the model instead (slower, same result).
    """

    def __init__(
        self,
        rows: Sequence[Measurement],
        llm: ModelSpec,
        gpu: GpuSpec,
        base: ServingPerfParams,
        weigh_repeats: bool = True,
    ):
        self.base = base
        args, measured, kind, tps, config = [], [], [], [], []
        for row in rows:
            if row.prompt_time_s is not None:
                args.append(_prompt_args(row))
                measured.append(row.prompt_time_s)
                kind.append(0)
                tps.append(row.tp)
                config.append((0, row.tp, *args[-1]))
            if row.token_time_s is not None:
                args.append(_token_args(row))
                measured.append(row.token_time_s)
                kind.append(1)
                tps.append(row.tp)
                config.append((1, row.tp, *args[-1]))
        self.args, self.tps = args, tps
        self.measured = np.asarray(measured, dtype=np.float64)
        self.kind = np.asarray(kind, dtype=np.int8)
        self.kinds = sorted(set(kind))
        # Each point's weight within its kind: 1 / (points of the same configuration) when
        # weighing repeats, so every measured configuration counts once however often it was
        # measured (in the Splitwise file the batch-1 512-token prefill is measured 45 times per
        # tp, once per token_size, against 5 times for every other prompt_time configuration).
        if weigh_repeats:
            counts: dict[tuple, int] = {}
            for c in config:
                counts[c] = counts.get(c, 0) + 1
            w = np.array([1.0 / counts[c] for c in config], dtype=np.float64)
        else:
            w = np.ones(len(config), dtype=np.float64)
        for k in self.kinds:
            sel = self.kind == k
            w[sel] /= w[sel].sum()
        self.weight = w
        self._models = {tp: ServingPerfModel(llm, gpu, base, tp=tp) for tp in sorted(set(tps))}
        self.msg = np.array(
            [self._models[tp].allreduce_bytes(a[0] + a[3]) for tp, a in zip(tps, args, strict=True)],
            dtype=np.float64,
        )
        self.param_kinds = _param_kinds()
        zero = replace(
            base,
            **{k: (0.0 if v in ("linear", "size") else 1.0) for k, v in self.param_kinds.items()},
        )
        z = self._direct_costs(zero)
        self.c = np.array([x.compute_s for x in z], dtype=np.float64)
        self.ca = np.zeros_like(self.c)
        if _ATTN in self.param_kinds:  # attention seconds at peak: a / 0.5 - a / 1 = a
            za = self._direct_costs(replace(zero, **{_ATTN: 0.5}))
            self.ca = np.array([x.compute_s for x in za], dtype=np.float64) - self.c
            self.c = self.c - self.ca
        self.m = np.array([x.memory_s for x in z], dtype=np.float64)
        t0 = np.array([x.time_s for x in z], dtype=np.float64)
        self.coef: dict[str, np.ndarray] = {}
        for key, k in self.param_kinds.items():
            if key == _SPILL_EFF:  # enters only through the spill (off in ``zero``)
                continue
            if k == "inverse":  # a / 0.5 - a / 1 = a
                self.coef[key] = self._direct(replace(zero, **{key: 0.5})) - t0
            elif k == "linear":
                self.coef[key] = self._direct(replace(zero, **{key: 1.0})) - t0
        inverse = [self.coef[k] for k, v in self.param_kinds.items() if v == "inverse" and k in self.coef]
        roof = roofline_s(self.c + self.ca, self.m, base.roofline_norm)
        self.rest = t0 - roof - sum(inverse, np.zeros_like(t0))
        self.spill = _COMM in self.coef and _SPILL_SIZE in self.param_kinds and _SPILL_EFF in self.param_kinds
        probe = replace(
            base,
            **{
                k: (2.5e7 if v == "size" else 0.37 + 0.05 * i if v != "linear" else 1.3e-3 * (i + 1))
                for i, (k, v) in enumerate(self.param_kinds.items())
            },
        )
        self.exact = all(
            np.allclose(self._fast(p), self._direct(p), rtol=1e-9, atol=1e-12) for p in (base, probe)
        )

    def _direct_costs(self, params: ServingPerfParams) -> list:
        models = {tp: m.with_params(params) for tp, m in self._models.items()}
        return [models[tp].iteration(*a) for tp, a in zip(self.tps, self.args, strict=True)]

    def _direct(self, params: ServingPerfParams) -> np.ndarray:
        return np.array([x.time_s for x in self._direct_costs(params)], dtype=np.float64)

    def _fast(self, p: ServingPerfParams) -> np.ndarray:
        ae = getattr(p, _ATTN, 0.0) or p.compute_efficiency
        compute = self.c / p.compute_efficiency + self.ca / ae
        t = roofline_s(compute, self.m / p.memory_efficiency, p.roofline_norm) + self.rest
        spill = self.spill and getattr(p, _SPILL_SIZE) > 0
        for key, coef in self.coef.items():
            v = getattr(p, key)
            if self.param_kinds[key] != "inverse":
                t = t + coef * v
            elif key == _COMM and spill:
                x = (self.msg / getattr(p, _SPILL_SIZE)) ** SPILL_EXPONENT
                phi = x / (1.0 + x)
                t = t + coef * ((1.0 - phi) / v + phi / getattr(p, _SPILL_EFF))
            else:
                t = t + coef / v
        return t

    def times(self, params: ServingPerfParams) -> np.ndarray:
        return self._fast(params) if self.exact else self._direct(params)

    def objective(self, params: ServingPerfParams) -> float:
        """Mean over prompt_time and token_time (those present) of their (weighted) MAPE, as a
        fraction."""
        err = np.abs(self.times(params) - self.measured) / self.measured * self.weight
        return float(np.sum(err) / len(self.kinds))

    def free_keys(self) -> list[str]:
        """The constants the fitting rows can determine: those that change some prediction and,
        for the additive ones, whose effect is not a multiple of earlier constants' (e.g. an
        all-reduce latency paid equally by every row is indistinguishable from the iteration
        overhead, so it keeps its base value); the cache spill only when the rows' all-reduce
        messages differ in size by 4x or more."""
        free = [k for k in _ROOF if np.any((self.c if k == _ROOF[0] else self.m) > 0)]
        if _ATTN in self.param_kinds and _ROOF[0] in free:
            # attention apart from the GEMMs only when its share of the compute varies enough
            share = self.ca / np.maximum(self.c + self.ca, 1e-300)
            if share.max() >= 0.02 and share.min() <= share.max() / 2.0:
                free.append(_ATTN)
        kept: list[np.ndarray] = []
        for key, coef in self.coef.items():
            scale = float(np.max(np.abs(coef))) if coef.size else 0.0
            if scale <= 0.0:
                continue
            if kept:
                basis = np.stack(kept, axis=1)
                sol, *_ = np.linalg.lstsq(basis, coef, rcond=None)
                if np.max(np.abs(basis @ sol - coef)) <= 1e-9 * scale:
                    continue
            kept.append(coef)
            free.append(key)
        if self.spill and _COMM in free:
            sizes = self.msg[np.abs(self.coef[_COMM]) > 0]
            if sizes.size and float(sizes.max()) >= 4.0 * float(sizes.min()):
                free += [_SPILL_SIZE, _SPILL_EFF]
        return free


# ----------------------------------------------------------------------------------------------
# Optimiser: bounded Nelder-Mead in log-space, deterministic.


def _nelder_mead(
    f: Callable[[np.ndarray], float],
    x0: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    step: float = 0.4,
    max_evals: int = 4000,
    xtol: float = 1e-7,
    ftol: float = 1e-11,
) -> tuple[np.ndarray, float, int]:
    n = x0.size
    alpha, gamma, rho, sigma = 1.0, 1.0 + 2.0 / n, 0.75 - 1.0 / (2.0 * n), 1.0 - 1.0 / n

    def clip(x: np.ndarray) -> np.ndarray:
        return np.minimum(np.maximum(x, lo), hi)

    simplex = [clip(x0)]
    for i in range(n):
        x = x0.copy()
        x[i] = x[i] + step if x[i] + step <= hi[i] else x[i] - step
        simplex.append(clip(x))
    values = [f(x) for x in simplex]
    evals = n + 1
    while evals < max_evals:
        order = np.argsort(values, kind="stable")
        simplex = [simplex[i] for i in order]
        values = [values[i] for i in order]
        spread_x = max(float(np.max(np.abs(x - simplex[0]))) for x in simplex[1:])
        if spread_x < xtol or values[-1] - values[0] < ftol:
            break
        centroid = np.mean(simplex[:-1], axis=0)
        xr = clip(centroid + alpha * (centroid - simplex[-1]))
        fr = f(xr)
        evals += 1
        if values[0] <= fr < values[-2]:
            simplex[-1], values[-1] = xr, fr
            continue
        if fr < values[0]:
            xe = clip(centroid + gamma * (xr - centroid))
            fe = f(xe)
            evals += 1
            simplex[-1], values[-1] = (xe, fe) if fe < fr else (xr, fr)
            continue
        if fr < values[-1]:
            xc = clip(centroid + rho * (xr - centroid))
        else:
            xc = clip(centroid + rho * (simplex[-1] - centroid))
        fc = f(xc)
        evals += 1
        if fc < min(fr, values[-1]):
            simplex[-1], values[-1] = xc, fc
            continue
        for i in range(1, n + 1):
            simplex[i] = clip(simplex[0] + sigma * (simplex[i] - simplex[0]))
            values[i] = f(simplex[i])
        evals += n
    best = int(np.argmin(values))
    return simplex[best], float(values[best]), evals


def _coordinate_polish(
    f: Callable[[np.ndarray], float], x: np.ndarray, fx: float, lo: np.ndarray, hi: np.ndarray
) -> tuple[np.ndarray, float, int]:
    evals = 0
    h = 0.2
    while h > 1e-6:
        improved = False
        for i in range(x.size):
            for sign in (1.0, -1.0):
                y = x.copy()
                y[i] = min(max(y[i] + sign * h, lo[i]), hi[i])
                if y[i] == x[i]:
                    continue
                fy = f(y)
                evals += 1
                if fy < fx:
                    x, fx, improved = y, fy, True
                    break
        if not improved:
            h /= 2.0
    return x, fx, evals


# Starting points besides the base constants (the optimiser keeps the best of all).
_STARTS: tuple[dict[str, float], ...] = (
    {
        "compute_efficiency": 0.6,
        "memory_efficiency": 0.9,
        "iteration_overhead_s": 5e-3,
        "prefill_overhead_s": 5e-3,
    },
    {
        "compute_efficiency": 0.2,
        "memory_efficiency": 0.4,
        "iteration_overhead_s": 5e-4,
        "prefill_overhead_s": 5e-2,
    },
)


def _fit(points: _Points, base: ServingPerfParams, keys: list[str]) -> tuple[ServingPerfParams, float, int]:
    if not keys:
        return base, points.objective(base), 1
    kinds = points.param_kinds
    bounds = [_bounds(k, kinds[k]) for k in keys]
    lo = np.log([b[0] for b in bounds])
    hi = np.log([b[1] for b in bounds])

    def params_of(x: np.ndarray) -> ServingPerfParams:
        values = {k: float(math.exp(v)) for k, v in zip(keys, x, strict=True)}
        if _ATTN in values:
            # attention kernels do not beat the dense GEMMs: attention_efficiency <= compute_efficiency
            values[_ATTN] = min(values[_ATTN], values.get(_ROOF[0], base.compute_efficiency))
        return replace(base, **values)

    def f(x: np.ndarray) -> float:
        return points.objective(params_of(x))

    def start(**values: float) -> np.ndarray:
        out = []
        for k, low, high in zip(keys, lo, hi, strict=True):
            v = values.get(k, getattr(base, k))
            if kinds[k] == "linear" and k not in values:
                v = v if v > 0 else 1e-3
            elif kinds[k] == "size" and k not in values:
                v = v if v > 0 else _BYTES_START
            elif kinds[k] == "attn" and k not in values:
                v = v if v > 0 else values.get(_ROOF[0], base.compute_efficiency)
            out.append(min(max(math.log(v), low), high))
        return np.array(out)

    starts = [start()] + [start(**{k: v for k, v in st.items() if k in kinds}) for st in _STARTS]
    best_x, best_f, evals = None, math.inf, 0
    for x0 in starts:
        x, fx, e = _nelder_mead(f, x0, lo, hi)
        evals += e
        for _ in range(6):  # restart from the best vertex until it stops improving (by 1e-4 points)
            x2, fx2, e = _nelder_mead(f, x, lo, hi, step=0.1)
            evals += e
            improved = fx2 < fx - 1e-6
            if fx2 < fx:
                x, fx = x2, fx2
            if not improved:
                break
        if fx < best_f - 1e-12:
            best_x, best_f = x, fx
    assert best_x is not None
    best_x, best_f, e = _coordinate_polish(f, best_x, best_f, lo, hi)
    evals += e
    params = params_of(best_x)
    # Seconds constants pinned at their lower bound mean "no such term": report them as 0.
    for k, v, low in zip(keys, best_x, lo, strict=True):
        if kinds[k] == "linear" and v <= low + 1e-9:
            trial = replace(params, **{k: 0.0})
            ft = points.objective(trial)
            evals += 1
            if ft <= best_f + 1e-12:
                params, best_f = trial, min(best_f, ft)
        # A cache size pinned at its upper bound means "no spill": report it as 0 (off).
        if kinds[k] == "size" and v >= math.log(_BYTES_BOUNDS[1]) - 1e-9:
            trial = replace(params, **{k: 0.0})
            ft = points.objective(trial)
            evals += 1
            if ft <= best_f + 1e-12:
                params, best_f = trial, min(best_f, ft)
    return params, best_f, evals


# ----------------------------------------------------------------------------------------------
# Calibration


@dataclass(frozen=True)
class RowPrediction:
    """A measured row, whether it was used for fitting, and the default and calibrated predictions."""

    row: Measurement
    fit: bool
    default_prompt_s: float
    default_token_s: float
    prompt_s: float
    token_s: float


@dataclass(frozen=True)
class CalibrationResult:
    """Fitted constants, per-row predictions and MAPEs (percent; ``None`` when no rows).

    ``mape[split][kind]`` and ``default_mape[split][kind]`` with ``split`` in ``fit``/``held_out``
    and ``kind`` in ``prompt``/``token``; ``mape_by_tp[tp][split][kind]`` likewise.
    """

    llm: str
    gpu: str
    source: str
    layout: str
    fit_rule: str
    tps: tuple[int, ...]
    base: ServingPerfParams
    params: ServingPerfParams
    fitted: tuple[str, ...]
    rows: tuple[RowPrediction, ...]
    dropped: tuple[tuple[Measurement, str], ...]
    mape: dict[str, dict[str, float | None]]
    default_mape: dict[str, dict[str, float | None]]
    mape_by_tp: dict[int, dict[str, dict[str, float | None]]] = field(default_factory=dict)
    objective_evals: int = 0
    # With ``per_tp``: the constants fitted on each degree's rows alone (the calibrated
    # predictions and MAPEs then use them), and the MAPEs of the one fit over every degree.
    params_by_tp: dict[int, ServingPerfParams] = field(default_factory=dict)
    joint_mape: dict[str, dict[str, float | None]] | None = None

    @property
    def n_fit(self) -> int:
        return sum(r.fit for r in self.rows)

    @property
    def n_held_out(self) -> int:
        return sum(not r.fit for r in self.rows)

    def meta(self) -> dict[str, Any]:
        """Metadata for the profile's ``[meta]`` table."""

        def clean(d: dict[str, dict[str, float | None]]) -> dict[str, Any]:
            return {
                f"{kind}_time_{split}": round(v, 3)
                for split, kinds in d.items()
                for kind, v in kinds.items()
                if v is not None
            }

        return {
            "model": self.llm,
            "gpu": self.gpu,
            "tp": list(self.tps),
            "source": self.source,
            "layout": self.layout,
            "fit_rows": self.fit_rule,
            "rows_fit": self.n_fit,
            "rows_held_out": self.n_held_out,
            "rows_dropped": len(self.dropped),
            "fitted": list(self.fitted),
            "objective": "mean of the prompt_time and token_time MAPEs on the fitting rows",
            "per_tp": bool(self.params_by_tp),
            "mape_percent": clean(self.mape),
            "default_mape_percent": clean(self.default_mape),
        }


def _resolver(catalog: Catalog, kind: str, aliases: dict[str, str]) -> Callable[[str], str | None]:
    cache: dict[str, str | None] = {}
    lookup = catalog.model if kind == "model" else catalog.gpu

    def resolve(name: str) -> str | None:
        if name not in cache:
            key = name.strip().lower()
            if key.endswith(_PCAP_SUFFIX) and key not in aliases:
                key = key[: -len(_PCAP_SUFFIX)]
            try:
                cache[name] = lookup(aliases.get(key, name)).name
            except KavierError:
                cache[name] = None
        return cache[name]

    return resolve


def _select(
    path: Path | str,
    rows: list[Measurement],
    llm: ModelSpec,
    gpu: GpuSpec,
    catalog: Catalog,
    include_power_capped: bool,
    tp: Sequence[int] | None,
    rows_model: str | None = None,
) -> list[Measurement]:
    model_of = _resolver(catalog, "model", SPLITWISE_MODELS)
    gpu_of = _resolver(catalog, "gpu", SPLITWISE_GPUS)
    names = {row.model for row in rows if row.model}
    if rows_model is not None:
        wanted = rows_model.strip().lower()
        if wanted not in {n.strip().lower() for n in names}:
            models = ", ".join(sorted(names))
            raise ScenarioError(
                f"{path}: --rows-model {rows_model!r} names no rows; the file's models: {models}"
            )

        def same_model(name: str | None) -> bool:
            return name is None or name.strip().lower() == wanted
    elif len(names) == 1 and model_of(next(iter(names))) != llm.name:
        # One model in the file, named otherwise than the model given (e.g. an HF config.json's
        # name against the file's "llama2-70b"): the file's rows are the model's.
        def same_model(name: str | None) -> bool:
            return True
    else:

        def same_model(name: str | None) -> bool:
            return name is None or model_of(name) == llm.name

    keep = []
    for row in rows:
        if not same_model(row.model):
            continue
        if row.hardware is not None:
            if row.hardware.strip().lower().endswith(_PCAP_SUFFIX) and not include_power_capped:
                continue
            if gpu_of(row.hardware) != gpu.name:
                continue
        if tp is not None and row.tp not in tp:
            continue
        keep.append(row)
    if not keep:
        seen = sorted({f"{r.model or '?'} on {r.hardware or '?'}" for r in rows})
        more = f" (tp {', '.join(map(str, tp))})" if tp else ""
        raise ScenarioError(
            f"{path}: no rows for {llm.name} on {gpu.name}{more}; the file holds {'; '.join(seen[:12])} "
            "(--rows-model NAME uses the rows of the model named NAME in the file)"
        )
    return keep


def _implausible(row: Measurement, llm: ModelSpec, gpu: GpuSpec) -> str | None:
    if row.prompt_time_s is not None:
        floor = 2.0 * llm.num_active_params * row.batch_size * row.prompt_size / (row.tp * gpu.flops_fp16)
        if row.prompt_time_s < floor:
            return (
                f"prefill {row.prompt_time_s * 1e3:.0f} ms is faster than {row.tp} GPUs' peak FLOP/s "
                f"allow ({floor * 1e3:.0f} ms)"
            )
    if row.e2e_time_s is not None and row.token_size and row.prompt_time_s and row.token_time_s:
        expected = row.prompt_time_s + row.token_size * row.token_time_s
        if row.e2e_time_s > _E2E_SLACK * expected:
            return (
                f"e2e_time {row.e2e_time_s:.1f} s is {row.e2e_time_s / expected:.1f}x prefill + "
                f"{row.token_size} decode steps (preempted or split run)"
            )
    return None


def _scores(
    rows: Sequence[Measurement], fit: np.ndarray, prompt: np.ndarray, token: np.ndarray
) -> dict[str, dict[str, float | None]]:
    mp = np.array([np.nan if r.prompt_time_s is None else r.prompt_time_s for r in rows], dtype=np.float64)
    mt = np.array([np.nan if r.token_time_s is None else r.token_time_s for r in rows], dtype=np.float64)
    out = {}
    for split, mask in (("fit", fit), ("held_out", ~fit)):
        out[split] = {
            "prompt": mape(prompt[mask], mp[mask]) if mask.any() else None,
            "token": mape(token[mask], mt[mask]) if mask.any() else None,
        }
    return out


def calibrate(
    csv_path: Path | str,
    llm: str | ModelSpec,
    gpu: str | GpuSpec,
    fit_filter: str | Callable[[Measurement], bool] | None = None,
    catalog: Catalog | None = None,
    *,
    base: ServingPerfParams | None = None,
    tp: Sequence[int] | None = None,
    include_power_capped: bool = False,
    drop_implausible: bool = True,
    weigh_repeats: bool = True,
    per_tp: bool = False,
    rows_model: str | None = None,
) -> CalibrationResult:
    """Fit the serving constants for ``llm`` on ``gpu`` to the measurements in ``csv_path``.

    ``fit_filter`` selects the fitting rows (default ``"batch_size<=8"``; a string of clauses or a
    callable taking a :class:`Measurement`); the remaining rows are held out and only scored.
    ``tp`` restricts the rows to some tensor-parallel degrees; rows that name a model are those of
    ``llm`` (by catalogue name or alias), or, when the file holds one model only, that model's
    whatever its name (an HF config.json's model against the file's ``llama2-70b``), or those of
    ``rows_model`` when given; ``base`` supplies the starting
    constants and the ones that are not fitted. With ``weigh_repeats`` (the default) the
    objective counts every measured configuration once (repeated rows of one configuration share
    its weight); without it every row counts once. With ``per_tp``, the constants are also fitted
    on each tensor-parallel degree's fitting rows alone (a profile per deployment, as one
    calibrates a serving engine for the parallelism it runs); the calibrated predictions and
    MAPEs then use each row's own degree's constants, and ``joint_mape`` keeps the one-fit MAPEs.
    """
    catalog = catalog or load_catalog()
    spec = llm if isinstance(llm, ModelSpec) else catalog.model(llm)
    hw = gpu if isinstance(gpu, GpuSpec) else catalog.gpu(gpu)
    base = base or ServingPerfParams()
    if fit_filter is None:
        fit_filter = DEFAULT_FIT_ROWS
    if isinstance(fit_filter, str):
        fit_rule = fit_filter
        predicate = parse_row_filter(fit_filter)
    else:
        fit_rule = getattr(fit_filter, "__name__", "custom filter")
        predicate = fit_filter
    layout, all_rows = read_measurements(csv_path)
    selected = _select(csv_path, all_rows, spec, hw, catalog, include_power_capped, tp, rows_model)
    rows, dropped = [], []
    for row in selected:
        reason = _implausible(row, spec, hw) if drop_implausible else None
        if reason:
            dropped.append((row, reason))
        else:
            rows.append(row)
    if not rows:
        raise ScenarioError(f"{csv_path}: every row for {spec.name} on {hw.name} was dropped as implausible")
    fit_mask = np.array([bool(predicate(r)) for r in rows])
    if not fit_mask.any():
        raise ScenarioError(
            f"{csv_path}: fit filter {fit_rule!r} matches none of the {len(rows)} rows "
            f"for {spec.name} on {hw.name}"
        )
    fit_rows = [r for r, f in zip(rows, fit_mask, strict=True) if f]
    points = _Points(fit_rows, spec, hw, base, weigh_repeats=weigh_repeats)
    keys = [k for k in FIT_KEYS if k in points.free_keys()]
    params, _, evals = _fit(points, base, keys)

    d_prompt, d_token = predict_rows(rows, spec, hw, base)
    c_prompt, c_token = predict_rows(rows, spec, hw, params)
    tps = tuple(sorted({r.tp for r in rows}))
    params_by_tp: dict[int, ServingPerfParams] = {}
    joint_mape = None
    if per_tp and len(tps) > 1:
        joint_mape = _scores(rows, fit_mask, c_prompt, c_token)
        c_prompt, c_token = c_prompt.copy(), c_token.copy()
        for t in tps:
            sel = np.array([r.tp == t for r in rows])
            degree_fit = [r for r, s, f in zip(rows, sel, fit_mask, strict=True) if s and f]
            if not degree_fit:  # nothing to fit this degree on: it keeps the joint constants
                continue
            degree_points = _Points(degree_fit, spec, hw, base, weigh_repeats=weigh_repeats)
            degree_keys = [k for k in FIT_KEYS if k in degree_points.free_keys()]
            params_by_tp[t], _, n = _fit(degree_points, base, degree_keys)
            evals += n
            sub = [r for r, s in zip(rows, sel, strict=True) if s]
            c_prompt[sel], c_token[sel] = predict_rows(sub, spec, hw, params_by_tp[t])
    by_tp = {}
    for t in tps:
        sel = np.array([r.tp == t for r in rows])
        sub = [r for r, s in zip(rows, sel, strict=True) if s]
        by_tp[t] = _scores(sub, fit_mask[sel], c_prompt[sel], c_token[sel])
    predictions = tuple(
        RowPrediction(r, bool(f), float(dp), float(dt), float(cp), float(ct))
        for r, f, dp, dt, cp, ct in zip(rows, fit_mask, d_prompt, d_token, c_prompt, c_token, strict=True)
    )
    return CalibrationResult(
        llm=spec.name,
        gpu=hw.name,
        source=str(csv_path),
        layout=layout,
        fit_rule=fit_rule,
        tps=tps,
        base=base,
        params=params,
        fitted=tuple(keys),
        rows=predictions,
        dropped=tuple(dropped),
        mape=_scores(rows, fit_mask, c_prompt, c_token),
        default_mape=_scores(rows, fit_mask, d_prompt, d_token),
        mape_by_tp=by_tp,
        objective_evals=evals,
        params_by_tp=params_by_tp,
        joint_mape=joint_mape,
    )


# ----------------------------------------------------------------------------------------------
# Reporting


def _pct(v: float | None) -> str:
    return "    -   " if v is None else f"{v:6.1f} %"


def _fmt_const(key: str, value: float) -> str:
    if value == 0:
        return "0"
    if key.endswith("_s"):
        return f"{value * 1e3:.4g} ms" if value >= 1e-4 else f"{value * 1e6:.4g} us"
    if key.endswith("_bytes"):
        return f"{value / 1e6:.4g} MB"
    return f"{value:.4g}"


def calibrate_report(result: CalibrationResult) -> str:
    """Lines describing a calibration: rows used, MAPEs before and after, fitted constants."""
    r = result
    tps = ", ".join(map(str, r.tps))
    lines = [
        f"calibrated {r.llm} on {r.gpu} (tp {tps}) from {r.source} ({r.layout} layout)",
        f"rows: {r.n_fit} fit ({r.fit_rule}), {r.n_held_out} held out, "
        f"{len(r.dropped)} dropped as implausible",
    ]
    for row, reason in r.dropped[:6]:
        lines.append(
            f"  dropped line {row.line} (tp {row.tp}, batch {row.batch_size}, "
            f"prompt {row.prompt_size}): {reason}"
        )
    if len(r.dropped) > 6:
        lines.append(f"  ... and {len(r.dropped) - 6} more")
    lines.append("MAPE                     prompt_time            token_time")
    lines.append("                       fit      held-out      fit      held-out")
    base_label = "defaults" if r.base == ServingPerfParams() else "base constants"
    scored = [(base_label, r.default_mape)]
    if r.joint_mape is not None:
        scored.append(("one fit, every tp", r.joint_mape))
    scored.append(("calibrated per tp" if r.params_by_tp else "calibrated", r.mape))
    for label, m in scored:
        lines.append(
            f"  {label:<18} {_pct(m['fit']['prompt'])}  {_pct(m['held_out']['prompt'])}"
            f"    {_pct(m['fit']['token'])}  {_pct(m['held_out']['token'])}"
        )
    for t, m in r.mape_by_tp.items():
        lines.append(
            f"  {'calibrated, tp ' + str(t):<18} {_pct(m['fit']['prompt'])}  {_pct(m['held_out']['prompt'])}"
            f"    {_pct(m['fit']['token'])}  {_pct(m['held_out']['token'])}"
        )
    lines.append("constants (default -> calibrated):")
    for key in FIT_KEYS:
        old, new = getattr(r.base, key), getattr(r.params, key)
        tag = "" if key in r.fitted else "  (not fitted: the rows cannot determine it)"
        lines.append(f"  {key:<22} {_fmt_const(key, old):>10} -> {_fmt_const(key, new):<10}{tag}".rstrip())
    if r.params_by_tp:
        degrees = sorted(r.params_by_tp)
        lines.append("constants fitted per tp (the profile's [tp.N] tables): " + ", ".join(map(str, degrees)))
        for key in FIT_KEYS:
            values = "  ".join(f"{_fmt_const(key, getattr(r.params_by_tp[t], key)):>10}" for t in degrees)
            lines.append(f"  {key:<22} {values}")
    return "\n".join(lines)


def calibrate_cli(
    csv_path: Path | str,
    llm: str,
    gpu: str,
    out: Path | str | None,
    fit_rows: str | None = None,
    per_tp: bool = False,
    rows_model: str | None = None,
) -> str:
    """What ``kavier calibrate MEASUREMENTS.csv --llm M --gpu G --out profile.toml`` prints.

    Fits, writes the profile to ``out`` (when given) and returns the report text.
    """
    result = calibrate(
        csv_path, llm, gpu, fit_filter=fit_rows or DEFAULT_FIT_ROWS, per_tp=per_tp, rows_model=rows_model
    )
    text = calibrate_report(result)
    if out is not None:
        write_profile(out, result.params, result.meta(), by_tp=result.params_by_tp)
        text += f"\nwrote {out} (load it with kavier.perf.profile.load_profile)"
    return text
