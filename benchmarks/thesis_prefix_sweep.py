"""Thesis experiment 3: the prefix-cache sweep (min length x capacity) on the Mooncake trace.

The thesis swept the prefix cache's minimum match length (1024, 2048, 4096 tokens) and its
capacity (prompts), session scope, LRU, prefill-only policy, Llama-3-8B on an A10 (thesis
preset), and reported the hit ratio and the prefill GPU-hours saved. Here the trace is
../shared/data/traces/mooncake_conversation.jsonl (12,031 requests; prefixes identified by its
512-token ``hash_ids``), capacities 2..64 prompts plus an unbounded cache (the most any
capacity can give), and both scopes.

The Mooncake trace has no session ids, so under session scope every request is in session -1:
session scope is then global scope, and the two tables must agree.

    python benchmarks/thesis_prefix_sweep.py

Needs ../shared/data (skips with a message when it is absent). Not run by pytest.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, SHARED_DATA, command_line, machine_lines, table, use_repo_source  # noqa: E402

use_repo_source()

TRACE = SHARED_DATA / "traces" / "mooncake_conversation.jsonl"
PREFIX_LENS = [1024, 2048, 4096]
CAPACITIES = [2, 4, 8, 16, 32, 64]
UNBOUNDED = 10**9  # an extra column: capacity never binds (the upper bound of LRU)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trace", type=Path, default=TRACE)
    ap.add_argument("--prefix-lens", default=",".join(map(str, PREFIX_LENS)))
    ap.add_argument("--capacities", default=",".join(map(str, CAPACITIES)))
    ap.add_argument("--scopes", default="session,global")
    args = ap.parse_args(argv)
    if not args.trace.exists():
        print(f"SKIPPED: {args.trace} not found (needs ../shared/data beside the repository)")
        return 0

    import pyarrow.compute as pc

    import kavier

    lens = [int(x) for x in args.prefix_lens.split(",") if x.strip()]
    caps = [int(x) for x in args.capacities.split(",") if x.strip()] + [UNBOUNDED]
    scopes = [s.strip() for s in args.scopes.split(",") if s.strip()]

    print("# thesis_prefix_sweep", time.strftime("%Y-%m-%d"))
    print("reproduce:", command_line([sys.executable, str(Path(__file__).resolve()), *sys.argv[1:]]))
    for line in machine_lines():
        print(line)
    common = {"trace": str(args.trace), "llm": "Llama-3-8B", "gpu": "A10", "preset": "thesis"}

    t0 = time.perf_counter()
    base = kavier.simulate(**common, prefix_len=0)
    base_h = base.summary["total_prefill_s"] / 3600
    n = base.summary["num_requests"]
    sessions = pc.unique(base.requests.column("session_id")).to_pylist()
    print(
        f"trace {args.trace.name}: {n:,} requests, session ids in the run: {sessions} "
        "(no sessions in the trace: session scope puts every request in session -1, "
        "i.e. it behaves as global scope)"
    )
    print(
        f"no-cache baseline (--prefix-len 0): prefill {base_h:,.3f} GPU-h, decode "
        f"{base.summary['total_decode_s'] / 3600:,.3f} GPU-h, busy "
        f"{base.summary['gpu_busy_s'] / 3600:,.3f} GPU-h"
    )
    kavier_cmd = (
        f"PYTHONPATH=src python -m kavier run --trace {os.path.relpath(args.trace, REPO)} "
        "--llm Llama-3-8B --gpu A10 --preset thesis "
        "--prefix-len L --prefix-cache-size C --prefix-cache-scope S -o OUT -q"
    )
    print(f"one cell by hand: {kavier_cmd}")

    results: dict[tuple[str, int, int], dict] = {}
    for scope in scopes:
        print(f"\n## Scope {scope}: hit ratio | prefill GPU-h | saving vs no cache")
        header = [
            "prefix len \\ capacity",
            *["unbounded" if c == UNBOUNDED else f"{c} prompts" for c in caps],
        ]
        rows_hit, rows_h, rows_save = [], [], []
        for length in lens:
            hit_cells, h_cells, save_cells = [f"{length}"], [f"{length}"], [f"{length}"]
            for cap in caps:
                s = kavier.simulate(
                    **common,
                    prefix_len=length,
                    prefix_cache_size=cap,
                    prefix_cache_scope=scope,
                ).summary
                results[(scope, length, cap)] = s
                h = s["total_prefill_s"] / 3600
                hit_cells.append(f"{s['prefix_cache_hit_ratio']:.4f}")
                h_cells.append(f"{h:,.3f}")
                save_cells.append(f"{100 * (1 - h / base_h):.2f} %")
            rows_hit.append(hit_cells)
            rows_h.append(h_cells)
            rows_save.append(save_cells)
        print("\nhit ratio (hits per request)")
        print(table(header, rows_hit))
        print("\nprefill GPU-hours (total_prefill_s / 3600)")
        print(table(header, rows_h))
        print(f"\nprefill saving vs the no-cache baseline ({base_h:,.3f} GPU-h)")
        print(table(header, rows_save))

    if "session" in scopes and "global" in scopes:
        same = all(
            results[("session", length, c)]["prefix_cache_hits"]
            == results[("global", length, c)]["prefix_cache_hits"]
            for length in lens
            for c in caps
        )
        print(f"\nsession scope == global scope in every cell: {same} (expected, the trace has no sessions)")
    print(f"\n({len(results) + 1} simulations in {time.perf_counter() - t0:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
