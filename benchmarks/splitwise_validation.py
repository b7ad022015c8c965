"""Serving model vs the Splitwise measurements: Llama-2-70B on A100-80GB and H100-SXM, TP 2/4/8.

Data: ../shared/data/measurements/splitwise_llama2_70b_bloom_176b_a100_h100.csv (Splitwise
simulator perf_model.csv, MIT): prompt_time (prefill of the whole batch) and token_time (one
decode step) for prompts of 128..8192 tokens and batches of 1..64. For each GPU the serving
model's constants are fitted on the rows with batch <= 8 (``kavier calibrate``'s default) and
scored on the rows with batch > 8, which the fit never saw. The table gives the MAPE of
prompt_time and token_time, with the built-in defaults and with the calibrated constants, on
the fitting and held-out rows, for all rows and per tensor-parallel degree. The goal is <= 10 %
held out. The fit weighs every measured configuration once (``--every-row``: every row once; the
batch-1 512-token prefill is measured 45 times per TP, other configurations 5 times).

Two calibrations are scored: one set of constants fitted on every TP degree at once (the
profile's top level), and constants fitted per TP degree on that degree's rows alone
(``kavier calibrate --per-tp``: the profile's ``[tp.N]`` tables, a profile per deployment).
Both are scored on the same held-out rows.

    python benchmarks/splitwise_validation.py
    python benchmarks/splitwise_validation.py --fit-rows "batch_size<=4"
    python benchmarks/splitwise_validation.py --every-row

The same fit, one GPU at a time, with a profile written for ``kavier run --perf-profile``:

    kavier calibrate ../shared/data/measurements/splitwise_llama2_70b_bloom_176b_a100_h100.csv \\
        --llm Llama-2-70B --gpu H100-SXM --out h100.toml

Prints SKIPPED and exits 0 when ../shared/data is absent. Not run by pytest (the same figures
are pinned by tests/perf/test_calibrate.py).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SHARED_DATA, command_line, machine_lines, table, use_repo_source  # noqa: E402

use_repo_source()

from kavier.library.catalog import load_catalog  # noqa: E402
from kavier.perf.calibrate import (  # noqa: E402
    DEFAULT_FIT_ROWS,
    FIT_KEYS,
    _fmt_const,
    calibrate,
    mape,
    predict_rows,
)

CSV = SHARED_DATA / "measurements" / "splitwise_llama2_70b_bloom_176b_a100_h100.csv"
GPUS = ("A100-80GB", "H100-SXM")
GOAL = 10.0


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}"


def _mapes(rows, fit: bool, calibrated: bool) -> tuple[float | None, float | None]:
    sel = [r for r in rows if r.fit == fit]
    if not sel:
        return None, None
    if calibrated:
        p = mape([r.prompt_s for r in sel], [r.row.prompt_time_s for r in sel])
        t = mape([r.token_s for r in sel], [r.row.token_time_s for r in sel])
    else:
        p = mape([r.default_prompt_s for r in sel], [r.row.prompt_time_s for r in sel])
        t = mape([r.default_token_s for r in sel], [r.row.token_time_s for r in sel])
    return p, t


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--csv", type=Path, default=CSV)
    ap.add_argument("--fit-rows", default=DEFAULT_FIT_ROWS, help="rows to fit on (the rest are held out)")
    ap.add_argument(
        "--every-row",
        action="store_true",
        help="weigh every fitting row once (default: every measured configuration once)",
    )
    args = ap.parse_args()
    if not args.csv.is_file():
        print(f"SKIPPED: {args.csv} not found (../shared/data is not beside the repository)")
        return 0
    print("reproduce:", command_line([sys.executable, str(Path(__file__).resolve()), *sys.argv[1:]]))
    for line in machine_lines():
        print(line)
    print(f"data: {args.csv}")
    print(f"fit on rows {args.fit_rows!r}, held out: the others; MAPE in %, prompt_time / token_time")
    print()
    rows_out = []
    results = {}
    catalog = load_catalog()
    for gpu in GPUS:
        t0 = time.perf_counter()
        # One calibration gives both: the one fit (the profile's top level) and the per-TP fits.
        res = calibrate(
            args.csv,
            "Llama-2-70B",
            gpu,
            fit_filter=args.fit_rows,
            weigh_repeats=not args.every_row,
            per_tp=True,
        )
        results[gpu] = (res, time.perf_counter() - t0)
        one_prompt, one_token = predict_rows(
            [r.row for r in res.rows], catalog.model(res.llm), catalog.gpu(res.gpu), res.params
        )
        one_fit = [
            replace(r, prompt_s=float(p), token_s=float(t))
            for r, p, t in zip(res.rows, one_prompt, one_token, strict=True)
        ]
        groups = [("all", None)] + [(str(tp), tp) for tp in res.tps]
        for label, tp in groups:
            rows = [r for r in one_fit if tp is None or r.row.tp == tp]
            rows_tp = [r for r in res.rows if tp is None or r.row.tp == tp]
            cells = [gpu, label, sum(r.fit for r in rows), sum(not r.fit for r in rows)]
            for rs, calibrated in ((rows, False), (rows, True), (rows_tp, True)):
                for fit in (True, False):
                    p, t = _mapes(rs, fit, calibrated)
                    cells.append(f"{_pct(p)} / {_pct(t)}")
            rows_out.append(cells)
    headers = [
        "GPU",
        "TP",
        "fit rows",
        "held-out rows",
        "defaults, fit",
        "defaults, held out",
        "one fit, fit",
        "one fit, held out",
        "per TP, fit",
        "per TP, held out",
    ]
    print(table(headers, rows_out))
    print()
    const_rows = []
    for key in FIT_KEYS:
        res0 = results[GPUS[0]][0]
        cells = [key, _fmt_const(key, getattr(res0.base, key))]
        for gpu in GPUS:
            res = results[gpu][0]
            tag = "" if key in res.fitted else " (not fitted)"
            cells.append(_fmt_const(key, getattr(res.params, key)) + tag)
        const_rows.append(cells)
    print(table(["constant", "default", *(f"calibrated {g}" for g in GPUS)], const_rows))
    print()
    tp_rows = []
    for key in FIT_KEYS:
        cells = [key]
        for gpu in GPUS:
            res = results[gpu][0]
            cells += [_fmt_const(key, getattr(res.params_by_tp[t], key)) for t in sorted(res.params_by_tp)]
        tp_rows.append(cells)
    degrees = sorted(results[GPUS[0]][0].params_by_tp)
    print(table(["constant per TP", *(f"{g} TP {t}" for g in GPUS for t in degrees)], tp_rows))
    print()
    met = {"one fit": True, "per TP": True}
    for gpu in GPUS:
        res, wall = results[gpu]
        for label, held in (("one fit", res.joint_mape["held_out"]), ("per TP", res.mape["held_out"])):
            ok = {k: held[k] is not None and held[k] <= GOAL for k in ("prompt", "token")}
            met[label] &= all(ok.values())
            print(
                f"{gpu}, {label}: held-out MAPE prompt {_pct(held['prompt'])} % "
                f"({'meets' if ok['prompt'] else 'misses'} the {GOAL:.0f} % goal), token "
                f"{_pct(held['token'])} % ({'meets' if ok['token'] else 'misses'})"
            )
        print(
            f"{gpu}: {len(res.dropped)} rows dropped as implausible; both calibrations in {wall:.1f} s "
            f"({res.objective_evals} objective evaluations)"
        )
    for label, ok in met.items():
        verdict = "met" if ok else "not met"
        print(f"goal (<= {GOAL:.0f} % held out, both times, both GPUs), {label}: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
