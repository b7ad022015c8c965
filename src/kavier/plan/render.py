"""Rich tables of a plan (the only module of the package that formats for a terminal)."""

from __future__ import annotations

import math

from rich.table import Table

from kavier.plan.evaluate import Evaluation
from kavier.plan.planner import CandidateResult, PlanResult


def _s(value: float | None, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return f"{value:.{digits}f}"


def _money(value: float) -> str:
    return f"${value:,.2f}" if value >= 1 else f"${value:,.4f}"


def _metrics(e: Evaluation) -> list[str]:
    s = e.summary
    return [
        _s(e.check.ttft_s),
        _s(e.check.tpot_s, 4),
        f"{e.check.goodput_fraction:.1%}",
        _money(s["cost_total_usd"]),
        _money(e.usd_per_hour),
        _money(s["usd_per_mtok"]) if math.isfinite(s["usd_per_mtok"]) else "n/a",
        f"{s['energy_facility_kwh']:,.3f}",
        f"{s['co2_operational_g']:,.0f} + {s['co2_embodied_g']:,.0f}",
    ]


METRIC_HEADERS = ("TTFT p{p} s", "TPOT p{p} s", "goodput", "cost", "$/h", "$/Mtok", "kWh", "CO2 g op+emb")


def plan_table(plan: PlanResult) -> Table:
    """Every candidate with its answer or why it has none; the winner marked and highlighted."""
    p = f"{plan.slo.percentile:g}"
    cheapest = plan.mode == "cheapest"
    title = (
        f"Kavier plan: cheapest configuration meeting {plan.slo.describe()}"
        if cheapest
        else f"Kavier plan: maximum arrival rate meeting {plan.slo.describe()}"
    )
    caption = "* answer; rows without an answer show their closest run" + (
        " (~ closest overall)" if plan.best_found is not None else ""
    )
    table = Table(title=title, title_justify="left", caption=caption, caption_justify="left")
    table.add_column("", no_wrap=True)
    table.add_column("GPU", no_wrap=True)
    table.add_column("TP", justify="right")
    if cheapest:
        table.add_column("replicas", justify="right", no_wrap=True)
    else:
        table.add_column("replicas", justify="right")
        table.add_column("rate x", justify="right", no_wrap=True)
        table.add_column("req/s", justify="right")
        table.add_column("$/1k req", justify="right")
    table.add_column("GPUs", justify="right")
    for header in METRIC_HEADERS:
        table.add_column(header.format(p=p), justify="right", no_wrap=True)
    table.add_column("runs", justify="right")
    width = len(table.columns)
    for i, r in enumerate(plan.results):
        table.add_row(*_row(plan, i, r, cheapest, width), style="bold green" if i == plan.winner else None)
    return table


def _row(plan: PlanResult, i: int, r: CandidateResult, cheapest: bool, width: int) -> list[str]:
    mark = "*" if i == plan.winner else ("~" if i == plan.best_found else "")
    head = [mark, r.candidate.gpu, str(r.candidate.tp)]
    e = r.answer or r.closest
    if e is None:  # does not fit: no run at all
        return [*head, r.status, *[""] * (width - 4)]
    if cheapest:
        what = [str(e.replicas) if r.ok else r.status.split(" at ")[0]]
    else:
        scale = f"{e.rate_scale:.3g}" + (" (cap)" if r.capped else "")
        what = [
            str(e.replicas),
            scale if r.ok else f"{r.status}",
            _s(e.offered_rate_rps, 2),
            _money(e.usd_per_1k_requests),
        ]
    return [*head, *what, str(e.summary["num_gpus"]), *_metrics(e), str(len(r.tried))]


def answer_line(plan: PlanResult) -> str:
    """One sentence with the answer (or the best found), its cost, energy and CO2."""
    r = plan.answer
    if r is None or r.answer is None:
        return "no configuration meets the SLOs"
    e = r.answer
    s = e.summary
    what = (
        f"{e.replicas} x {e.gpu} (tp={e.tp}, {s['num_gpus']} GPUs)"
        if plan.mode == "cheapest"
        else f"{e.gpu} tp={e.tp} x {e.replicas} sustains rate_scale {e.rate_scale:.3g} "
        f"= {e.offered_rate_rps:.2f} req/s"
    )
    return (
        f"answer: {what}; p{plan.slo.percentile:g} TTFT {_s(e.check.ttft_s)} s, "
        f"TPOT {_s(e.check.tpot_s, 4)} s; cost {_money(s['cost_total_usd'])} over "
        f"{s['simulated_time_s']:,.0f} s ({_money(e.usd_per_hour)}/h); "
        f"{s['energy_facility_kwh']:,.3f} kWh; CO2 {s['co2_total_g']:,.0f} g "
        f"({s['co2_operational_g']:,.0f} operational + {s['co2_embodied_g']:,.0f} embodied)"
    )
