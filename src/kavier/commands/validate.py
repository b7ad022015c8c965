"""``kavier validate [SUITE...]``: replay published measurements and print the errors per metric."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def validate(
    suites: Annotated[
        list[str] | None,
        typer.Argument(help="suites to run (default: all; see --list)", show_default=False),
    ] = None,
    list_suites: Annotated[bool, typer.Option("--list", help="list the suites and their data")] = False,
    data: Annotated[
        Path | None,
        typer.Option(
            "--data", help="folder of the measurement files (default: KAVIER_DATA or ../shared/data)"
        ),
    ] = None,
    by: Annotated[
        str | None, typer.Option("--by", help="also break the errors down by gpu, model or case")
    ] = None,
) -> None:
    """Replay published measurements (prefill, decode, throughput, energy, power) and print, per
    suite and metric, the mean absolute percentage error (MAPE) and the bias (mean signed error)
    of the predictions, fitted apart from held out."""
    from kavier.commands.console import console, new_table
    from kavier.errors import KavierError
    from kavier.validate.compare import FITTED, error_stats, grouped
    from kavier.validate.data import find
    from kavier.validate.splits import SPLITS, available
    from kavier.validate.suites import SUITES

    out = console("out")
    if list_suites:
        table = new_table(title="Validation suites", title_justify="left")
        for column in ("suite", "data", "what it compares"):
            table.add_column(column)
        for suite in SUITES.values():
            where = "built in" if suite.data_file is None else str(find(suite.data_file, data) or "not found")
            table.add_row(suite.name, where, suite.description)
        out.print(table)
        return
    names = suites or list(SUITES)
    unknown = [n for n in names if n not in SUITES]
    if unknown:
        raise KavierError(f"unknown suite {unknown[0]!r}; known: {', '.join(SUITES)}")
    if by not in (None, "gpu", "model", "case"):
        raise KavierError(f"--by {by!r}: use gpu, model or case")
    if "thesis-a10" in names:
        _print_thesis(out, new_table)
    comparisons = []
    splits = SPLITS if available() else {FITTED: None}
    for name in names:
        suite = SUITES[name]
        if suite.data_file is not None and find(suite.data_file, data) is None:
            console("err").print(
                f"{name}: skipped, {suite.data_file} not found (give --data DIR or set KAVIER_DATA)",
                highlight=False,
                markup=False,
            )
            continue
        if not suite.split_by_profile:
            comparisons += suite.run(data)
            continue
        for split, profile_for in splits.items():
            comparisons += suite.run(data, split=split, profile_for=profile_for)
    keys = ("suite", "metric", "split") if by is None else ("suite", "metric", "split", by)
    table = new_table(title="Predicted vs measured", title_justify="left")
    for column in (*keys, "n", "MAPE %", "bias %", "worst %"):
        table.add_column(
            column, justify="right" if column in ("n", "MAPE %", "bias %", "worst %") else "left"
        )
    for key, group in grouped(comparisons, keys).items():
        stats = error_stats(group)
        table.add_row(
            *key, str(stats.n), f"{stats.mape_pct:.1f}", f"{stats.bias_pct:+.1f}", f"{stats.worst_pct:.0f}"
        )
    out.print(table)
    out.print(
        "MAPE: mean |predicted - measured| / measured; bias: mean (predicted - measured) / measured "
        "(positive = predicted too high). fitted: the shipped profiles, fitted on these measurements; "
        "held out: GPU / model: refitted without that GPU's / model's rows (another GPU's efficiencies "
        "stand in for a held-out GPU, as for a GPU nobody measured); held out: shipped: the shipped "
        "profiles on a suite none of them was fitted on.",
        highlight=False,
    )


def _print_thesis(out, new_table) -> None:
    """The thesis experiment's tables and its two MAPEs, as the thesis reports them."""
    from kavier.commands.console import styled
    from kavier.validate.thesis_a10 import EXPERIMENTS

    report = EXPERIMENTS["thesis-a10"]()
    for part in report.parts:
        table = new_table(title=part.title, title_justify="left")
        for col in part.columns:
            table.add_column(col, justify="right")
        for row in part.rows:
            table.add_row(*row)
        out.print(table)
        out.print(styled(f"MAPE {part.name}: ", (f"{part.mape_pct:.2f} %", "bold"), f" ({part.note})"))
