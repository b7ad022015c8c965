"""``kavier report RESULTS... --out report.html``: one self-contained HTML page about a sweep."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def report(
    results: Annotated[
        list[Path],
        typer.Argument(
            help="a `kavier sweep` results folder (runs.parquet), or one or more `kavier run` folders"
        ),
    ],
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="HTML file to write (default: RESULTS/report.html for one folder, else ./report.html)",
        ),
    ] = None,
    title: Annotated[str | None, typer.Option("--title", help="page title")] = None,
) -> None:
    """Write one self-contained HTML page: run table, latency/throughput curves against load,
    energy and CO2 per Mtoken, cache-hit curves and the cost / TTFT p99 / CO2 Pareto front.

    The page needs no network to view (figures are inline SVG).
    """
    from kavier.commands.console import console as _console

    console = _console("out")
    from kavier.report.html import write_report

    path = write_report(results, out, title)
    console.print(str(path), highlight=False)
