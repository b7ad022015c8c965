"""The measurements of the validation suites as fitting rows (:mod:`kavier.perf.fitting`).

Each suite's measurements become iteration-level rows the fitter predicts in closed form:
Splitwise's batched prefill and decode step as one iteration each; the thesis's A10 prefill as
one prefill iteration and its request latency as a prefill plus ``n - 1`` decode steps at the
mean context; ML.ENERGY's runs as the suite replays them (:func:`mlenergy_replay_rows`): the
replay's own iterations, re-timed, against the median ITL and the steady-state seconds per output
token. Power rows pair each measured mean power with the compute and memory busy shares of one
iteration of the steady-state batch (``avg_batch`` decoding sequences at the mean context, plus
the prefill tokens that join per iteration on average, ``avg_batch x 224 / avg_output_len``)
under the timing constants.
"""

from __future__ import annotations

from pathlib import Path

from kavier.library.catalog import load_catalog
from kavier.perf.fitting import FitRow, PowerRow, chunked_prefill, decode, mixed, prefill
from kavier.perf.roofline import ServingPerfModel, ServingPerfParams
from kavier.validate import mlenergy, splitwise
from kavier.validate.thesis_a10 import DECODE_MEDIANS, DECODE_PROMPT_TOKENS, PREFILL_MEDIANS

# vLLM's token budget on GPUs of less than 70 GiB (docs/engines.md): the A10's long prompts
# are prefilled in chunks of this many tokens.
A10_BUDGET = 2048


def a10_rows() -> list[FitRow]:
    """The thesis's A10 tables (Llama-3-8B, batch 1)."""
    rows = []
    group = ("a10-vllm", "A10", "Llama-3-8B")
    for p, measured in PREFILL_MEDIANS:
        parts = chunked_prefill(p, A10_BUDGET)
        rows.append(FitRow(group, "A10", "Llama-3-8B", 1, "bf16", parts, measured, f"prefill {p}"))
    for _, n, measured in DECODE_MEDIANS:
        parts = (
            (1.0, prefill(1, DECODE_PROMPT_TOKENS)),
            (n - 1.0, decode(1, DECODE_PROMPT_TOKENS + n / 2.0)),
        )
        rows.append(
            FitRow(
                ("a10-vllm", "A10", "Llama-3-8B"),
                "A10",
                "Llama-3-8B",
                1,
                "bf16",
                parts,
                measured,
                f"output {n}",
            )
        )
    return rows


# The Splitwise profiles were measured with the vLLM of 2023 (V0 era): its host-side overheads.
SPLITWISE_ENGINE = "vllm-v0"


def splitwise_rows(data: str | Path | None = None) -> list[FitRow]:
    """Splitwise's batched prefill and decode steps (median per configuration)."""
    from kavier.validate.data import find

    path = find(splitwise.FILE, data)
    if path is None:
        return []
    rows = []
    for (model, gpu, tp, p, b, t), m in splitwise.configurations(path).items():
        group = ("splitwise", gpu, model)
        label = f"tp{tp} batch {b} prompt {p} out {t}"
        pre = ((1.0, prefill(b, p)),)
        dec = ((1.0, decode(b, p + t / 2.0)),)
        rows.append(
            FitRow(group, gpu, model, tp, "bf16", pre, m["prefill_s"], "prefill " + label, SPLITWISE_ENGINE)
        )
        rows.append(
            FitRow(
                group, gpu, model, tp, "bf16", dec, m["decode_step_s"], "decode " + label, SPLITWISE_ENGINE
            )
        )
    return rows


def _mlenergy_iteration(row: dict[str, str]) -> tuple[float, tuple]:
    batch = float(row["avg_batch"])
    out = float(row["avg_output_len"])
    prompt = float(mlenergy.MEAN_INPUT_TOKENS)
    it = mixed(batch, prompt + out / 2.0, batch * prompt / out, prompt)
    return batch, it


# Iterations of a replay's steady-state window kept per row (sampled in proportion to time).
WINDOW_SAMPLES = 48


def mlenergy_replay_rows(data: str | Path | None = None, samples: int = WINDOW_SAMPLES) -> list[FitRow]:
    """ML.ENERGY's rows as the suite replays them (the shipped profile), two per run, whose
    iterations are the replay's own (their compositions held fixed, their times re-predicted):

    - the median ITL: the iteration at the median of every gap of the run (each iteration of
      ``d`` decoding sequences is ``d`` gaps of its step time; ramp-up and ramp-down included,
      as the benchmark pools them);
    - seconds per output token over the steady-state window (``1 / output_tokens_per_s``): the
      window's iterations, ``samples`` of them drawn in proportion to their time, over the
      output tokens the replay emitted in the window.
    """
    import numpy as np

    from kavier.engine.replica import ITERATION_LOG
    from kavier.validate.data import find

    path = find(mlenergy.FILE, data)
    if path is None:
        return []
    rows = []
    catalog = load_catalog()
    for row in mlenergy.rows(path):
        scen = mlenergy.scenario_of(row)
        max_seqs = int(row["max_num_seqs"])
        log: list = []
        token = ITERATION_LOG.set(log)
        try:
            result = mlenergy.simulate_run(row)
        finally:
            ITERATION_LOG.reset(token)
        span = mlenergy.window(result, max_seqs)
        if span is None or not log:
            continue
        group = ("mlenergy-h100", "H100-SXM", mlenergy.architecture_of(row))
        label = f"{row['model']} max_num_seqs {row['max_num_seqs']}"
        llm = catalog.model(scen["llm"]).name
        step_s = np.array([(t1 - t0) / k for t0, t1, _, k in log])
        gaps = np.array([args[3] * k for _, _, args, k in log], dtype=np.float64)
        order = np.argsort(step_s, kind="stable")
        cumulative = np.cumsum(gaps[order])
        median = order[int(np.searchsorted(cumulative, cumulative[-1] / 2.0))]
        itl = FitRow(
            group,
            "H100-SXM",
            group[2],
            scen["tp"],
            scen["weight_dtype"],
            ((1.0, log[median][2]),),
            float(row["median_itl_ms"]) / 1e3,
            label + " itl",
            llm=llm,
        )
        rows.append(itl)
        t0w, t1w = span
        inside = [e for e in log if e[0] >= t0w and e[1] <= t1w]
        tokens = mlenergy.window_tokens(result, t0w, t1w)
        if not inside or tokens <= 0:
            continue
        # Sampled in proportion to time (at evenly spaced points of the window's cumulative
        # time), each sample weighted by 1 / its step time: the row predicts the replay's
        # seconds per output token times the mean ratio of new to replayed step times, exactly
        # the replay's figure under the constants it ran with.
        span_s = np.array([t1 - t0 for t0, t1, _, _ in inside])
        at = (np.arange(samples) + 0.5) / samples * span_s.sum()
        pick = np.minimum(np.searchsorted(np.cumsum(span_s), at), len(inside) - 1)
        per_token_s = (t1w - t0w) / tokens
        parts = tuple(
            (per_token_s / (samples * (inside[i][1] - inside[i][0]) / inside[i][3]), inside[i][2])
            for i in pick
        )
        per_token = FitRow(
            group,
            "H100-SXM",
            group[2],
            scen["tp"],
            scen["weight_dtype"],
            parts,
            1.0 / float(row["output_tok_s"]),
            label + " s per output token",
            llm=llm,
        )
        rows.append(per_token)
    return rows


def timing_rows(data: str | Path | None = None) -> list[FitRow]:
    """Every suite's timing rows."""
    return a10_rows() + splitwise_rows(data) + mlenergy_replay_rows(data)


def _shares(model: ServingPerfModel, it: tuple) -> tuple[float, float, float]:
    """(seconds, MFU, MBU) of one iteration: the activity the power model is fed, as a run's
    serving backend feeds it (kavier.events.Activity.mfu, .mbu)."""
    cost = model.iteration(*it)
    gpus = model.tp * model.pp
    mfu = cost.flops / (gpus * model.flops * cost.time_s)
    mbu = cost.bytes / (gpus * model.gpu.memory_bandwidth * cost.time_s)
    return cost.time_s, min(1.0, mfu), min(1.0, mbu)


# Splitwise's 8,192-token rows report an average power of 0.17-0.18 of the maximum at every
# tensor-parallel degree, against 0.39-0.68 for 4,096 tokens and a peak of 1.0: an averaging
# window longer than the run. Such rows (average < 30 % of the row's own peak) are left out.
MIN_AVERAGE_OF_PEAK = 0.3


def power_rows(
    params_for: dict[tuple[str, str], ServingPerfParams], data: str | Path | None = None
) -> list[PowerRow]:
    """Measured mean power per GPU with the iterations' busy shares under
    ``params_for[gpu, engine]`` (the engine of the measurement)."""
    from kavier.library.catalog import load_catalog
    from kavier.validate.data import find

    catalog = load_catalog()
    rows: list[PowerRow] = []
    path = find(mlenergy.FILE, data)
    for row in mlenergy.rows(path) if path else []:
        scen = mlenergy.scenario_of(row)
        gpu = catalog.gpu("H100-SXM")
        model = ServingPerfModel(
            catalog.model(scen["llm"]),
            gpu,
            params_for["H100-SXM", "vllm-v1"],
            tp=scen["tp"],
            weight_dtype=scen["weight_dtype"],
        )
        _, it = _mlenergy_iteration(row)
        per_gpu = float(row["avg_power_w"]) / scen["tp"]
        group = ("mlenergy-h100", "H100-SXM", mlenergy.architecture_of(row))
        rows.append(PowerRow(group, gpu.idle_power_w, gpu.max_power_w, (_shares(model, it),), per_gpu))
    path = find(splitwise.FILE, data)
    for (name, gpu_name, tp, p, b, t), m in (splitwise.configurations(path) if path else {}).items():
        if (
            m["avg_power_fraction"] <= 0
            or m["avg_power_fraction"] < MIN_AVERAGE_OF_PEAK * m["peak_power_fraction"]
        ):
            continue
        gpu = catalog.gpu(gpu_name)
        model = ServingPerfModel(catalog.model(name), gpu, params_for[gpu_name, SPLITWISE_ENGINE], tp=tp)
        pre = _shares(model, prefill(b, p))
        dec = _shares(model, decode(b, p + t / 2.0))
        parts = (pre, (dec[0] * (t - 1), dec[1], dec[2]))
        measured = m["avg_power_fraction"] * gpu.max_power_w
        rows.append(
            PowerRow(("splitwise", gpu_name, name), gpu.idle_power_w, gpu.max_power_w, parts, measured)
        )
    return rows
