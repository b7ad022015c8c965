"""``kavier plan``: capacity planning against latency SLOs (see :mod:`kavier.plan`).

Mode 1 (default): the cheapest GPU x TP x replicas meeting the SLOs at the workload's load.
Mode 2 (``--max-rate``): the largest arrival-rate multiplier each configuration sustains.
Every configuration is simulated in memory. One meets the SLOs when the percentile TTFT and
TPOT (``--slo-percentile``), over all requests and over the last arrivals (``--tail-fraction``),
are within the SLOs and the median queue of those last arrivals is within ``--max-queue``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from kavier.commands.scenario_options import scenario_command

# The scenario keys plan takes as options (flags as in `kavier run`); its --gpu-types, --tp,
# --replicas and --slo-* are its own (candidate lists, the searched replicas, the SLOs).
SCENARIO_KEYS = (
    "trace",
    "llm",
    "workload",
    "num_requests",
    "rate",
    "rate_scale",
    "input_tokens",
    "output_tokens",
    "arrival_cv",
    "num_sessions",
    "seed",
    "catalog",
    "pp",
    "router",
    "scheduler",
    "engine",
    "chunked_prefill",
    "max_num_seqs",
    "max_batched_tokens",
    "weight_dtype",
    "kv_dtype",
    "prefix_cache",
    "region",
    "carbon_intensity",
    "pue",
    "energy_price_per_kwh",
)


def _ints(flag: str, text: str | None) -> tuple[int, ...] | None:
    from kavier.errors import ScenarioError

    if text is None:
        return None
    try:
        values = tuple(int(p) for p in text.replace(";", ",").split(",") if p.strip())
    except ValueError:
        raise ScenarioError(f"{flag} {text!r}: give whole numbers separated by commas, e.g. 1,2,4") from None
    if not values:
        raise ScenarioError(f"{flag} {text!r}: give at least one value")
    return values


def _seconds(flag: str, value: Any) -> float | None:
    from kavier.errors import ScenarioError
    from kavier.scenario import parse_duration

    if value is None:
        return None
    try:
        seconds = float(parse_duration(value))
    except (TypeError, ValueError) as exc:
        raise ScenarioError(f"{flag} {value!r}: {exc}") from None
    if not seconds > 0:
        raise ScenarioError(f"{flag} {value!r}: must be > 0 seconds")
    return seconds


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` as JSON to ``path`` via a temporary file and a rename (never half-written)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(json.dumps(data, indent=2, allow_nan=False) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@scenario_command(SCENARIO_KEYS)
def plan(
    scenario_file: Annotated[
        Path | None,
        typer.Argument(help="scenario file (TOML, YAML or JSON); flags override it", show_default=False),
    ] = None,
    gpus: Annotated[
        str | None,
        typer.Option(
            "--gpu-types",
            "--gpus",
            help="candidate GPU names, comma-separated (default: the scenario's); --gpus is an older "
            "spelling (for kavier run, --gpus is a count)",
        ),
    ] = None,
    tp: Annotated[
        str | None, typer.Option("--tp", help="candidate TP degrees, e.g. 1,2 (default 1,2,4,8 that fit)")
    ] = None,
    max_replicas: Annotated[int, typer.Option("--max-replicas", help="largest replica count searched")] = 64,
    replicas: Annotated[
        int | None, typer.Option("--replicas", help="--max-rate: replicas per configuration (default 1)")
    ] = None,
    slo_ttft: Annotated[str | None, typer.Option("--slo-ttft", help="TTFT SLO, s (or 500ms)")] = None,
    slo_tpot: Annotated[str | None, typer.Option("--slo-tpot", help="TPOT SLO, s (or 50ms)")] = None,
    slo_percentile: Annotated[
        float, typer.Option("--slo-percentile", help="the percentile that must meet the SLOs")
    ] = 99.0,
    min_goodput_fraction: Annotated[
        float | None, typer.Option("--min-goodput-fraction", help="also: requests meeting both SLOs, 0-1")
    ] = None,
    tail_fraction: Annotated[
        float,
        typer.Option("--tail-fraction", help="last arrivals that must meet the SLOs too (backlog guard)"),
    ] = 0.1,
    max_queue: Annotated[
        str | None,
        typer.Option("--max-queue", help="tail median queue limit, s (default: the TTFT SLO, else 1 s)"),
    ] = None,
    max_rate: Annotated[
        bool, typer.Option("--max-rate", help="find the largest arrival-rate multiplier instead")
    ] = False,
    tolerance: Annotated[
        float, typer.Option("--tolerance", help="--max-rate: relative precision of the multiplier")
    ] = 0.02,
    jobs: Annotated[
        int, typer.Option("--jobs", "-j", help="candidates searched in parallel processes (0 = CPU count)")
    ] = 0,
    pessimistic: Annotated[
        bool,
        typer.Option(
            "--pessimistic",
            help="size against the upper end of the predictions' 80 % band (the profiles' held-out errors)",
        ),
    ] = False,
    out_path: Annotated[Path | None, typer.Option("--out", help="write the plan as JSON here")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress lines")] = False,
    *,
    overrides: dict[str, Any],
) -> None:
    """Capacity planning: the cheapest GPU x TP x replicas meeting TTFT/TPOT SLOs at the
    workload's load, or (--max-rate) the largest arrival rate a configuration sustains.
    """
    from kavier.commands.console import console as _console
    from kavier.errors import ScenarioError
    from kavier.plan import PlanSettings, SloSpec, plan_cheapest, plan_max_rate
    from kavier.plan.render import answer_line, plan_table
    from kavier.scenario import build_scenario

    err, console = _console("err"), _console("out")

    base = build_scenario(scenario_file, overrides)
    ttft = _seconds("--slo-ttft", slo_ttft) if slo_ttft is not None else base.slo_ttft
    tpot = _seconds("--slo-tpot", slo_tpot) if slo_tpot is not None else base.slo_tpot
    if ttft is None and tpot is None:
        raise ScenarioError("give an SLO to plan for: --slo-ttft and/or --slo-tpot (seconds)")
    if pessimistic:
        ttft, tpot = _pessimistic_targets(base, ttft, tpot, err)
    try:
        slo = SloSpec(
            ttft,
            tpot,
            slo_percentile,
            min_goodput_fraction,
            tail_fraction,
            _seconds("--max-queue", max_queue),
        )
    except ValueError as exc:
        raise ScenarioError(str(exc)) from None
    if replicas is not None and not max_rate:
        raise ScenarioError("--replicas fixes the replicas for --max-rate; without it plan searches replicas")
    names = tuple(g.strip() for g in (gpus or base.gpu).split(",") if g.strip())
    settings = PlanSettings(
        gpus=names,
        tps=_ints("--tp", tp),
        max_replicas=max_replicas,
        replicas=replicas,
        tolerance=tolerance,
        jobs=jobs if jobs > 0 else (os.cpu_count() or 1),
    )

    progress = {} if quiet else _progress_printers(err, max_rate)
    run = plan_max_rate if max_rate else plan_cheapest
    result = run(base, slo, settings, **progress)
    console.print(plan_table(result))
    console.print(answer_line(result), highlight=False, soft_wrap=True)
    console.print(
        f"{result.evaluations} simulations in {result.wall_time_s:.1f} s", highlight=False, style="dim"
    )
    if out_path is not None:
        write_json_atomic(out_path, result.to_json_dict())
        console.print(f"wrote {out_path}", highlight=False)
    if result.winner is None:
        _fail_without_winner(err, result, slo, max_rate, max_replicas)


def _pessimistic_targets(base: Any, ttft: float | None, tpot: float | None, err: Any) -> tuple:
    """SLO targets tightened so that a prediction at the upper end of its 80 % band still meets
    them: a latency predicted ``x`` may really be ``x / (1 + q10)`` (q10: the 10th percentile of
    the held-out relative errors of the engine's profiles)."""
    from kavier.errors import ScenarioError
    from kavier.perf.profiles import band_limits, bands
    from kavier.registry import ENGINES

    found = bands(ENGINES.get(base.engine).profile_family)
    if not found:
        raise ScenarioError(f"--pessimistic: engine {base.engine} ships no bands; run without it")
    tightened = []
    for name, target in (("ttft", ttft), ("tpot", tpot)):
        if target is None or name not in found:
            tightened.append(target)
            continue
        _, high = band_limits(1.0, *found[name])  # a prediction of 1 s may be this many seconds
        tightened.append(target / max(high, 1.0))
        err.print(
            f"pessimistic: {name.upper()} SLO {target:g} s -> {tightened[-1]:.4g} s (predictions may be "
            f"{high:.2f}x too low)",
            highlight=False,
            markup=False,
        )
    return tightened[0], tightened[1]


def _progress_printers(err: Any, max_rate: bool) -> dict[str, Any]:
    """Callbacks printing each simulation's verdict and each candidate's answer to ``err``."""

    def on_eval(e: Any) -> None:
        what = f"x{e.replicas}" if not max_rate else f"x{e.replicas} at rate_scale {e.rate_scale:.4g}"
        verdict = "meets" if e.meets else "misses: " + "; ".join(e.check.reasons)
        err.print(
            f"  {e.gpu} tp={e.tp} {what}: {verdict} ({e.summary['wall_time_s']:.1f} s)",
            highlight=False,
            soft_wrap=True,
        )

    def on_candidate(r: Any) -> None:
        answer = r.answer
        if answer is None:
            text = r.status
        elif max_rate:
            text = f"rate_scale {answer.rate_scale:.4g} ({answer.offered_rate_rps:.2f} req/s)"
        else:
            text = f"{answer.replicas} replicas"
        err.print(f"  {r.candidate.label}: {text} ({len(r.tried)} runs)", highlight=False, soft_wrap=True)

    return {"on_eval": on_eval, "on_candidate": on_candidate}


def _fail_without_winner(err: Any, result: Any, slo: Any, max_rate: bool, max_replicas: int) -> None:
    """Say that no configuration met the SLOs (with the closest one tried) and exit 1."""
    best = result.results[result.best_found].closest if result.best_found is not None else None
    hint = ""
    if best is not None:
        hint = (
            f"; closest: {best.gpu} tp={best.tp} x{best.replicas} at rate_scale {best.rate_scale:.4g} "
            f"({'; '.join(best.check.reasons)})"
        )
    limit = f"--max-replicas {max_replicas}" if not max_rate else "the rate limits"
    from kavier.commands.console import styled

    err.print(
        styled(("error:", "bold red"), f" no configuration meets {slo.describe()} within {limit}{hint}"),
        highlight=False,
        soft_wrap=True,
    )
    sys.exit(1)
