"""Command-line options shared by several commands (``run``, ``plan``), declared once.

Each alias is the ``Annotated`` type of one option; a command declares ``trace: opt.Trace = None``.
Only typer is imported here, so importing this module costs nothing at start-up.
"""

from __future__ import annotations

from typing import Annotated

import typer

Trace = Annotated[str | None, typer.Option("--trace", help="trace file (CSV, parquet, JSONL)")]
Llm = Annotated[str | None, typer.Option("--llm", help="model name or HF config.json")]
Workload = Annotated[
    str | None,
    typer.Option("--workload", help="generator without --trace: chat|poisson|gamma|closed-loop"),
]
NumRequests = Annotated[int | None, typer.Option("--num-requests", help="for poisson/gamma")]
Rate = Annotated[float | None, typer.Option("--rate", help="requests/s for poisson/gamma")]
InputTokens = Annotated[
    str | None,
    typer.Option("--input-tokens", help="length: 512 | uniform:LO:HI | lognormal:mean=M,cv=C"),
]
OutputTokens = Annotated[str | None, typer.Option("--output-tokens", help="length spec")]
ArrivalCv = Annotated[float | None, typer.Option("--arrival-cv", help="gamma arrivals' CV")]
NumSessions = Annotated[int | None, typer.Option("--num-sessions", help="chat sessions")]
Seed = Annotated[int | None, typer.Option("--seed", help="random seed")]
Catalog = Annotated[str | None, typer.Option("--catalog", help="user TOML catalogue")]
Pp = Annotated[int | None, typer.Option("--pp", help="pipeline stages per replica")]
Scheduler = Annotated[str | None, typer.Option("--scheduler", help="continuous|static|sequential")]
MaxNumSeqs = Annotated[int | None, typer.Option("--max-num-seqs", help="sequences per batch")]
MaxBatchedTokens = Annotated[int | None, typer.Option("--max-batched-tokens", help="tokens per iteration")]
WeightDtype = Annotated[str | None, typer.Option("--weight-dtype", help="bf16|fp16|fp8|int8|int4")]
KvDtype = Annotated[str | None, typer.Option("--kv-dtype", help="bf16|fp16|fp8|int8")]
Region = Annotated[str | None, typer.Option("--region", help="grid region, e.g. NL")]
CarbonIntensity = Annotated[float | None, typer.Option("--carbon-intensity", help="gCO2/kWh, constant")]
Pue = Annotated[str | None, typer.Option("--pue", help="PUE (>= 1) or a PUE series file")]
EnergyPricePerKwh = Annotated[
    float | None, typer.Option("--energy-price-per-kwh", help="US$ per kWh (facility)")
]
