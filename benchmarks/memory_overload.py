"""Peak memory of an overloaded serving run against a healthy one (issue 14, bounded memory).

One A10 serving Llama-3-8B handles about 0.94 requests/s of the default lognormal 1000/250-token
requests. Offered 100 requests/s it queues everything: the arrivals end after N / 100 s, then the
queue drains for about N / 0.94 s of simulated time (12 days for a million requests) with
millions of iterations and preemptions. The healthy case spreads the same requests over 40 A10
replicas at 20 requests/s (about half their capacity). Memory should follow what is in flight
(the queued requests), not the simulated seconds, the iterations or the preemptions.

Each case is one ``kavier run`` process writing every output (export rate 1 s); the script prints
its peak RSS (``ru_maxrss`` from ``wait4``), wall time, the load average before and after, and
the command that reproduces it. ``--src`` runs another tree's ``src/`` as well (e.g. a worktree
of the commit before a change), interleaved with this one.

    python benchmarks/memory_overload.py                          # 100k and 200k, overloaded + healthy
    python benchmarks/memory_overload.py --requests 1000000       # the issue's case (~3 min each, quiet)
    python benchmarks/memory_overload.py --src before=/tmp/mem_before/src --requests 100000
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

from _common import SRC, WORK, command_line, fmt_bytes, machine_lines, run_measured, table


def case_args(kind: str, requests: int) -> list[str]:
    """``kavier run`` arguments of the overloaded (1 A10) or healthy (40 A10) case."""
    common = ["--gpu", "A10", "--workload", "poisson", "--num-requests", str(requests)]
    if kind == "overloaded":
        return [*common, "--rate", "100"]
    return [*common, "--rate", "20", "--gpus", "40"]


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, nargs="+", default=[100_000, 200_000], help="request counts")
    parser.add_argument(
        "--kinds", nargs="+", default=["overloaded", "healthy"], choices=["overloaded", "healthy"]
    )
    parser.add_argument(
        "--src", action="append", default=[], metavar="LABEL=PATH", help="another tree's src/ to run too"
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs of each case and tree (interleaved)")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds before a run is killed")
    parser.add_argument("--work", type=Path, default=WORK / "memory_overload")
    args = parser.parse_args()
    trees = [("this", SRC)]
    for spec in args.src:
        label, _, path = spec.partition("=")
        if not path:
            parser.error(f"--src {spec}: give LABEL=PATH")
        trees.append((label, Path(path).resolve()))
    for line in machine_lines():
        print(line)
    args.work.mkdir(parents=True, exist_ok=True)
    rows = []
    for requests in args.requests:
        for kind in args.kinds:
            for rep in range(args.repeat):
                for label, src in trees:
                    out = args.work / f"{kind}_{requests}_{label}"
                    shutil.rmtree(out, ignore_errors=True)
                    argv = [
                        sys.executable,
                        "-m",
                        "kavier",
                        "run",
                        *case_args(kind, requests),
                        "-o",
                        str(out),
                        "-q",
                    ]
                    env = dict(os.environ, PYTHONPATH=str(src))
                    before = load()
                    result = run_measured(
                        argv, env=env, timeout_s=args.timeout, log_path=args.work / f"{out.name}.log"
                    )
                    after = load()
                    status = "ok" if result.returncode == 0 else result.killed or f"exit {result.returncode}"
                    simulated = preemptions = "?"
                    if status == "ok":
                        summary = json.loads((out / "summary.json").read_text())
                        simulated = f"{summary['simulated_time_s']:,.0f} s"
                        preemptions = f"{summary['preemptions']:,}"
                    cmd = command_line([*argv[:-3], "-o", "OUT", "-q"], f"PYTHONPATH={src}")
                    print(
                        f"{kind} {requests:,} [{label}] run {rep + 1}: {status}, peak RSS "
                        f"{fmt_bytes(result.peak_rss_bytes)}, wall {result.wall_s:.1f} s, "
                        f"simulated {simulated}, preemptions {preemptions}, load {before} -> {after}\n"
                        f"  {cmd}",
                        flush=True,
                    )
                    rows.append(
                        [
                            kind,
                            f"{requests:,}",
                            label,
                            status,
                            simulated,
                            preemptions,
                            fmt_bytes(result.peak_rss_bytes),
                            f"{result.wall_s:.1f} s",
                            f"{before} / {after}",
                        ]
                    )
    headers = [
        "case",
        "requests",
        "tree",
        "status",
        "simulated",
        "preemptions",
        "peak RSS",
        "wall",
        "load before / after",
    ]
    print(table(headers, rows))


if __name__ == "__main__":
    main()
