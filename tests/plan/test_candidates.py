"""``kavier.plan.candidates``: GPU x TP candidates, aliases collapsed, fit and divisibility."""

from __future__ import annotations

from kavier.plan.candidates import candidates
from kavier.scenario import build_scenario


def test_candidates_filter_and_fit():
    base = build_scenario(None, {"llm": "Llama-3.1-70B"})
    cands = candidates(base, ["A100-80GB", "a100-80gb"], None)  # an alias collapses
    assert [(c.tp, c.unfit is None) for c in cands] == [(1, False), (2, True), (4, True), (8, True)]
    assert "does not fit" in cands[0].unfit
    odd = candidates(base, ["H100-SXM"], [3])
    assert "does not divide" in odd[0].unfit
