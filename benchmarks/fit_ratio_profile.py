"""Fit a GPU's serving profile from public throughput ratios to the H100 (suite ``trtllm-gpus``).

For a GPU that Kavier has no vLLM measurements of, but which NVIDIA's TensorRT-LLM performance
overview measured beside the H100-SXM (same model, dtype, lengths and TP), the ratio of the two
throughputs says how much faster or slower the GPU is under one engine and one load. This
script fits the GPU's own constants to those ratios, with the H100-SXM side on its shipped
profile and every other constant taken from the GPU's fallback profile (its nearest
architecture's: what the GPU gets today):

1. ``compute_efficiency`` and ``memory_efficiency`` on the TP 1 pairs (grid, then refined);
2. ``comm_efficiency`` and ``comm_latency_s`` (the all-reduce over the GPU's link) on the
   TP > 1 pairs, the efficiencies fixed;

minimising the mean absolute log error of the ratio. Leave-one-model-out refits give the
held-out error by model; the held-out error by GPU is the fallback's (nothing of the GPU fitted:
the nearest GPU's profile, its efficiencies scaled by the two GPUs' measured shares).
Writes ``src/kavier/perf/profiles/<engine>/<GPU>.toml`` for both engines (the engine's own host
times, these efficiencies and link constants; ``[meta] fitted_on_suite = "trtllm-gpus"``),
``held-out/gpu-<GPU>.toml`` (the fallback), so that ``kavier validate``'s held-out-by-GPU split
keeps replaying what an unmeasured GPU gets, and ``held-out/model-<model>/<GPU>.toml`` (the
leave-one-model-out fits) for its held-out-by-model split.

    python benchmarks/fit_ratio_profile.py --gpu L40S            # fit, print, write
    python benchmarks/fit_ratio_profile.py --gpu L40S --no-write # fit and print only
    python benchmarks/fit_ratio_profile.py --gpu L40S --fallback-only # rewrite the fallback only
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, machine_lines, use_repo_source  # noqa: E402

use_repo_source()

from kavier.perf.profile import load_profile, profile_text  # noqa: E402
from kavier.perf.profiles import shipped_profile  # noqa: E402
from kavier.perf.roofline import ServingPerfParams  # noqa: E402
from kavier.validate import trtllm_gpus  # noqa: E402

PROFILE_ROOT = REPO / "src" / "kavier" / "perf" / "profiles"
ENGINES = ("vllm-v1", "vllm-v0")
EFFICIENCY_GRID = [0.25, 0.35, 0.45, 0.55, 0.65, 0.8]
COMM_EFFICIENCY_GRID = [0.05, 0.1, 0.2, 0.35, 0.6, 0.9]
COMM_LATENCY_GRID_S = [5e-6, 2e-5, 5e-5, 1e-4, 2e-4, 4e-4]


class Objective:
    """Mean |log(predicted / measured)| of the GPU's ratio pairs under given constants."""

    def __init__(self, pairs, folder: Path) -> None:
        self.pairs = pairs
        self.folder = folder
        self.calls = 0

    def errors(self, params: ServingPerfParams, pairs=None) -> list[tuple[object, float]]:
        self.calls += 1
        path = self.folder / f"p{self.calls}.toml"
        path.write_text(profile_text(params))
        out = []
        for p in pairs if pairs is not None else self.pairs:
            other = trtllm_gpus.replay(p.other, str(path))
            reference = trtllm_gpus.replay(p.reference, None)
            if other is None or reference is None:
                continue
            out.append((p, math.log((other[0] / reference[0]) / p.measured_ratio)))
        return out

    def __call__(self, params: ServingPerfParams, pairs=None) -> float:
        errors = self.errors(params, pairs)
        return sum(abs(e) for _, e in errors) / max(len(errors), 1)


def search(objective: Objective, start: ServingPerfParams, keys, grids, pairs) -> ServingPerfParams:
    """The grid point of lowest error, then each key refined between its grid neighbours."""
    best, best_err = start, math.inf
    for values in itertools.product(*grids):
        trial = replace(start, **dict(zip(keys, values, strict=True)))
        err = objective(trial, pairs)
        if err < best_err:
            best, best_err = trial, err
    for _ in range(1):  # one round of golden-section refinement per key
        for key, grid in zip(keys, grids, strict=True):
            value = getattr(best, key)
            i = min(range(len(grid)), key=lambda j: abs(grid[j] - value))
            lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)]
            for _ in range(4):
                a, b = lo + 0.382 * (hi - lo), lo + 0.618 * (hi - lo)
                ea = objective(replace(best, **{key: a}), pairs)
                eb = objective(replace(best, **{key: b}), pairs)
                lo, hi = (lo, b) if ea <= eb else (a, hi)
            mid = (lo + hi) / 2
            if objective(replace(best, **{key: mid}), pairs) < objective(best, pairs):
                best = replace(best, **{key: mid})
    return best


def fit(objective: Objective, pairs, base: ServingPerfParams) -> ServingPerfParams:
    tp1 = [p for p in pairs if p.other.tp == 1]
    multi = [p for p in pairs if p.other.tp > 1]
    params = base
    if tp1:
        params = search(
            objective,
            params,
            ("compute_efficiency", "memory_efficiency"),
            (EFFICIENCY_GRID, EFFICIENCY_GRID),
            tp1,
        )
    if multi:
        params = search(
            objective,
            params,
            ("comm_efficiency", "comm_latency_s"),
            (COMM_EFFICIENCY_GRID, COMM_LATENCY_GRID_S),
            multi,
        )
    return params


def mape(objective: Objective, params: ServingPerfParams, pairs) -> tuple[float, float, int]:
    """MAPE % and bias % of the ratio, and the number of pairs."""
    errors = [math.exp(e) - 1 for _, e in objective.errors(params, pairs)]
    if not errors:
        return math.nan, math.nan, 0
    return 100 * sum(map(abs, errors)) / len(errors), 100 * sum(errors) / len(errors), len(errors)


def base_name(path: Path) -> str:
    """The GPU whose profile ``path`` is (a held-out file names it in its [meta])."""
    import tomllib

    meta = tomllib.loads(path.read_text(encoding="utf-8")).get("meta", {})
    held = str(meta.get("held_out", ""))
    if "'s profile stands in" in held:
        return held.split("; ", 1)[1].split("'s profile", 1)[0]
    return path.stem


def fallback(engine: str, gpu: str, name: str) -> tuple[ServingPerfParams, str]:
    """What ``gpu`` gets without its own profile: ``name``'s shipped ``engine`` profile with its
    efficiencies scaled by the two GPUs' measured shares (:func:`kavier.perf.profiles.borrow`),
    and the held-out file's ``[meta] held_out`` text saying so."""
    from kavier.perf.profiles import borrow_named

    params, clause = borrow_named(load_profile(shipped_profile(engine, name).path), gpu, name)
    return params, f"every {gpu} row; {name}'s profile stands in (the fallback){clause}"


def rewrite_fallback(gpu: str, pairs) -> int:
    """Rewrite ``held-out/gpu-<gpu>.toml`` (both engines) as the fallback of today's GPU library,
    and the held-out-by-GPU entries of ``<gpu>.toml``'s ``[meta.validation]``; nothing fitted."""
    import tomllib

    name = base_name(PROFILE_ROOT / "vllm-v1" / "held-out" / f"gpu-{gpu}.toml")
    with tempfile.TemporaryDirectory() as tmp:
        objective = Objective(pairs, Path(tmp))
        params, text = fallback("vllm-v1", gpu, name)
        held = {}
        for tp in sorted({p.other.tp for p in pairs}):
            held[tp] = mape(objective, params, [p for p in pairs if p.other.tp == tp])
            print(
                f"  fallback (held out: GPU) tp{tp}: MAPE {held[tp][0]:5.1f} %  "
                f"bias {held[tp][1]:+6.1f} %  n {held[tp][2]}"
            )
        print(f"fallback (held out: GPU): all {mape(objective, params, pairs)}")
    for engine in ENGINES:
        folder = PROFILE_ROOT / engine
        params, text = fallback(engine, gpu, name)
        (folder / "held-out" / f"gpu-{gpu}.toml").write_text(
            profile_text(params, {"held_out": text, "engine": engine})
        )
        own = folder / f"{gpu}.toml"
        meta = tomllib.loads(own.read_text(encoding="utf-8"))["meta"]
        meta["validation"]["held_out_gpu"] = {
            f"trtllm-gpus.ratio.tp{tp}": [round(v[0], 1), v[2]] for tp, v in held.items()
        }
        own.write_text(profile_text(load_profile(own), meta))
        print(f"wrote {folder / 'held-out' / f'gpu-{gpu}.toml'} and {own}'s held-out-by-GPU validation")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gpu", required=True, help="the GPU to fit (one of the suite's: H200, L40S, ...)")
    parser.add_argument("--no-write", action="store_true", help="fit and print only")
    parser.add_argument(
        "--fallback-only",
        action="store_true",
        help="fit nothing: rewrite the held-out-by-GPU fallback (its measured-share scaling) and its errors",
    )
    args = parser.parse_args()
    for line in machine_lines():
        print(line)
    flag = " --fallback-only" if args.fallback_only else " --no-write" if args.no_write else ""
    print(f"command: python benchmarks/fit_ratio_profile.py --gpu {args.gpu}{flag}")
    t0 = time.perf_counter()
    pairs = [p for p in trtllm_gpus.selection()[0] if p.other.gpu == args.gpu]
    if not pairs:
        print(f"no trtllm-gpus pairs for {args.gpu}", file=sys.stderr)
        return 2
    if args.fallback_only:
        return rewrite_fallback(args.gpu, pairs)
    own = PROFILE_ROOT / "vllm-v1" / f"{args.gpu}.toml"
    held = PROFILE_ROOT / "vllm-v1" / "held-out" / f"gpu-{args.gpu}.toml"
    fallback_path = held if held.is_file() else shipped_profile("vllm-v1", args.gpu).path
    if fallback_path == own:
        print(f"{args.gpu} has its own profile and no held-out fallback beside it", file=sys.stderr)
        return 2
    base = (
        fallback("vllm-v1", args.gpu, base_name(fallback_path))[0]
        if fallback_path == held
        else load_profile(fallback_path)
    )
    models = sorted({p.other.model for p in pairs})
    with tempfile.TemporaryDirectory() as tmp:
        objective = Objective(pairs, Path(tmp))
        fitted = fit(objective, pairs, base)
        by_tp = {}
        for label, params in (("fallback (held out: GPU)", base), ("fitted", fitted)):
            for tp in sorted({p.other.tp for p in pairs}):
                these = [p for p in pairs if p.other.tp == tp]
                by_tp[label, tp] = mape(objective, params, these)
            print(f"{label}: all {mape(objective, params, pairs)}")
        held_model = {}
        for m in models:
            rest = [p for p in pairs if p.other.model != m]
            mine = [p for p in pairs if p.other.model == m]
            params = fit(objective, rest, base) if rest else base
            held_model[m] = (params, mape(objective, params, mine))
        held_errors = []
        for m in models:
            mine = [p for p in pairs if p.other.model == m]
            held_errors += [e for _, e in objective.errors(held_model[m][0], mine)]
    fields = ("compute_efficiency", "memory_efficiency", "comm_efficiency", "comm_latency_s")
    print("fitted constants:", {k: round(getattr(fitted, k), 6) for k in fields})
    for (label, tp), (err, bias, n) in sorted(by_tp.items()):
        print(f"  {label:26s} tp{tp}: MAPE {err:5.1f} %  bias {bias:+6.1f} %  n {n}")
    for m, (_, (err, bias, n)) in held_model.items():
        print(f"  held out: model {m:16s}: MAPE {err:5.1f} %  bias {bias:+6.1f} %  n {n}")
    lomo = [math.exp(e) - 1 for e in held_errors]
    lomo_mape = 100 * sum(map(abs, lomo)) / len(lomo)
    print(f"held out: model, all pairs: MAPE {lomo_mape:.1f} % (n {len(lomo)})")
    print(f"wall {time.perf_counter() - t0:.0f} s, {objective.calls} evaluations")
    if args.no_write:
        return 0
    fallback_name = base_name(fallback_path)
    for engine in ENGINES:
        engine_base = load_profile(shipped_profile(engine, fallback_name).path)
        params = replace(engine_base, **{k: getattr(fitted, k) for k in fields})
        meta = {
            "gpu": args.gpu,
            "engine": engine,
            "fitted_on_suite": trtllm_gpus.SUITE,
            "source": (
                "benchmarks/fit_ratio_profile.py on Kavier's suite trtllm-gpus: NVIDIA TensorRT-LLM "
                f"performance overview v0.13/v1.0 output-throughput ratios {args.gpu} / H100-SXM "
                "(src/kavier/validate/data/public, SOURCES.md); "
                f"{', '.join(fields)} fitted, every other constant {fallback_name}'s"
            ),
            "validation": {
                "what": "MAPE % of the trtllm-gpus throughput ratios on this GPU, and their number",
                "fitted": {
                    f"trtllm-gpus.ratio.tp{tp}": [round(v[0], 1), v[2]]
                    for (lbl, tp), v in by_tp.items()
                    if lbl == "fitted"
                },
                "held_out_gpu": {
                    f"trtllm-gpus.ratio.tp{tp}": [round(v[0], 1), v[2]]
                    for (lbl, tp), v in by_tp.items()
                    if lbl != "fitted"
                },
                "held_out_model": {"trtllm-gpus.ratio": [round(lomo_mape, 1), len(lomo)]},
            },
        }
        folder = PROFILE_ROOT / engine
        (folder / f"{args.gpu}.toml").write_text(profile_text(params, meta))
        target = folder / "held-out" / f"gpu-{args.gpu}.toml"
        held_params, held_text = fallback(engine, args.gpu, fallback_name)
        target.write_text(profile_text(held_params, {"held_out": held_text, "engine": engine}))
        for m, (held_params, _) in held_model.items():
            model_file = folder / "held-out" / f"model-{m}" / f"{args.gpu}.toml"
            model_file.parent.mkdir(exist_ok=True)
            model_params = replace(engine_base, **{k: getattr(held_params, k) for k in fields})
            model_meta = {"held_out": f"every {m} row", "gpu": args.gpu, "engine": engine}
            model_file.write_text(profile_text(model_params, model_meta))
        print(f"wrote {folder / f'{args.gpu}.toml'}, {target} and {len(held_model)} held-out-model files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
