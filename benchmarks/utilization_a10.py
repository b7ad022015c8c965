"""How close is the simulated GPU utilisation to nvidia-smi on an A10 running Llama-3-8B (vLLM)?

Data: ../shared/data/measurements/a10_llama3_8b_vllm_gpu_utilization.csv (Tracer data, MIT):
``util_gpu`` (%) sampled every ~100 ms while single requests ran (10 prompts of 10 input tokens,
several runs each). A run is a stretch of samples without a gap longer than 1 s. For each run we
simulate the same request (thesis preset, export rate 0.1 s) and compare: the mean utilisation
over the run, the share of samples below 90 % (warm-up/cool-down), and the run's duration.

Reproduce: python benchmarks/utilization_a10.py
"""

from __future__ import annotations

import csv
import sys
from collections import defaultdict
from datetime import datetime
from pathlib import Path

import numpy as np

import kavier

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "measurements"
FILE = DATA / "a10_llama3_8b_vllm_gpu_utilization.csv"
GAP_S = 1.0


def runs() -> list[dict]:
    """Split the samples into runs of one request each."""
    by_prompt: dict[str, list[tuple[float, float, int, int]]] = defaultdict(list)
    with open(FILE, newline="") as f:
        for row in csv.DictReader(f):
            t = datetime.strptime(row["timestamp"], "%Y/%m/%d %H:%M:%S.%f").timestamp()
            by_prompt[row["prompt_id"]].append(
                (t, float(row["util_gpu"]), int(row["input_tokens"]), int(row["output_tokens"]))
            )
    out = []
    for prompt, samples in by_prompt.items():
        samples.sort()
        current = [samples[0]]
        for sample in samples[1:]:
            if sample[0] - current[-1][0] > GAP_S:
                out.append((prompt, current))
                current = []
            current.append(sample)
        out.append((prompt, current))
    result = []
    for prompt, samples in out:
        util = np.array([s[1] for s in samples]) / 100.0
        result.append(
            {
                "prompt": prompt,
                "n_in": samples[0][2],
                "n_out": samples[0][3],
                "samples": len(samples),
                "duration_s": samples[-1][0] - samples[0][0] + 0.1,
                "util_mean": float(util.mean()),
                "low_share": float(np.mean(util < 0.9)),
            }
        )
    return result


def main() -> int:
    if not FILE.is_file():
        print(f"skipped: {FILE} not found (../shared/data is not beside the project)")
        return 0
    measured = runs()
    req = {
        "num_input_tokens": [r["n_in"] for r in measured],
        "num_output_tokens": [r["n_out"] for r in measured],
        "arrival_s": np.arange(len(measured)) * 10_000.0,
    }
    sim = kavier.simulate(requests=req, llm="Llama-3-8B", gpu="A10", export_rate=0.1)
    ts = sim.timeseries
    t = ts.column("time_s").to_numpy()
    u = ts.column("gpu_utilization").to_numpy()
    start = sim.requests.column("start_s").to_numpy()
    finish = sim.requests.column("finish_s").to_numpy()
    print(
        f"{'prompt':>6} {'out tok':>7} {'meas s':>7} {'sim s':>7} {'meas util':>9} {'sim util':>8} "
        f"{'meas <90%':>9} {'sim <90%':>8}"
    )
    errors, low_meas, low_sim, dur_err = [], [], [], []
    for r, s0, s1 in zip(measured, start, finish, strict=True):
        inside = (t >= s0 - 1e-9) & (t < s1 - 1e-9)
        su = u[inside]
        sim_mean = float(su.mean())
        sim_low = float(np.mean(su < 0.9))
        errors.append(sim_mean - r["util_mean"])
        low_meas.append(r["low_share"])
        low_sim.append(sim_low)
        dur_err.append((s1 - s0 - r["duration_s"]) / r["duration_s"])
        print(
            f"{r['prompt']:>6} {r['n_out']:>7} {r['duration_s']:>7.2f} {s1 - s0:>7.2f} "
            f"{r['util_mean']:>9.1%} {sim_mean:>8.1%} {r['low_share']:>9.1%} {sim_low:>8.1%}"
        )
    errors = np.array(errors)
    print(f"\nruns: {len(measured)}, samples: {sum(r['samples'] for r in measured)}")
    measured_mean = np.array([r["util_mean"] for r in measured])
    print(
        f"mean utilisation while busy: measured {measured_mean.mean():.1%}, "
        f"simulated {(measured_mean + errors).mean():.1%}"
    )
    print(
        f"mean absolute error of per-run mean utilisation: {np.mean(np.abs(errors)) * 100:.2f} points "
        f"(bias {np.mean(errors) * 100:+.2f} points)"
    )
    print(f"share of samples below 90 %: measured {np.mean(low_meas):.1%}, simulated {np.mean(low_sim):.1%}")
    print(f"run duration error (simulated vs measured span): mean {np.mean(dur_err):+.1%}")
    print("reproduce: python benchmarks/utilization_a10.py")
    return 0


if __name__ == "__main__":
    sys.exit(main())
