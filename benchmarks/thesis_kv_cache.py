"""Thesis experiment 2: decode time with the KV cache on vs off, four models on an A100-80GB.

The thesis (reproducibility capsule, experiment 2) compared KV cache on and off for Llama-3-8B,
Llama-2-13B, Granite-20B and MPT-30B on an A100. With the cache, decode is linear in the output
length (``n * T_t``); without it every step recomputes the whole sequence, so decode is
quadratic (``n (n + 1) / 2 * T_t``) and the off/on ratio is ``(n + 1) / 2``.

Each output length is one request (prompt ``--input-tokens``, default 512) simulated in memory
with ``kavier.simulate(requests=...)``, thesis preset. A model that does not fit on the GPU gets
Kavier's one-line error, which is printed instead of its rows.

    python benchmarks/thesis_kv_cache.py
    python benchmarks/thesis_kv_cache.py --gpu A100-40GB      # shows the does-not-fit errors

Needs no data from ../shared. Not run by pytest.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import command_line, machine_lines, table, use_repo_source  # noqa: E402

use_repo_source()

import kavier  # noqa: E402
from kavier.errors import KavierError  # noqa: E402
from kavier.library.catalog import load_catalog  # noqa: E402

THESIS_MODELS = ["Llama-3-8B", "Llama-2-13B", "Granite-20B", "MPT-30B"]
OUTPUT_LENGTHS = [128, 256, 512, 1024, 2048, 4096]
# The thesis's own figures (capsule experiment2/figures_generation/data.csv: A100, one trace,
# GPU-hours): decode with KV on and off. Printed for comparison of the ratios.
THESIS_DECODE_H = {
    "Llama-3-8B": (117.20, 58006.02),
    "Llama-2-13B": (190.45, 94259.84),
    "Granite-20B": (293.01, 145015.13),
    "MPT-30B": (439.52, 217522.70),
}


def decode_s(model: str, gpu: str, n_in: int, n_out: int, kv: bool) -> tuple[float, float]:
    """(prefill_s, decode_s) of one request."""
    res = kavier.simulate(
        llm=model,
        gpu=gpu,
        preset="thesis",
        kv_cache=kv,
        prefix_len=0,
        requests={"num_input_tokens": [n_in], "num_output_tokens": [n_out], "arrival_s": [0.0]},
    )
    row = res.requests.to_pylist()[0]
    return row["prefill_s"], row["decode_s"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--gpu", default="A100-80GB")
    ap.add_argument("--models", default=",".join(THESIS_MODELS))
    ap.add_argument("--lengths", default=",".join(map(str, OUTPUT_LENGTHS)), help="output tokens")
    ap.add_argument("--input-tokens", type=int, default=512)
    args = ap.parse_args(argv)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    lengths = [int(x) for x in args.lengths.split(",") if x.strip()]

    print("# thesis_kv_cache", time.strftime("%Y-%m-%d"))
    print("reproduce:", command_line([sys.executable, str(Path(__file__).resolve()), *sys.argv[1:]]))
    for line in machine_lines():
        print(line)
    catalog = load_catalog()
    gpu = catalog.gpu(args.gpu)
    print(
        f"GPU {gpu.name}: {gpu.flops_fp16 / 1e12:g} TFLOP/s FP16 dense, "
        f"{gpu.memory_bandwidth / 1e9:,.0f} GB/s, {gpu.memory_bytes / 2**30:g} GiB; thesis preset "
        f"(Ce 0.30, Me 0.60); prompt {args.input_tokens} tokens, one request per output length"
    )
    t0 = time.perf_counter()
    on_4096: dict[str, float] = {}
    for model in models:
        spec = catalog.model(model)
        print(f"\n## {spec.name} (nominal {spec.nominal_params / 1e9:g}B parameters)")
        rows = []
        try:
            prev = None
            for n in lengths:
                pre, on = decode_s(model, args.gpu, args.input_tokens, n, True)
                _, off = decode_s(model, args.gpu, args.input_tokens, n, False)
                growth = ""
                if prev is not None:
                    growth = f"x{on / prev[0]:.2f} / x{off / prev[1]:.2f}"
                prev = (on, off)
                ctx = spec.max_context_tokens
                note = (
                    f"prompt+output {args.input_tokens + n:,} > context {ctx:,}"
                    if ctx and args.input_tokens + n > ctx
                    else ""
                )
                rows.append(
                    [
                        f"{n:,}",
                        f"{pre:.3f}",
                        f"{on:,.3f}",
                        f"{off:,.1f}",
                        f"{off / on:,.1f}",
                        f"{(n + 1) / 2:,.1f}",
                        growth,
                        note,
                    ]
                )
                if n == max(lengths):
                    on_4096[model] = on
        except KavierError as exc:
            print(f"does not run: {exc}")
            continue
        print(
            table(
                [
                    "output tokens",
                    "prefill s",
                    "decode s, KV on",
                    "decode s, KV off",
                    "off/on",
                    "(n+1)/2",
                    "growth per 2x n (on / off)",
                    "note",
                ],
                rows,
            )
        )
        print(f"time per output token T_t = {on / lengths[-1] * 1000:.3f} ms (decode with KV on / n)")
    print(f"\n({time.perf_counter() - t0:.2f} s for all simulations)")

    base = next(iter(on_4096.values()), None)
    if base and on_4096:
        print("\n## Across models (decode with KV on, relative to the first model) vs the thesis")
        tb = THESIS_DECODE_H.get(next(iter(on_4096)), (None, None))[0]
        rows = []
        for model, on in on_4096.items():
            th = THESIS_DECODE_H.get(model)
            rows.append(
                [
                    model,
                    f"{on / base:.3f}",
                    f"{th[0] / tb:.3f}" if th and tb else "",
                    f"{th[1] / th[0]:.1f}" if th else "",
                ]
            )
        print(
            table(
                [
                    "model",
                    "ours: decode on / first",
                    "thesis: decode on / first",
                    "thesis: off/on (its trace)",
                ],
                rows,
            )
        )
        print(
            "The thesis ran a trace (mixed output lengths), so its off/on ratio is "
            "E[n(n+1)/2]/E[n] over that trace, one number for every model; per model the "
            "ratio depends only on n, as here."
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
