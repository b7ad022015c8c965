"""The contract of every power model in ``kavier.registry.POWER_MODELS``.

From the comment above the registrations in ``kavier.energy.power``: a model's watts lie in
``[idle_w, max_w]`` for any utilisation and compute and memory busy fractions in [0, 1], and an
idle GPU (utilisation 0) draws the same whatever the fractions. The tests are parametrised over
the registry's names as read at collection time, so a newly registered model is checked too.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import kavier
from kavier.energy.power import PowerModel
from kavier.energy.resolve import power_model
from kavier.library.catalog import load_catalog
from kavier.registry import POWER_MODELS
from kavier.scenario import Scenario
from tests.contracts import assert_registered_once

NAMES = POWER_MODELS.names()

fraction = st.floats(0.0, 1.0)
watts = st.floats(0.0, 2000.0)


@st.composite
def activity(draw):
    """Utilisations with compute and memory busy fractions (each None, as the engine may give)."""
    n = draw(st.integers(1, 12))
    column = st.lists(fraction, min_size=n, max_size=n).map(np.array)
    u = draw(column)
    c = draw(st.none() | column)
    m = draw(st.none() | column)
    return u, c, m


def assert_within(w: np.ndarray, idle: float, peak: float) -> None:
    slack = 1e-9 * max(1.0, peak)
    assert np.all(np.isfinite(w)), w
    assert np.all(w >= idle - slack) and np.all(w <= peak + slack), (w, idle, peak)


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=60, deadline=None)
@given(activity(), watts, watts)
def test_watts_lie_between_idle_and_max_power(name, arrays, idle, span):
    u, c, m = arrays
    model = PowerModel(name, idle, idle + span)
    w = model.power_w(u, c, m)
    assert w.shape == u.shape
    assert_within(w, idle, idle + span)


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=40, deadline=None)
@given(activity(), watts, watts)
def test_an_idle_gpu_draws_the_same_whatever_its_busy_fractions(name, arrays, idle, span):
    _, c, m = arrays
    n = len(c if c is not None else m if m is not None else [0.0])
    model = PowerModel(name, idle, idle + span)
    zeros = np.zeros(n)
    at_rest = model.power_w(zeros, c, m)
    np.testing.assert_allclose(at_rest, model.power_w(zeros), rtol=1e-12)
    np.testing.assert_allclose(at_rest, model.power_w(zeros, np.ones(n), np.ones(n)), rtol=1e-12)
    np.testing.assert_allclose(at_rest, model.idle_power_w, rtol=1e-12)


# Parameters a scenario accepts (the bounds of kavier.settings): the contract must hold for them.
scenario_parameters = st.fixed_dictionaries(
    {
        "power_calibration": st.floats(1.0, 2.0),
        "power_asym_util": st.floats(0.001, 5.0),
        "power_memory_weight": st.floats(0.0, 5.0),
        "busy_utilization": st.floats(0.01, 1.0),
    }
)


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=60, deadline=None)
@given(scenario_parameters, activity())
@example(  # mse at its smallest exponent, at a low utilisation
    {"power_calibration": 1.0, "power_asym_util": 0.3, "power_memory_weight": 0.5, "busy_utilization": 0.95},
    (np.array([0.01, 0.1]), None, None),
)
@example(  # the activity model with a small u_busy at an idle GPU
    {"power_calibration": 1.4, "power_asym_util": 0.3, "power_memory_weight": 0.5, "busy_utilization": 0.01},
    (np.array([0.0, 0.5]), np.array([1.0, 1.0]), None),
)
def test_watts_stay_between_idle_and_max_for_any_parameters_a_scenario_accepts(name, params, arrays):
    u, c, m = arrays
    gpu = load_catalog().gpu("A10")
    model = power_model(Scenario(power_model=name, **params), gpu)
    assert_within(model.power_w(u, c, m), gpu.idle_power_w, gpu.max_power_w)


def half_way(u, c, m, p):
    """Half the dynamic range, whatever the GPU does (a test model)."""
    return p.level_w(np.full_like(u, 0.5))


def test_a_registered_power_model_is_listed_and_used_by_a_run(register):
    register(POWER_MODELS, "test-half-way", half_way)
    assert POWER_MODELS.names()[-1] == "test-half-way"
    np.testing.assert_array_equal(
        PowerModel("test-half-way", 50.0, 250.0).power_w(np.array([0.0, 1.0])), 150.0
    )
    req = {"num_input_tokens": [1000, 300], "num_output_tokens": [100, 20], "arrival_s": [0.0, 5.0]}
    r = kavier.simulate(
        requests=req,
        preset="thesis",
        prefix_len=0,
        power_model="test-half-way",
        gpu_idle_w=50.0,
        gpu_max_w=250.0,
    )
    assert r.summary["power_model"] == "test-half-way"
    # every GPU draws 150 W for the whole run
    assert r.summary["energy_it_j"] == pytest.approx(150.0 * r.summary["simulated_time_s"], rel=1e-12)
    np.testing.assert_allclose(r.timeseries.column("power_w").to_numpy(), 150.0, rtol=1e-12)


def test_a_power_model_name_is_registered_once(register):
    register(POWER_MODELS, "test-once", half_way)
    assert_registered_once(POWER_MODELS, "test-once", half_way, lambda u, c, m, p: p.level_w(u))


@pytest.mark.parametrize(
    ("key", "value"),
    [("power_calibration", 0.5), ("power_calibration", 5.0), ("busy_utilization", 0.0)],
)
def test_parameters_that_would_leave_idle_to_max_are_rejected_in_one_line(key, value):
    """mse leaves idle..max for r outside [1, 2]; the activity model divides by u_busy (found by
    the contract above): a scenario refuses these values, naming the key."""
    from kavier.errors import ScenarioError
    from kavier.scenario import build_scenario

    with pytest.raises(ScenarioError, match=key.replace("_", "[-_]")) as caught:
        build_scenario(None, {key: value})
    assert "\n" not in str(caught.value)
