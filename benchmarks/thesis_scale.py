"""Thesis-scale run: a Marconi-sized multi-turn trace through `kavier run` at three export rates.

Generates a deterministic trace in the thesis format (96,870 requests in 3,000 sessions, mean
input ~10,760 and mean output ~316 tokens, as the Marconi-scale workload of the thesis), then
for each export rate runs ``kavier run`` (thesis preset, every output written, default flags
otherwise) in its own process and reports wall time, peak RSS, the in-process ``wall_time_s``
and the outputs' sizes and row counts, next to the goals (<= 1 s at 1 s, <= 10 s at 0.1 s,
<= 100 s at 0.01 s, peak memory <= 2 GB each).

In the same run it times the *upstream* ``kavier`` 0.5.3 from PyPI -- a different project that
happens to share the name -- in its own virtual environment (benchmarks/_work/venv-upstream;
it is never installed next to this tree's kavier) on the same trace and export rate, and prints
the ratio upstream/ours. The trace has no token-id lists, so upstream's prefix cache is never
consulted (it only caches with ``input_tokens``); ours derives prefixes from session structure.

    python benchmarks/thesis_scale.py                       # all three rates, with upstream
    python benchmarks/thesis_scale.py --rates 1 --skip-upstream

Needs no data from ../shared. Not run by pytest.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    REPO,
    WORK,
    command_line,
    fmt_bytes,
    machine_lines,
    repo_env,
    run_measured,
    table,
)

# Marconi-scale targets (thesis): requests, sessions, mean input and output tokens.
NUM_REQUESTS = 96_870
NUM_SESSIONS = 3_000
MEAN_INPUT = 10_760
MEAN_OUTPUT = 316
TURNS = (16, 48)  # uniform turn counts per session (inclusive)
FIRST_PROMPT_MEAN = 2_000
NEW_TEXT_MEAN = 200
DAY_S = 86_400.0
THINK_S = (30.0, 600.0)  # uniform think time between turns

# Thesis model numbers for the analytic GPU-hours (Llama-3-8B on an A10, kavier.perf.thesis).
N_PARAMS = 8e9
A10_FLOPS = 125e12
A10_BW = 600e9
CE, ME, OVERHEAD_S = 0.30, 0.60, 0.025

GOAL_WALL_S = {1.0: 1.0, 0.1: 10.0, 0.01: 100.0}
GOAL_RSS_BYTES = 2e9
UPSTREAM_VERSION = "0.5.3"
UPSTREAM_WHEEL = Path("/tmp/kv053/kavier-0.5.3-py3-none-any.whl")


def _lognormal(rng: np.random.Generator, mean: float, cv: float, size: int) -> np.ndarray:
    sigma2 = np.log1p(cv * cv)
    return rng.lognormal(np.log(mean) - sigma2 / 2, np.sqrt(sigma2), size)


def make_trace(seed: int = 0) -> pa.Table:
    """The deterministic Marconi-scale multi-turn trace (sorted by arrival)."""
    rng = np.random.default_rng(seed)
    turns = rng.integers(TURNS[0], TURNS[1] + 1, NUM_SESSIONS)
    # Nudge random sessions by one turn (within bounds) until the total is exact.
    diff = NUM_REQUESTS - int(turns.sum())
    while diff:
        s = int(rng.integers(NUM_SESSIONS))
        step = 1 if diff > 0 else -1
        if TURNS[0] <= turns[s] + step <= TURNS[1]:
            turns[s] += step
            diff -= step
    n = int(turns.sum())
    session = np.repeat(np.arange(NUM_SESSIONS, dtype=np.int64), turns)
    first = np.cumsum(turns) - turns
    turn = np.arange(n, dtype=np.int64) - first[session]

    out = np.maximum(_lognormal(rng, MEAN_OUTPUT, 0.6, n), 1.0)
    out = np.maximum(np.rint(out * MEAN_OUTPUT / out.mean()), 1).astype(np.int64)
    new_text = np.maximum(np.rint(_lognormal(rng, NEW_TEXT_MEAN, 0.5, n)), 1).astype(np.int64)
    first_prompt = np.rint(_lognormal(rng, FIRST_PROMPT_MEAN, 0.3, NUM_SESSIONS)).astype(np.int64)
    # Turn k's prompt = turn k-1's prompt + its answer + new text; turn 0's = the first prompt.
    growth = np.where(turn > 0, np.roll(out, 1) + new_text, 0)
    cum = np.cumsum(growth)
    prompt = first_prompt[session] + cum - cum[first][session]
    # Shift every session's first prompt by one constant so the mean input hits the target.
    shift = int(round(MEAN_INPUT - prompt.mean()))
    shift = max(shift, int(1 - first_prompt.min()))
    prompt = prompt + shift

    start = np.sort(rng.uniform(0.0, DAY_S, NUM_SESSIONS))
    think = np.where(turn > 0, rng.uniform(*THINK_S, n), 0.0)
    tcum = np.cumsum(think)
    ts = start[session] + tcum - tcum[first][session]
    ts = np.round(ts, 3)
    order = np.lexsort((turn, session, ts))
    return pa.table(
        {
            "session_id": session[order],
            "turn_id": turn[order],
            "ts": ts[order],
            "num_input_tokens": prompt[order],
            "num_output_tokens": out[order],
        }
    )


def analytic_gpu_hours(t: pa.Table) -> tuple[float, float]:
    """Thesis-model prefill and decode GPU-hours of the trace without any prefix cache."""
    n_in = t.column("num_input_tokens").to_numpy().astype(np.float64)
    n_out = t.column("num_output_tokens").to_numpy().astype(np.float64)
    per_tok = 2 * N_PARAMS / (A10_FLOPS * CE)
    tpot = max(per_tok, 2 * N_PARAMS / (A10_BW * ME))
    prefill = float((n_in * per_tok + OVERHEAD_S).sum())
    decode = float((n_out * tpot).sum())
    return prefill / 3600, decode / 3600


def outputs_of(folder: Path) -> list[tuple[str, int, int | None]]:
    """(relative path, bytes, parquet rows) of every file in a run folder."""
    rows = []
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            nrows = pq.ParquetFile(p).metadata.num_rows if p.suffix == ".parquet" else None
            rows.append((str(p.relative_to(folder)), p.stat().st_size, nrows))
    return rows


def ensure_upstream(venv: Path) -> Path | None:
    """Create the upstream venv (once) and return its ``kavier`` executable."""
    exe = venv / "bin" / "kavier"
    ok = venv / f".kavier-{UPSTREAM_VERSION}-installed"
    if exe.exists() and ok.exists():
        return exe
    print(f"creating {venv} with kavier=={UPSTREAM_VERSION} (upstream; isolated venv) ...")
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
    res = subprocess.run([*pip, f"kavier=={UPSTREAM_VERSION}"], capture_output=True, text=True)
    if res.returncode != 0 and UPSTREAM_WHEEL.exists():
        res = subprocess.run([*pip, str(UPSTREAM_WHEEL)], capture_output=True, text=True)
    if res.returncode != 0 or not exe.exists():
        print("could not install upstream kavier:", res.stderr.strip().splitlines()[-1:])
        return None
    ok.write_text("ok\n")
    return exe


def parse_upstream_summary(text: str) -> dict[str, float]:
    """Prefill/decode seconds from upstream's _sim_results.txt."""
    found: dict[str, float] = {}
    for line in text.splitlines():
        if "|" not in line:
            continue
        key, _, value = line.partition("|")
        key = key.strip()
        if key in ("Prefill time", "Decode time", "Total time"):
            found[key] = float(value.split("s")[0].replace(",", "").strip())
        elif key == "Cache hit ratio":
            found[key] = float(value.strip().rstrip("%")) / 100
    return found


def upstream_stage(uout: Path, res) -> str:
    """Where a killed upstream run was: still simulating, or re-reading for the OpenDC export."""
    over = res.first_above(2 * 1024**3)
    rss = f"RSS first above 2 GiB at {over:,.0f} s" if over is not None else "RSS stayed below 2 GiB"
    runs = sorted(p for p in uout.iterdir() if p.is_dir()) if uout.exists() else []
    frag = runs[-1] / "fragments.parquet" if runs else None
    try:
        rows = pq.ParquetFile(frag).metadata.num_rows if frag and frag.exists() else None
    except Exception:  # noqa: BLE001 - a file still being written has no footer
        rows = None
    if rows is not None:
        return (
            f"its simulation loop had finished ({rows:,} fragments streamed to parquet); it was "
            f"re-reading them all into pandas for the OpenDC export; {rss}"
        )
    return f"it was still in its per-request simulation loop; {rss}"


def _rel(p: Path) -> str:
    try:
        return str(p.relative_to(REPO))
    except ValueError:
        return str(p)


def fmt_rate(r: float) -> str:
    return f"{r:g}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rates", default="1,0.1,0.01", help="export rates in seconds, comma-separated")
    ap.add_argument("--skip-upstream", action="store_true", help="do not time upstream kavier 0.5.3")
    ap.add_argument("--upstream-timeout", type=float, default=1200.0, help="seconds per upstream run")
    ap.add_argument(
        "--upstream-rss-limit-gb",
        type=float,
        default=12.0,
        help="kill an upstream run whose resident memory exceeds this (protects the machine)",
    )
    ap.add_argument("--work", type=Path, default=WORK / "thesis_scale", help="scratch folder")
    ap.add_argument("--keep-outputs", action="store_true", help="keep run folders afterwards")
    ap.add_argument("--preset", default="thesis", help="kavier preset for our runs (thesis)")
    ap.add_argument("--repeat", type=int, default=3, help="runs of ours per rate; the fastest is reported")
    ap.add_argument("--no-compile", action="store_true", help="do not byte-compile src/kavier first")
    args = ap.parse_args(argv)
    rates = [float(r) for r in args.rates.split(",") if r.strip()]
    work: Path = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)

    this = command_line([sys.executable, str(Path(__file__).resolve()), *sys.argv[1:]])
    print("# thesis_scale", time.strftime("%Y-%m-%d"))
    print("reproduce:", this)
    for line in machine_lines():
        print(line)

    # 1. The trace.
    t0 = time.perf_counter()
    trace = make_trace()
    trace_pq = work / "marconi_scale.parquet"
    trace_csv = work / "marconi_scale.csv"
    pq.write_table(trace, trace_pq, compression="snappy")
    pacsv.write_csv(trace, trace_csv)
    n_in = trace.column("num_input_tokens").to_numpy()
    n_out = trace.column("num_output_tokens").to_numpy()
    ts = trace.column("ts").to_numpy()
    pre_h, dec_h = analytic_gpu_hours(trace)
    print(f"\n## Trace ({time.perf_counter() - t0:.1f} s to generate): {_rel(trace_pq)}")
    print(
        table(
            ["quantity", "achieved", "target", "off by"],
            [
                ["requests", f"{len(trace):,}", f"{NUM_REQUESTS:,}", "0 %"],
                [
                    "sessions",
                    f"{len(np.unique(trace.column('session_id').to_numpy())):,}",
                    f"{NUM_SESSIONS:,}",
                    "0 %",
                ],
                [
                    "mean input tokens",
                    f"{n_in.mean():,.1f}",
                    f"{MEAN_INPUT:,}",
                    f"{100 * (n_in.mean() / MEAN_INPUT - 1):+.2f} %",
                ],
                [
                    "mean output tokens",
                    f"{n_out.mean():,.1f}",
                    f"{MEAN_OUTPUT:,}",
                    f"{100 * (n_out.mean() / MEAN_OUTPUT - 1):+.2f} %",
                ],
            ],
        )
    )
    print(
        f"turns per session uniform {TURNS[0]}..{TURNS[1]}; first prompt ~{FIRST_PROMPT_MEAN} "
        f"(lognormal cv 0.3, shifted to hit the mean), new text ~{NEW_TEXT_MEAN} per turn; "
        f"input min/median/max {n_in.min():,}/{int(np.median(n_in)):,}/{n_in.max():,}; "
        f"output min/max {n_out.min()}/{n_out.max():,}; sessions start uniformly over one day, "
        f"think time {THINK_S[0]:g}..{THINK_S[1]:g} s; arrivals span {ts.max() / 3600:.1f} h"
    )
    print(
        f"analytic A10 GPU-hours, Llama-3-8B, thesis model, no prefix cache: prefill "
        f"{pre_h:,.1f} h + decode {dec_h:,.1f} h = {pre_h + dec_h:,.1f} h"
    )
    print(f"CSV copy (same rows): {_rel(trace_csv)} ({fmt_bytes(trace_csv.stat().st_size)})")

    if not args.no_compile:
        # What `pip install` does: without byte code every run would compile Kavier's modules
        # again (PYTHONDONTWRITEBYTECODE=1 is set in some environments, this one included).
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO / "src" / "kavier")], check=True)
        print("\nbyte-compiled src/kavier first (python -m compileall; skip with --no-compile)")

    upstream = None
    if not args.skip_upstream:
        upstream = ensure_upstream(WORK / "venv-upstream")

    results = []
    for rate in rates:
        r = fmt_rate(rate)
        print(f"\n## Export rate {r} s")
        out = work / f"ours_r{r}"
        cmd = [
            sys.executable, "-m", "kavier", "run",
            "--trace", str(trace_pq), "--llm", "Llama-3-8B", "--gpu", "A10",
            "--output-folder", str(out), "--export-rate", r, "--preset", args.preset, "-q",
        ]  # fmt: skip
        print("ours:", command_line(cmd, "PYTHONPATH=src"))
        print("  load average before the runs (1/5/15 min):", " ".join(f"{x:.2f}" for x in os.getloadavg()))
        runs, inner = [], []
        for _ in range(max(1, args.repeat)):
            runs.append(run_measured(cmd, env=repo_env(), cwd=REPO, log_path=work / f"ours_r{r}.log"))
            if runs[-1].returncode != 0:
                break
            inner.append(json.loads((out / "summary.json").read_text())["wall_time_s"])
        best = min(range(len(runs)), key=lambda i: (runs[i].returncode != 0, runs[i].wall_s))
        res = runs[best]
        walls = [x.wall_s for x in runs]
        res.peak_rss_bytes = max(x.peak_rss_bytes for x in runs)
        row: dict = {"rate": rate, "ours": res, "walls": walls}
        if res.returncode != 0:
            print(f"  FAILED (exit {res.returncode}): {res.stderr.strip()[-2000:]}")
        else:
            summary = json.loads((out / "summary.json").read_text())
            summary["wall_time_s"] = inner[best]  # the in-process time of the reported run
            row["summary"] = summary
            if len(walls) > 1:
                print(
                    f"  {len(walls)} runs, wall "
                    + ", ".join(f"{w:.2f}" for w in walls)
                    + " s (in-process "
                    + ", ".join(f"{w:.2f}" for w in inner)
                    + " s): the fastest is reported; peak RSS is the maximum over the runs"
                )
            files = outputs_of(out)
            row["files"] = files
            goal = GOAL_WALL_S.get(rate)
            met_t = "" if goal is None else (" MET" if res.wall_s <= goal else " MISSED")
            met_m = " MET" if res.peak_rss_bytes <= GOAL_RSS_BYTES else " MISSED"
            print(
                f"  wall {res.wall_s:,.2f} s (goal <= {goal:g} s:{met_t}); "
                f"in-process wall_time_s {summary['wall_time_s']:,.2f} s; "
                f"peak RSS {fmt_bytes(res.peak_rss_bytes)} (goal <= 2 GB:{met_m})"
            )
            print(
                f"  simulated {summary['simulated_time_s'] / 3600:,.1f} h, GPU busy "
                f"{summary['gpu_busy_s'] / 3600:,.1f} h (prefill {summary['total_prefill_s'] / 3600:,.1f} h, "
                f"decode {summary['total_decode_s'] / 3600:,.1f} h), prefix-cache hit ratio "
                f"{summary['prefix_cache_hit_ratio']:.4f} ({summary['prefix_cache_hits']:,} hits)"
            )
            print(
                table(
                    ["output", "size", "rows"],
                    [[f, fmt_bytes(b), "" if n is None else f"{n:,}"] for f, b, n in files],
                )
            )
        if upstream is not None:
            uout = work / f"upstream_r{r}"
            if uout.exists():
                subprocess.run(["rm", "-rf", str(uout)], check=True)
            ucmd = [
                str(upstream), "inference", "--trace", str(trace_pq), "--llm", "Llama-3-8B",
                "--gpu", "A10", "--export_rate", r, "--output_folder", str(uout),
            ]  # fmt: skip
            print(
                "upstream:",
                command_line(ucmd).replace(
                    str((WORK / "venv-upstream").relative_to(REPO)), "benchmarks/_work/venv-upstream"
                ),
            )
            env = {k: v for k, v in repo_env().items() if k != "PYTHONPATH"}
            env["TQDM_DISABLE"] = "1"
            ures = run_measured(
                ucmd,
                env=env,
                cwd=work,
                timeout_s=args.upstream_timeout,
                rss_limit_bytes=int(args.upstream_rss_limit_gb * 1024**3),
                log_path=work / f"upstream_r{r}.log",
            )
            row["upstream"] = ures
            if ures.killed:
                if ures.killed == "timeout":
                    print(f"  upstream: > {args.upstream_timeout:,.0f} s (timeout; killed)")
                else:
                    print(
                        f"  upstream: killed after {ures.wall_s:,.0f} s when its RSS passed "
                        f"{args.upstream_rss_limit_gb:g} GiB (peak seen {fmt_bytes(ures.peak_rss_bytes)})"
                    )
                print("  " + upstream_stage(uout, ures))
            elif ures.returncode != 0:
                print(f"  upstream FAILED (exit {ures.returncode}): {ures.stderr.strip()[-1500:]}")
            else:
                runs = sorted(p for p in uout.iterdir() if p.is_dir())
                udir = runs[-1]
                usum = parse_upstream_summary((udir / "_sim_results.txt").read_text())
                row["upstream_summary"] = usum
                row["upstream_files"] = outputs_of(udir)
                ratio = ures.wall_s / res.wall_s if res.returncode == 0 else float("nan")
                print(
                    f"  upstream wall {ures.wall_s:,.2f} s, peak RSS {fmt_bytes(ures.peak_rss_bytes)}; "
                    f"GPU time {usum.get('Total time', float('nan')) / 3600:,.1f} h, cache hit ratio "
                    f"{usum.get('Cache hit ratio', float('nan')):.2%}; ratio upstream/ours {ratio:,.1f}x"
                )
                print(
                    table(
                        ["upstream output", "size", "rows"],
                        [
                            [f, fmt_bytes(b), "" if n is None else f"{n:,}"]
                            for f, b, n in row["upstream_files"]
                        ],
                    )
                )
            if not args.keep_outputs:
                subprocess.run(["rm", "-rf", str(uout)], check=True)
        if not args.keep_outputs and out.exists():
            subprocess.run(["rm", "-rf", str(out)], check=True)
        results.append(row)

    # Summary table.
    print("\n## Summary")
    rows = []
    for row in results:
        rate = row["rate"]
        ours = row["ours"]
        goal = GOAL_WALL_S.get(rate)
        s = row.get("summary")
        ok_t = "n/a" if goal is None or s is None else ("yes" if ours.wall_s <= goal else "no")
        ok_m = "n/a" if s is None else ("yes" if ours.peak_rss_bytes <= GOAL_RSS_BYTES else "no")
        u = row.get("upstream")
        if u is None:
            u_wall = u_rss = ratio = "skipped"
        elif u.killed == "timeout":
            u_wall, u_rss, ratio = (
                f"> {args.upstream_timeout:,.0f} s",
                fmt_bytes(u.peak_rss_bytes),
                (f"> {args.upstream_timeout / ours.wall_s:,.0f}x"),
            )
        elif u.killed == "memory":
            u_wall = f"> {u.wall_s:,.0f} s (killed: memory)"
            u_rss = f"> {args.upstream_rss_limit_gb:g} GiB"
            ratio = f"> {u.wall_s / ours.wall_s:,.1f}x"
        elif u.returncode != 0:
            u_wall, u_rss, ratio = "failed", fmt_bytes(u.peak_rss_bytes), "n/a"
        else:
            u_wall, u_rss = f"{u.wall_s:,.1f} s", fmt_bytes(u.peak_rss_bytes)
            ratio = f"{u.wall_s / ours.wall_s:,.1f}x"
        rows.append(
            [
                f"{rate:g} s",
                f"{ours.wall_s:,.2f} s" if s else "failed",
                f"{s['wall_time_s']:,.2f} s" if s else "",
                f"<= {goal:g} s" if goal else "",
                ok_t,
                fmt_bytes(ours.peak_rss_bytes),
                ok_m,
                u_wall,
                u_rss,
                ratio,
            ]
        )
    print(
        table(
            [
                "export rate",
                "ours wall",
                "ours wall_time_s",
                "goal",
                "time goal met",
                "ours peak RSS",
                "<= 2 GB met",
                "upstream wall",
                "upstream peak RSS",
                "upstream/ours",
            ],
            rows,
        )  # fmt: skip
    )
    print(
        "\nwall = whole `kavier run` process (interpreter start-up, imports, simulation, writing "
        "every output); wall_time_s = the simulation as timed inside the process. Upstream gets "
        "no token lists (the thesis trace format's input_tokens column is absent), so its prefix "
        "cache is never consulted; ours derives the shared prefix from session structure."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
