"""Fit the shipped profiles (``src/kavier/perf/profiles/vllm-v1/``) and their held-out variants.

Data (``../shared/data/measurements``, none shipped): the thesis's A10 tables (Llama-3-8B,
vLLM 0.9), Splitwise's batched prefill and decode steps (Llama-2-70B TP 2/4/8 and BLOOM-176B TP 8
on A100-80GB and H100-SXM) and the 42 ML.ENERGY v3 steady-state runs (Llama-3.1 8B/70B/405B on
H100-SXM, vLLM 0.11.1). Rows are iteration-level (``kavier.validate.fit_rows``; the ML.ENERGY
runs as the suite replays them: the replay's own iterations, re-timed, against the median ITL
and the seconds per output token); the objective is the mean over (suite, GPU, model) groups of
the mean absolute log error. No constant passes what measurements allow (``physical_bounds``):
the H100's compute efficiency and the all-reduce efficiency are held at OpenXLA's measured
shares, every other efficiency is at most its GPU's measured share, attention at most 0.75.

1. ``generic.toml``: every constant fitted on every row;
2. ``<GPU>.toml``: the generic constants with compute and memory efficiency and the per-iteration
   host time refitted on that GPU's rows;
3. ``held-out/gpu-<GPU>.toml``: every constant fitted without that GPU's rows, the efficiencies
   another measured GPU's scaled by the two GPUs' measured shares (what a user of an unmeasured
   GPU gets: ``kavier.perf.profiles.borrow``); ``held-out/model-<model>.toml``: without that
   model's rows;
4. the power model's active floor and memory weight, fitted on the measured mean powers (the
   ML.ENERGY rows, summed over GPUs there, and Splitwise's A100 rows), and the same without each GPU.

Then every suite of ``kavier validate`` is replayed end to end with the shipped profiles
(fitted), with each GPU's leave-one-GPU-out profile (held out by GPU) and with each model's
leave-one-model-out profile (held out by model); the held-out residuals go into each profile's
``[meta.validation]`` (per metric, MAPE % and count, fitted / held out by GPU / by model), and
the held-out-by-GPU residuals make each engine's ``bands.toml`` (the uncertainty bands of a run's
summary). Deterministic; ~25 min on 2 cores.

    python benchmarks/fit_profiles.py            # fit, write the profiles, print the errors
    python benchmarks/fit_profiles.py --no-write # fit and print only
    python benchmarks/fit_profiles.py --from-fit # no fitting: rewrite the profiles from fit.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, SHARED_DATA, machine_lines, use_repo_source  # noqa: E402

use_repo_source()

from kavier.perf.fitting import Predictor, constants_for, fit, fit_power, predict_power  # noqa: E402
from kavier.perf.profile import profile_text  # noqa: E402
from kavier.perf.roofline import ServingPerfParams  # noqa: E402
from kavier.validate.fit_rows import power_rows, timing_rows  # noqa: E402

PROFILE_ROOT = REPO / "src" / "kavier" / "perf" / "profiles"
SHARED = (
    "compute_saturation_tokens",
    "attention_efficiency",
    "comm_efficiency",
    "comm_latency_s",
    "roofline_norm",
)
PER_GPU = ("compute_efficiency", "memory_efficiency")
PER_ENGINE = ("iteration_overhead_s", "decode_seq_overhead_s", "prefill_seq_overhead_s")
ENGINES = ("vllm-v1", "vllm-v0")
# For a GPU held out: whose efficiencies stand in, by the rule of Kavier's fallback for an
# unmeasured GPU (kavier.perf.profiles.NEAREST): the same architecture if one was measured, else
# the nearest GPU of the same memory class (HBM datacentre parts, GDDR PCIe cards).
NEIGHBOUR = {
    "A10": "A100-80GB",  # same architecture (Ampere)
    "A100-80GB": "H100-SXM",  # no other Ampere HBM part measured: nearest HBM datacentre GPU
    "H100-SXM": "A100-80GB",  # no other Hopper measured: nearest HBM datacentre GPU
}
BASE = ServingPerfParams(
    compute_efficiency=0.6,
    memory_efficiency=0.8,
    prefill_overhead_s=0.0,
    iteration_overhead_s=1e-3,
    decode_seq_overhead_s=1e-5,
    prefill_seq_overhead_s=1e-4,
    attention_efficiency=0.4,
    comm_efficiency=0.6,
    comm_latency_s=1e-5,
    compute_saturation_tokens=64.0,
    roofline_norm=4.0,
)


def slots_for(rows, shared_gpu: bool = False):
    gpus = sorted({r.gpu for r in rows})
    engines = sorted({r.engine for r in rows})
    slots = [(k, "") for k in SHARED]
    slots += [(k, "") for k in PER_GPU] if shared_gpu else [(k, f"gpu={g}") for g in gpus for k in PER_GPU]
    slots += [(k, f"engine={e}") for e in engines for k in PER_ENGINE]
    return slots


# What measurements allow, per fitted constant. Held, not fitted: the two constants that the
# never-fitted kernel suites check (xla-gemm, xla-collectives), at the same public tables'
# values (OpenXLA): the H100's compute efficiency at its BF16 4096^3 GEMM share
# (gemm_peak_fraction, 0.789) and the all-reduce efficiency at NCCL's 2 GiB 8-GPU share of
# NVLink's bus bandwidth (allreduce_link_fraction, 0.894). Bounded above: every other GPU's
# compute and memory efficiency by the share of its datasheet peak that its own published
# microbenchmark reaches (the library's gemm_peak_fraction, memory_bandwidth_fraction), and the
# attention kernels by the best published FlashAttention forward share (FA3 75 % of an H100's
# peak, arXiv:2407.08608; FA2 73 % of an A100's, arXiv:2307.08691).
ATTENTION_MAX = 0.75
SHARE_OF = {"compute_efficiency": "gemm_peak_fraction", "memory_efficiency": "memory_bandwidth_fraction"}
HELD_AT_MEASURED = {("compute_efficiency", "gpu=H100-SXM"), ("comm_efficiency", "")}


def physical_bounds(slots) -> dict:
    """Each slot's range narrowed to what measurements allow (a held constant: one value)."""
    from kavier.library.catalog import load_catalog
    from kavier.perf.fitting import BOUNDS

    catalog = load_catalog()
    h100 = catalog.gpu("H100-SXM")
    out = {}
    for key, where in slots:
        low, high = BOUNDS[key]
        if (key, where) in HELD_AT_MEASURED:
            value = h100.allreduce_link_fraction if key == "comm_efficiency" else h100.gemm_peak_fraction
            out[key, where] = (value, value)
        elif key == "attention_efficiency":
            out[key, where] = (low, min(high, ATTENTION_MAX))
        elif key in SHARE_OF and where.startswith("gpu="):
            share = getattr(catalog.gpu(where.removeprefix("gpu=")), SHARE_OF[key], 0.0)
            if share > 0:
                out[key, where] = (low, min(high, share))
    return out


def fit_set(rows, label: str, shared_gpu: bool = False, start=None):
    t0 = time.perf_counter()
    slots = slots_for(rows, shared_gpu)
    # Held-out fits start from the neutral base constants (one start), never from a fit that saw
    # the held-out rows.
    begin = {s: getattr(BASE, s[0]) for s in slots} if start == "base" else None
    # (fit clips every start into the bounds)
    values, objective = fit(Predictor(rows), BASE, slots, start=begin, bounds=physical_bounds(slots))
    print(
        f"  {label}: {len(rows)} rows, mean |log error| {objective:.4f} ({time.perf_counter() - t0:.0f} s)",
        flush=True,
    )
    return values


def profile_params(values, gpu: str, engine: str, gpu_values_from: str | None = None) -> ServingPerfParams:
    """The constants a replica of ``gpu`` under ``engine`` gets (another GPU's efficiencies when
    ``gpu_values_from`` is given; an engine without data takes the other engine's overheads)."""
    source_gpu = gpu_values_from or gpu
    engines = {where for _, where in values if where.startswith("engine=")}
    eng = engine if f"engine={engine}" in engines else sorted(engines)[0].removeprefix("engine=")
    return constants_for(BASE, values, source_gpu, eng)


def write(path: Path, params: ServingPerfParams, meta: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(profile_text(params, meta))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument(
        "--bands-only", action="store_true", help="recompute bands.toml from the written profiles"
    )
    ap.add_argument(
        "--from-fit",
        action="store_true",
        help="take the fitted constants from the shipped fit.json (no fitting): rewrite the profiles, "
        "held-out profiles and bands from them",
    )
    args = ap.parse_args()
    if args.bands_only:
        write_bands()
        return 0
    if not (SHARED_DATA / "measurements").is_dir():
        print(f"SKIPPED: {SHARED_DATA / 'measurements'} not found")
        return 0
    for line in machine_lines():
        print(line)
    rows = timing_rows(SHARED_DATA)
    gpus = sorted({r.gpu for r in rows})
    models = sorted({r.model for r in rows})
    print(
        f"{len(rows)} timing rows, GPUs {gpus}, models {models}, engines {sorted({r.engine for r in rows})}"
    )
    if args.from_fit:
        return rewrite_from_fit(gpus, models)
    fitted = fit_set(rows, "all rows, efficiencies per GPU")
    generic = fit_set(rows, "all rows, one set of efficiencies", shared_gpu=True)
    held_gpu = {g: fit_set([r for r in rows if r.gpu != g], f"without {g}", start="base") for g in gpus}
    held_model = {m: fit_set([r for r in rows if r.model != m], f"without {m}", start="base") for m in models}

    own = {(g, e): profile_params(fitted, g, e) for g in gpus for e in ENGINES}
    power = power_rows(own, SHARED_DATA)
    floor, cweight, weight, pobj = fit_power(power)
    print(
        f"power: active floor {floor:.3f}, compute weight {cweight:.3f}, memory weight {weight:.3f}, "
        f"mean |log error| {pobj:.4f}"
    )
    power_held = {}
    for g in sorted({r.group[1] for r in power}):
        rest = [r for r in power if r.group[1] != g]
        if rest:
            f, wc, w, _ = fit_power(rest)
            mine = [r for r in power if r.group[1] == g]
            pred = predict_power(mine, f, wc, w)
            err = [p / r.measured_w - 1 for p, r in zip(pred, mine, strict=True)]
            mape = 100 * sum(abs(e) for e in err) / len(err)
            power_held[g] = {"floor": f, "compute_weight": wc, "memory_weight": w, "mape_pct": mape}
            print(
                f"  power without {g}: floor {f:.3f}, weights {wc:.3f} / {w:.3f}; on {g}: MAPE {mape:.1f} %"
            )

    def table(values):
        return {f"{k}@{w or '*'}": v for (k, w), v in values.items()}

    summary = {
        "fitted": table(fitted),
        "generic": table(generic),
        "held_out_gpu": {g: table(v) for g, v in held_gpu.items()},
        "held_out_model": {m: table(v) for m, v in held_model.items()},
        "power": {
            "active_floor": floor,
            "compute_weight": cweight,
            "memory_weight": weight,
            "held_out_gpu": power_held,
        },
    }
    print(json.dumps(summary, indent=1))
    if args.no_write:
        return 0
    write_profiles(gpus, models, fitted, generic, held_gpu, held_model)
    (PROFILE_ROOT / "fit.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(f"wrote {PROFILE_ROOT}")
    write_bands()
    return 0


def rewrite_from_fit(gpus, models) -> int:
    """The profiles, held-out profiles and bands from the constants of the shipped fit.json."""

    def untable(table):
        return {
            (k.split("@")[0], "" if k.split("@")[1] == "*" else k.split("@")[1]): v for k, v in table.items()
        }

    summary = json.loads((PROFILE_ROOT / "fit.json").read_text())
    write_profiles(
        gpus,
        models,
        untable(summary["fitted"]),
        untable(summary["generic"]),
        {g: untable(v) for g, v in summary["held_out_gpu"].items()},
        {m: untable(v) for m, v in summary["held_out_model"].items()},
    )
    print(f"rewrote {PROFILE_ROOT} from fit.json")
    write_bands()
    return 0


def held_out_gpu_params(values, gpu: str, engine: str) -> tuple[ServingPerfParams, str]:
    """A held-out GPU's constants: ``NEIGHBOUR[gpu]``'s efficiencies in a fit without the GPU's
    rows, scaled by the two GPUs' measured shares as Kavier's fallback scales a borrowed profile
    (:func:`kavier.perf.profiles.borrow`), and the ``[meta] held_out`` text saying so."""
    from kavier.perf.profiles import borrow_named

    donor = NEIGHBOUR[gpu]
    params, clause = borrow_named(profile_params(values, gpu, engine, donor), gpu, donor)
    return params, f"every {gpu} row; {donor}'s efficiencies stand in{clause}"


def held_out_model_params(values, gpu: str, engine: str, model: str) -> tuple[ServingPerfParams, str]:
    """A GPU's constants in the fit without ``model``'s rows, and the ``[meta] held_out`` text.

    A GPU none of whose rows are left (the A10, whose only rows are Llama-3-8B's) has no
    efficiencies of its own in that fit: it gets what a user of an unmeasured GPU gets, the
    neighbour's scaled by the measured shares (:func:`held_out_gpu_params`), not the fit's
    neutral starting values."""
    if any(where == f"gpu={gpu}" for _, where in values):
        return profile_params(values, gpu, engine), f"every {model} row"
    params, clause = held_out_gpu_params(values, gpu, engine)
    return params, f"every {model} row, so every {gpu} row: {clause.removeprefix(f'every {gpu} row; ')}"


def write_profiles(gpus, models, fitted, generic, held_gpu, held_model) -> None:
    """Every engine's generic, per-GPU and held-out profiles from the fitted slot values."""
    source = (
        "benchmarks/fit_profiles.py on ../shared/data/measurements: the thesis's A10 tables (vLLM 0.9), "
        "Splitwise perf_model.csv (A100-80GB, H100-SXM; vLLM V0 era), ML.ENERGY v3 H100 rows (vLLM 0.11.1)"
    )
    for engine in ENGINES:
        folder = PROFILE_ROOT / engine
        write(
            folder / "generic.toml",
            profile_params(generic, "*", engine),
            {"fitted_on": "every GPU and model, one set of efficiencies", "source": source},
        )
        for g in gpus:
            write(
                folder / f"{g}.toml",
                profile_params(fitted, g, engine),
                {"gpu": g, "engine": engine, "source": source},
            )
            params, held_out = held_out_gpu_params(held_gpu[g], g, engine)
            write(
                folder / "held-out" / f"gpu-{g}.toml",
                params,
                {"held_out": held_out, "engine": engine, "source": source},
            )
            for m in models:
                params, held_out = held_out_model_params(held_model[m], g, engine, m)
                write(
                    folder / "held-out" / f"model-{m}" / f"{g}.toml",
                    params,
                    {"held_out": held_out, "gpu": g, "engine": engine, "source": source},
                )


# Validation metrics -> the band class their residuals measure (kavier.perf.profiles.BAND_KEYS).
BAND_OF = {
    "ttft_s": "ttft",
    "prefill_s": "ttft",
    "tpot_s": "tpot",
    "itl_s": "tpot",
    "decode_step_s": "tpot",
    "e2e_s": "e2e",
    "output_tokens_per_s": "throughput",
    "j_per_output_token": "energy",
    "avg_power_w": "power",
    "avg_power_fraction": "power",
}


def write_bands() -> None:
    """Replay every suite held out by GPU; the 10th/90th percentiles of predicted / measured - 1
    per band class become each engine's bands.toml."""
    import numpy as np

    from kavier.validate.splits import HELD_OUT_GPU, SPLITS
    from kavier.validate.suites import SUITES

    residuals: dict[str, list[float]] = {}
    for suite in SUITES.values():
        if not suite.split_by_profile or not suite.feeds_profiles:
            continue
        for c in suite.run(SHARED_DATA, split=HELD_OUT_GPU, profile_for=SPLITS[HELD_OUT_GPU]):
            band = BAND_OF.get(c.metric)
            if band is not None and c.measured > 0 and np.isfinite(c.predicted):
                residuals.setdefault(band, []).append(c.predicted / c.measured - 1.0)
    lines = [
        "# 80 % bands of Kavier's predictions: the 10th and 90th percentiles of predicted / measured - 1",
        "# over every held-out-by-GPU replay of kavier validate (benchmarks/fit_profiles.py).",
    ]
    for band, values in sorted(residuals.items()):
        q10, q90 = (float(v) for v in np.percentile(values, [10, 90]))
        lines += ["", f"[{band}]", f"q10 = {q10!r}", f"q90 = {q90!r}", f"n = {len(values)}"]
        print(f"band {band}: q10 {q10:+.3f}, q90 {q90:+.3f} ({len(values)} held-out comparisons)")
    for engine in ENGINES:
        (PROFILE_ROOT / engine / "bands.toml").write_text("\n".join(lines) + "\n")
    write_validation_meta()


# The engine each suite replays with (the Splitwise rows are of a vLLM V0-era engine).
SUITE_ENGINE = {"splitwise": "vllm-v0"}


def write_validation_meta() -> None:
    """Each shipped ``<engine>/<GPU>.toml`` gets ``[meta.validation]``: per metric, the MAPE (%)
    and the number of comparisons of kavier validate's replays on that GPU, fitted, held out by
    GPU (a profile fitted without the GPU's rows), held out by model, and held out with the
    shipped profile (``held_out_shipped``: the suites no constant was fitted on)."""
    import tomllib

    from kavier.perf.profile import load_profile
    from kavier.validate.compare import FITTED, SHIPPED_HELD_OUT
    from kavier.validate.splits import HELD_OUT_GPU, HELD_OUT_MODEL, SPLITS
    from kavier.validate.suites import SUITES

    errors: dict[tuple[str, str], dict[str, dict[str, list[float]]]] = {}
    for split, label in (
        (FITTED, "fitted"),
        (HELD_OUT_GPU, "held_out_gpu"),
        (HELD_OUT_MODEL, "held_out_model"),
    ):
        for suite in SUITES.values():
            if not suite.split_by_profile or not suite.feeds_profiles:
                continue
            engine = SUITE_ENGINE.get(suite.name, "vllm-v1")
            for c in suite.run(SHARED_DATA, split=split, profile_for=SPLITS[split]):
                if c.measured > 0:
                    # a suite no constant was fitted on is held out even with the shipped profiles
                    where = "held_out_shipped" if c.split == SHIPPED_HELD_OUT else label
                    table = errors.setdefault((engine, c.gpu), {}).setdefault(where, {})
                    table.setdefault(f"{suite.name}.{c.metric}", []).append(abs(c.predicted / c.measured - 1))
    for (engine, gpu), by_split in sorted(errors.items()):
        path = PROFILE_ROOT / engine / f"{gpu}.toml"
        if not path.is_file():
            continue
        params = load_profile(path)
        meta = tomllib.loads(path.read_text(encoding="utf-8")).get("meta", {})
        meta["validation"] = {
            "what": "MAPE % of kavier validate's end-to-end replays on this GPU, and their number",
            **{
                label: {key: [round(100 * sum(v) / len(v), 1), len(v)] for key, v in sorted(table.items())}
                for label, table in by_split.items()
            },
        }
        path.write_text(profile_text(params, meta))
        print(f"{path.relative_to(REPO)}: [meta.validation] written")


if __name__ == "__main__":
    sys.exit(main())
