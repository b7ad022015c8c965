"""The two planning modes over GPU x TP candidates, sequentially or in worker processes.

- :func:`plan_cheapest`: for every candidate, the fewest replicas meeting the SLOs at the
  workload's load (:func:`kavier.plan.search.min_feasible`); the answer is the feasible
  candidate with the lowest simulated total cost of serving the workload (``cost_total_usd``:
  GPU-hours over the simulated period + facility energy), ties broken by fewer GPUs, then less
  energy.
- :func:`plan_max_rate`: for every candidate at a fixed replica count, the largest arrival-rate
  multiplier ``rate_scale`` still meeting the SLOs
  (:func:`kavier.plan.search.max_feasible_scale`); the answer is the candidate with the lowest
  cost per request at its maximum rate.

Candidates are independent, so with ``jobs > 1`` each is searched in its own process (spawned;
results do not depend on ``jobs``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal

from kavier.errors import ScenarioError
from kavier.plan.candidates import Candidate, candidates
from kavier.plan.evaluate import Evaluation, Evaluator
from kavier.plan.search import max_feasible_scale, min_feasible
from kavier.plan.slo import SloSpec
from kavier.scenario import Scenario

Mode = Literal["cheapest", "max_rate"]


@dataclass(frozen=True)
class PlanSettings:
    """What to search: candidate GPUs and TP degrees, limits and tolerances."""

    gpus: tuple[str, ...]
    tps: tuple[int, ...] | None = None  # None: 1, 2, 4, 8 where the heads divide
    max_replicas: int = 64
    replicas: int | None = None  # max-rate mode: replicas per candidate (default: scenario's or 1)
    tolerance: float = 0.02  # max-rate mode: relative width of the final bracket
    # max-rate mode searches rate_scale within [start x min_scale, start x max_scale], start
    # being the scenario's rate_scale (1 unless given): runs at tiny rates simulate long spans.
    min_scale: float = 1.0 / 64
    max_scale: float = 1024.0
    jobs: int = 1

    def __post_init__(self) -> None:
        if not self.gpus:
            raise ScenarioError("give at least one GPU to plan for (--gpu-types A100-80GB,H100-SXM)")
        if self.max_replicas < 1:
            raise ScenarioError(f"--max-replicas {self.max_replicas}: must be >= 1")
        if self.replicas is not None and self.replicas < 1:
            raise ScenarioError(f"--replicas {self.replicas}: must be >= 1")
        if not 0 < self.tolerance < 1:
            raise ScenarioError(f"--tolerance {self.tolerance}: must be in (0, 1), e.g. 0.02")
        if any(t < 1 for t in self.tps or ()):
            raise ScenarioError(f"--tp {','.join(map(str, self.tps or ()))}: degrees must be >= 1")


@dataclass
class CandidateResult:
    """One candidate's search: its answer (replicas or rate multiplier) and every run tried."""

    candidate: Candidate
    status: str  # "ok", or why there is no answer
    answer: Evaluation | None = None  # the run at the answer
    closest: Evaluation | None = None  # without an answer: the best run seen
    tried: list[Evaluation] = field(default_factory=list)
    capped: bool = False  # max-rate: still meets the SLOs at max_scale

    @property
    def ok(self) -> bool:
        """True when the candidate has an answer."""
        return self.answer is not None

    def to_json_dict(self) -> dict[str, Any]:
        """Plain JSON values."""
        return {
            "gpu": self.candidate.gpu,
            "tp": self.candidate.tp,
            "status": self.status,
            "answer": self.answer.to_json_dict() if self.answer else None,
            "closest": self.closest.to_json_dict() if self.closest else None,
            "capped": self.capped,
            "evaluations": [e.to_json_dict() for e in self.tried],
        }


@dataclass
class PlanResult:
    """A plan: mode, SLOs, every candidate's result and the winner (None if none is feasible)."""

    mode: Mode
    slo: SloSpec
    settings: PlanSettings
    base: Scenario
    results: list[CandidateResult]
    winner: int | None
    wall_time_s: float
    best_found: int | None = None  # without a winner: the candidate that came closest

    @property
    def evaluations(self) -> int:
        """Simulations run in total."""
        return sum(len(r.tried) for r in self.results)

    @property
    def answer(self) -> CandidateResult | None:
        """The winning candidate's result."""
        return None if self.winner is None else self.results[self.winner]

    def to_json_dict(self) -> dict[str, Any]:
        """Everything ``--out plan.json`` holds (plain JSON values)."""
        s = self.settings
        return {
            "mode": self.mode,
            "feasible": self.winner is not None,
            "answer": self.answer.to_json_dict()["answer"] if self.answer else None,
            "best_found": (
                self.results[self.best_found].to_json_dict()["closest"]
                if self.best_found is not None
                else None
            ),
            "slo": self.slo.to_json_dict(),
            "settings": {
                "gpus": list(s.gpus),
                "tps": list(s.tps) if s.tps else None,
                "max_replicas": s.max_replicas,
                "replicas": s.replicas,
                "tolerance": s.tolerance,
                "min_scale": s.min_scale,
                "max_scale": s.max_scale,
            },
            "candidates": [r.to_json_dict() for r in self.results],
            "evaluations": self.evaluations,
            "wall_time_s": self.wall_time_s,
            "scenario": self.base.to_json_dict(),
        }


def _closeness(e: Evaluation) -> tuple[float, float]:
    """Sort key for 'came closest' among failing runs: most goodput, then lowest TTFT."""
    ttft = e.check.ttft_s
    return (-e.check.goodput_fraction, ttft if math.isfinite(ttft) else math.inf)


def plateau(a: Evaluation, b: Evaluation, slo: SloSpec, rel: float = 0.01) -> bool:
    """True when ``b`` (twice ``a``'s replicas, both failing) equals ``a`` within ``rel`` in
    every judged latency and shows no backlog: more replicas will not meet the SLOs,
    the targets lie below the workload's latency floor on this hardware (a heuristic: it
    assumes that once doubling the replicas changes nothing, doubling again will not either)."""
    pairs = []
    if slo.ttft_s is not None:
        pairs += [(a.check.ttft_s, b.check.ttft_s), (a.check.tail_ttft_s, b.check.tail_ttft_s)]
    if slo.tpot_s is not None:
        pairs += [(a.check.tpot_s, b.check.tpot_s), (a.check.tail_tpot_s, b.check.tail_tpot_s)]
    if slo.min_goodput_fraction is not None:
        pairs.append((1 - a.check.goodput_fraction, 1 - b.check.goodput_fraction))
    if b.check.tail_queue_p50_s > slo.queue_limit_s:
        return False
    return all(math.isfinite(x) and math.isfinite(y) and math.isclose(x, y, rel_tol=rel) for x, y in pairs)


def search_cheapest(
    base: Scenario,
    slo: SloSpec,
    settings: PlanSettings,
    cand: Candidate,
    on_eval: Callable[[Evaluation], None] | None = None,
) -> CandidateResult:
    """The fewest replicas of ``cand`` meeting ``slo`` at ``base``'s load (and rate_scale)."""
    if cand.unfit:
        return CandidateResult(cand, cand.unfit)
    evaluate = Evaluator(base, slo, on_eval)

    def run(n: int) -> Evaluation:
        return evaluate(cand.gpu, cand.tp, n, base.rate_scale)

    plateaued: list[tuple[Evaluation, Evaluation]] = []

    def flat(m: int, n: int) -> bool:
        if plateau(run(m), run(n), slo):
            plateaued.append((run(m), run(n)))
        return bool(plateaued)

    found = min_feasible(lambda n: run(n).meets, 1, settings.max_replicas, flat)
    tried = sorted(evaluate.cache.values(), key=lambda e: e.replicas)
    if found.value is None:
        closest = min(tried, key=_closeness)
        if found.gave_up:
            a, b = plateaued[0]
            why = b.check.reasons[0] if b.check.reasons else "SLOs missed"
            status = f"latency floor: {why} at {a.replicas} and {b.replicas} replicas"
        else:
            status = f"needs > {settings.max_replicas} replicas (closest at {closest.replicas})"
        return CandidateResult(cand, status, None, closest, tried)
    answer = evaluate(cand.gpu, cand.tp, found.value, base.rate_scale)
    return CandidateResult(cand, "ok", answer, None, tried)


def replicas_for_max_rate(base: Scenario, settings: PlanSettings) -> int:
    """Replicas per candidate in max-rate mode: ``--replicas``, else the scenario's, else 1."""
    return settings.replicas or base.replicas or 1


def search_max_rate(
    base: Scenario,
    slo: SloSpec,
    settings: PlanSettings,
    cand: Candidate,
    on_eval: Callable[[Evaluation], None] | None = None,
) -> CandidateResult:
    """The largest ``rate_scale`` at which ``cand`` (fixed replicas) meets ``slo``."""
    if cand.unfit:
        return CandidateResult(cand, cand.unfit)
    replicas = replicas_for_max_rate(base, settings)
    evaluate = Evaluator(base, slo, on_eval)
    start = base.rate_scale
    found = max_feasible_scale(
        lambda s: evaluate(cand.gpu, cand.tp, replicas, s).meets,
        start=start,
        tolerance=settings.tolerance,
        min_scale=start * settings.min_scale,
        max_scale=start * settings.max_scale,
    )
    tried = sorted(evaluate.cache.values(), key=lambda e: e.rate_scale)
    if found.value is None:
        closest = min(tried, key=_closeness)
        status = f"fails even at rate_scale {start * settings.min_scale:.3g}"
        return CandidateResult(cand, status, None, closest, tried)
    answer = evaluate(cand.gpu, cand.tp, replicas, found.value)
    return CandidateResult(cand, "ok", answer, None, tried, capped=found.capped)


def _search(args: tuple[Mode, Scenario, SloSpec, PlanSettings, Candidate]) -> CandidateResult:
    """Worker entry point (top level, so spawned processes can import it)."""
    mode, base, slo, settings, cand = args
    fn = search_cheapest if mode == "cheapest" else search_max_rate
    return fn(base, slo, settings, cand)


def _check_base(base: Scenario, mode: Mode) -> None:
    if base.perf_model != "serving":
        raise ScenarioError("kavier plan needs the serving engine (preset serving), not the thesis model")
    if base.replica_groups:
        raise ScenarioError("kavier plan searches one GPU type per configuration; drop replica_groups")
    if mode == "max_rate" and base.workload == "closed-loop" and not base.trace:
        raise ScenarioError(
            "--max-rate needs arrivals (a trace or a poisson/gamma/chat generator); a closed-loop "
            "workload's load is set by --concurrency"
        )


def _run(
    mode: Mode,
    base: Scenario,
    slo: SloSpec,
    settings: PlanSettings,
    on_eval: Callable[[Evaluation], None] | None,
    on_candidate: Callable[[CandidateResult], None] | None,
) -> PlanResult:
    start = time.perf_counter()
    _check_base(base, mode)
    cands = candidates(base, list(settings.gpus), list(settings.tps) if settings.tps else None)
    if all(c.unfit for c in cands):
        reasons = "; ".join(dict.fromkeys(f"{c.label}: {c.unfit}" for c in cands))
        raise ScenarioError(
            f"{base.llm} fits none of the candidates ({reasons}); add GPUs, --tp or --weight-dtype"
        )
    fit = [c for c in cands if not c.unfit]
    jobs = max(1, min(settings.jobs, len(fit)))
    results: dict[Candidate, CandidateResult] = {}
    for c in cands:
        if c.unfit:
            results[c] = CandidateResult(c, c.unfit)
    if jobs == 1:
        fn = search_cheapest if mode == "cheapest" else search_max_rate
        for c in fit:
            results[c] = fn(base, slo, settings, c, on_eval)
            if on_candidate is not None:
                on_candidate(results[c])
    else:
        import multiprocessing

        with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = {c: pool.submit(_search, (mode, base, slo, settings, c)) for c in fit}
            for c, future in futures.items():
                results[c] = future.result()
                if on_candidate is not None:
                    on_candidate(results[c])
    ordered = [results[c] for c in cands]
    winner = _winner(mode, ordered)
    best = None
    if winner is None:
        tried = [(i, r.closest) for i, r in enumerate(ordered) if r.closest is not None]
        best = min(tried, key=lambda t: _closeness(t[1]))[0] if tried else None
    return PlanResult(mode, slo, settings, base, ordered, winner, time.perf_counter() - start, best)


def _winner(mode: Mode, results: list[CandidateResult]) -> int | None:
    ok = [(i, r.answer) for i, r in enumerate(results) if r.answer is not None]
    if not ok:
        return None
    if mode == "cheapest":

        def key(item: tuple[int, Evaluation]) -> tuple[float, int, float, int]:
            e = item[1].summary
            return (e["cost_total_usd"], e["num_gpus"], e["energy_facility_kwh"], item[0])

    else:

        def key(item: tuple[int, Evaluation]) -> tuple[float, int, float, int]:
            e = item[1]
            return (e.usd_per_1k_requests, e.summary["num_gpus"], -e.rate_scale, item[0])

    return min(ok, key=key)[0]  # type: ignore[arg-type]


def plan_cheapest(
    base: Scenario,
    slo: SloSpec,
    settings: PlanSettings,
    on_eval: Callable[[Evaluation], None] | None = None,
    on_candidate: Callable[[CandidateResult], None] | None = None,
) -> PlanResult:
    """Mode 1: the cheapest GPU x TP x replicas meeting ``slo`` at ``base``'s load."""
    return _run("cheapest", base, slo, settings, on_eval, on_candidate)


def plan_max_rate(
    base: Scenario,
    slo: SloSpec,
    settings: PlanSettings,
    on_eval: Callable[[Evaluation], None] | None = None,
    on_candidate: Callable[[CandidateResult], None] | None = None,
) -> PlanResult:
    """Mode 2: each candidate's largest sustainable rate multiplier at fixed replicas."""
    return _run("max_rate", base, slo, settings, on_eval, on_candidate)
