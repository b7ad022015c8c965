"""``kavier.perf.fitting``: the multi-group fitter keeps to the bounds it is given."""

import pytest

from kavier.perf.fitting import Predictor, fit
from kavier.perf.roofline import ServingPerfParams
from kavier.validate.fit_rows import a10_rows

BASE = ServingPerfParams(
    compute_efficiency=0.5,
    memory_efficiency=0.7,
    iteration_overhead_s=1e-3,
    decode_seq_overhead_s=1e-5,
    prefill_seq_overhead_s=1e-4,
)
COMPUTE = ("compute_efficiency", "gpu=A10")
MEMORY = ("memory_efficiency", "gpu=A10")


def test_a_narrowed_bound_caps_a_constant_and_a_single_value_holds_it():
    """The A10 tables want a compute efficiency near 0.33: capped at 0.2 the fit ends on the cap;
    a slot whose range is one value is held there exactly, and the objective can only rise."""
    predictor = Predictor(a10_rows())
    free, free_objective = fit(predictor, BASE, [COMPUTE, MEMORY], max_evals=400)
    assert free[COMPUTE] > 0.25
    bounded, objective = fit(
        predictor, BASE, [COMPUTE, MEMORY], max_evals=400, bounds={COMPUTE: (0.05, 0.2), MEMORY: (0.5, 0.5)}
    )
    assert bounded[COMPUTE] == pytest.approx(0.2, rel=1e-9)
    assert bounded[MEMORY] == pytest.approx(0.5, rel=1e-12)
    assert objective >= free_objective
