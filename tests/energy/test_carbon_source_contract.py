"""The contract of every carbon-intensity source in ``kavier.registry.CARBON_SOURCES``.

From ``kavier.energy.sources``: a source has a ``priority``, ``applies(scenario)`` and
``load(scenario) -> (series, description)``; given a scenario where it applies, its series'
interval means are finite and >= 0 and its description is one non-empty line; a run takes the
applicable source of highest priority (``carbon_intensity``). The tests are parametrised over the
registry's names as read at collection time, so a newly registered source is checked too.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import kavier
from kavier.energy.accounting import ConstantSeries
from kavier.energy.sources import carbon_intensity
from kavier.registry import CARBON_SOURCES
from kavier.scenario import Scenario
from tests.contracts import assert_registered_once
from tests.energy.helpers import write_trace

NAMES = CARBON_SOURCES.names()
START_MS = 1_640_995_200_000  # 2022-01-01T00:00:00Z, the scenario's default start time
DAY_S = 86_400.0


@pytest.fixture(scope="module")
def trace_file(tmp_path_factory) -> Path:
    """A day of hourly carbon intensities from the scenario's default start time."""
    path = tmp_path_factory.mktemp("carbon") / "day.parquet"
    write_trace(path, START_MS, list(np.linspace(0.0, 700.0, 24)))
    return path


def candidate_scenarios(trace: Path) -> list[Scenario]:
    """Scenarios that give each way of stating an intensity, alone and together (a new source
    applies to at least one of them, or its contract test says it needs another)."""
    ways = [
        {"carbon_trace": str(trace)},
        {"carbon_trace": str(trace), "carbon_trace_wrap": True},
        {"carbon_intensity": 321.0},
        {"carbon_intensity": 0.0},
        {"region": "NL"},
        {"region": "PL"},
    ]
    combos = [{}, *ways, {**ways[0], **ways[2], **ways[4]}]
    return [Scenario(**c) for c in combos]


def applicable(name: str, trace: Path) -> list[Scenario]:
    source = CARBON_SOURCES.get(name)
    found = [s for s in candidate_scenarios(trace) if source.applies(s)]
    assert found, f"carbon source {name!r} applies to none of the contract's scenarios; add one"
    return found


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    offset=st.floats(0.0, DAY_S / 2), dt=st.floats(0.25, 7200.0), nbins=st.integers(0, 6), pick=st.integers(0)
)
def test_a_source_gives_finite_non_negative_means_and_a_description(
    name, trace_file, offset, dt, nbins, pick
):
    scenarios = applicable(name, trace_file)
    scenario = scenarios[pick % len(scenarios)]
    series, description = CARBON_SOURCES.get(name).load(scenario)
    assert isinstance(description, str) and description.strip() and "\n" not in description
    nbins = min(nbins, int((DAY_S / 2) // dt))  # inside the trace's day
    start = scenario.start_time.timestamp() + offset
    means = np.asarray(series.interval_means(start, dt, nbins))
    assert means.shape == (nbins,)
    assert np.all(np.isfinite(means)) and np.all(means >= 0.0), means


@pytest.mark.parametrize("name", NAMES)
def test_a_source_applies_to_what_it_loads(name, trace_file):
    """A source that applies loads without error, twice the same (no hidden state)."""
    for scenario in applicable(name, trace_file):
        first, second = CARBON_SOURCES.get(name).load(scenario), CARBON_SOURCES.get(name).load(scenario)
        assert first[1] == second[1]
        t0 = scenario.start_time.timestamp()
        np.testing.assert_array_equal(
            first[0].interval_means(t0, 60.0, 10), second[0].interval_means(t0, 60.0, 10)
        )


@pytest.mark.parametrize(
    ("trace", "constant", "region"), list(itertools.product([False, True], [False, True], [False, True]))
)
def test_the_applicable_source_of_highest_priority_is_taken(trace_file, trace, constant, region):
    scenario = Scenario(
        carbon_trace=str(trace_file) if trace else None,
        carbon_intensity=321.0 if constant else None,
        region="NL" if region else None,
    )
    ranked = sorted(
        (entry for _, entry in CARBON_SOURCES.items() if entry.applies(scenario)), key=lambda e: -e.priority
    )
    assert ranked, "some source always applies (the world average)"
    assert len(ranked) == 1 or ranked[0].priority > ranked[1].priority, "a tie would be decided by order"
    want_series, want_description = ranked[0].load(scenario)
    got_series, got_description = carbon_intensity(scenario)
    assert got_description == want_description
    t0 = scenario.start_time.timestamp()
    np.testing.assert_array_equal(
        got_series.interval_means(t0, 900.0, 48), want_series.interval_means(t0, 900.0, 48)
    )


class MarkerIntensity:
    """42 gCO2/kWh whenever the scenario's constant intensity is 7 (a test source)."""

    priority: ClassVar[int] = 10**6

    @staticmethod
    def applies(scenario: Scenario) -> bool:
        return scenario.carbon_intensity == 7.0

    @staticmethod
    def load(scenario: Scenario) -> tuple[ConstantSeries, str]:
        return ConstantSeries(42.0), "test marker: 42 gCO2/kWh"


def test_a_registered_source_is_listed_and_taken_by_a_run(register):
    register(CARBON_SOURCES, "test-marker", MarkerIntensity)
    assert CARBON_SOURCES.names()[-1] == "test-marker"
    req = {"num_input_tokens": [1000], "num_output_tokens": [100], "arrival_s": [0.0]}
    marked = kavier.simulate(requests=req, preset="thesis", prefix_len=0, carbon_intensity=7.0).summary
    assert marked["carbon_intensity_source"] == "test marker: 42 gCO2/kWh"
    assert marked["carbon_intensity_mean_g_per_kwh"] == pytest.approx(42.0)
    plain = kavier.simulate(requests=req, preset="thesis", prefix_len=0, carbon_intensity=8.0).summary
    assert plain["carbon_intensity_mean_g_per_kwh"] == pytest.approx(8.0)


def test_a_carbon_source_name_is_registered_once(register):
    register(CARBON_SOURCES, "test-once", MarkerIntensity)
    assert_registered_once(
        CARBON_SOURCES, "test-once", MarkerIntensity, type("Other", (MarkerIntensity,), {})
    )
