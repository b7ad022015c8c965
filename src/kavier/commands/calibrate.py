"""``kavier calibrate MEASUREMENTS.csv --llm MODEL --gpu GPU --out profile.toml``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def calibrate(
    measurements: Annotated[
        Path, typer.Argument(help="measured prefill/decode times (Splitwise or simple CSV layout)")
    ],
    llm: Annotated[str, typer.Option("--llm", help="model name or HF config.json")],
    gpu: Annotated[str, typer.Option("--gpu", help="GPU name (see `kavier library`)")],
    out: Annotated[
        Path | None, typer.Option("--out", help="write the fitted constants to this profile TOML")
    ] = None,
    fit_rows: Annotated[
        str | None,
        typer.Option("--fit-rows", help="rows to fit on, e.g. 'batch_size<=8' (the rest are held out)"),
    ] = None,
    per_tp: Annotated[
        bool,
        typer.Option(
            "--per-tp",
            help="also fit each tensor-parallel degree on its own rows (tp.N tables in the profile)",
        ),
    ] = False,
    rows_model: Annotated[
        str | None,
        typer.Option("--rows-model", help="use the file's rows of this model name (e.g. llama2-70b)"),
    ] = None,
) -> None:
    """Fit the serving model's constants to measured times; report MAPE on held-out rows.

    Use the profile with ``kavier run --perf-profile profile.toml``.
    """
    from kavier.commands.console import console as _console

    console = _console("out")
    from kavier.perf.calibrate import calibrate_cli

    text = calibrate_cli(measurements, llm, gpu, out, fit_rows, per_tp, rows_model)
    console.print(text, highlight=False, markup=False)
    if out is not None:
        console.print(f"use it with: kavier run --perf-profile {out}", highlight=False, markup=False)
