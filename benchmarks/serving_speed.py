"""Speed of the serving engine: events grow with requests and batch changes, not output tokens.

1. ../shared/data/traces/azure_llm_2023_conv.csv (19,366 requests, one hour) on 4 x H100-SXM
   replicas of Llama-3.1-8B (goal: <= 2 s wall on this 2-core machine).
2. 1,000,000 Poisson requests (100 req/s, lognormal 1000/250 tokens) on 16 H100-SXM replicas of
   Llama-3.1-8B (goal: <= 60 s, <= 4 GB peak memory).

Each run is a separate `kavier run` process (all outputs written); the script prints the
process wall time and peak RSS, the in-process simulation time (summary `wall_time_s`),
simulated seconds per wall second and engine events per second.

    python benchmarks/serving_speed.py            # both
    python benchmarks/serving_speed.py --only azure
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
AZURE = REPO.parent / "shared" / "data" / "traces" / "azure_llm_2023_conv.csv"

CASES = {
    "azure": (
        "Azure conv trace, 4 x H100-SXM, Llama-3.1-8B",
        ["--trace", str(AZURE), "--llm", "Llama-3.1-8B", "--gpu", "H100-SXM", "--replicas", "4"],
        2.0,
        None,
    ),
    "poisson-1m": (
        "1,000,000 Poisson requests, 16 x H100-SXM, Llama-3.1-8B",
        [
            "--workload",
            "poisson",
            "--num-requests",
            "1000000",
            "--rate",
            "100",
            "--llm",
            "Llama-3.1-8B",
            "--gpu",
            "H100-SXM",
            "--replicas",
            "16",
        ],
        60.0,
        4 * 1024**3,
    ),
}


def run_case(name: str) -> None:
    title, args, goal_s, goal_mem = CASES[name]
    if name == "azure" and not AZURE.is_file():
        print(f"{title}: skipped ({AZURE} not found)")
        return
    out = Path(tempfile.mkdtemp(prefix="kavier-speed-")) / "out"
    cmd = [sys.executable, "-m", "kavier", "run", *args, "-o", str(out), "-q"]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    subprocess.run(cmd, check=True, env=env)
    wall = time.perf_counter() - start
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    summary = json.loads((out / "summary.json").read_text())
    print(f"## {title}")
    print(f"  command: kavier run {' '.join(args)} -o OUT -q")
    print(f"  requests {summary['num_requests']:,}, simulated {summary['simulated_time_s']:,.0f} s")
    print(
        f"  process wall {wall:.2f} s; in-process simulation {summary['wall_time_s']:.2f} s "
        f"(goal <= {goal_s:g} s: {'met' if summary['wall_time_s'] <= goal_s else 'MISSED'})"
    )
    peak = max(peak_kib, before) * 1024
    mem_note = (
        ""
        if goal_mem is None
        else f" (goal <= {goal_mem / 1024**3:g} GB: {'met' if peak <= goal_mem else 'MISSED'})"
    )
    print(f"  peak RSS {peak / 1024**2:,.0f} MiB{mem_note}")
    print(
        f"  simulated s per wall s {summary['simulated_s_per_wall_s']:,.0f}; "
        f"engine events {summary['engine_events']:,} ({summary['events_per_wall_s']:,.0f}/s); "
        f"iterations {summary['iterations']:,}; mean batch {summary['mean_batch_size']:.1f}; "
        f"TTFT p99 {summary['ttft_p99_s']:.3f} s"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=sorted(CASES), help="run one case")
    ns = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores; Python {sys.version.split()[0]}")
    for name in [ns.only] if ns.only else list(CASES):
        run_case(name)
    print("reproduce: python benchmarks/serving_speed.py")
    return 0


if __name__ == "__main__":
    sys.exit(main())
