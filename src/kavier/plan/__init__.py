"""Capacity planning (``kavier plan``): the cheapest configuration that meets latency SLOs at a
workload's load, or the highest arrival rate a configuration sustains.

- :mod:`kavier.plan.search`: pure searches over a monotone yes/no oracle (replicas, rate).
- :mod:`kavier.plan.slo`: does one run meet the SLOs (percentiles, goodput, backlog guard)?
- :mod:`kavier.plan.candidates`: GPU x TP candidates and whether the model fits.
- :mod:`kavier.plan.evaluate`: one simulated configuration -> an :class:`Evaluation` (cached).
- :mod:`kavier.plan.planner`: both modes, optionally in parallel processes; JSON-ready results.
- :mod:`kavier.plan.render`: rich tables of a plan.
"""

from kavier.plan.planner import PlanSettings, plan_cheapest, plan_max_rate
from kavier.plan.slo import SloSpec

__all__ = ["PlanSettings", "SloSpec", "plan_cheapest", "plan_max_rate"]
