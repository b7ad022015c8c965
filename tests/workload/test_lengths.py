"""``kavier.workload.lengths``: token-length specs parse, and samples have the declared moments."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kavier.errors import ScenarioError
from kavier.workload.lengths import Fixed, Geometric, LogNormal, Uniform, Zipf, parse_length


def rng(seed: int = 1) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(seed))


def test_parse_length_forms() -> None:
    assert parse_length("512") == Fixed(512) and parse_length(512) == Fixed(512)
    assert parse_length("fixed:64") == Fixed(64)
    assert parse_length("uniform:128:1024") == Uniform(128, 1024)
    assert parse_length(" lognormal:mean=1000, cv=0.5 ") == LogNormal(1000.0, 0.5)
    assert parse_length("zipf:a=1.2,max=4096") == Zipf(1.2, 4096)
    assert parse_length("geometric:mean=4") == Geometric(4.0)
    dist = parse_length("normal:mean=10,std=3")
    assert parse_length(dist) is dist
    for spec in ("512", "uniform:128:1024", "lognormal:mean=1000,cv=0.5", "zipf:a=1.2,max=4096"):
        assert str(parse_length(spec)) == spec  # canonical spec round-trips


@pytest.mark.parametrize(
    "spec",
    [
        "",
        "0",
        "-3",
        "12.5",
        "abc",
        "uniform:5",
        "uniform:10:5",
        "lognormal:mean=1000",
        "lognormal:mean=x,cv=1",
        "lognormal:mean=1000,cv=0.5,extra=1",
        "zipf:a=0,max=10",
        "zipf:a=1.1,max=0",
        "normal:mean=5,std=-1",
        "poisson:mean=3",
        "lognormal",
    ],
)
def test_bad_length_specs_give_one_line_scenario_errors(spec: str) -> None:
    with pytest.raises(ScenarioError) as info:
        parse_length(spec)
    message = str(info.value)
    assert repr(spec) in message and "uniform:LO:HI" in message and "\n" not in message


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=30))
def test_any_spec_parses_or_raises_scenario_error(spec: str) -> None:
    try:
        dist = parse_length(spec)
    except ScenarioError:
        return
    values = dist.sample(rng(), 50)
    assert values.dtype == np.int64 and values.min() >= 1


@pytest.mark.parametrize(
    "spec",
    [
        "lognormal:mean=1000,cv=0.5",
        "lognormal:mean=250,cv=1.5",
        "uniform:128:1024",
        "zipf:a=1.2,max=4096",
        "zipf:a=0.8,max=100",
        "normal:mean=5,std=10",
        "geometric:mean=4",
    ],
)
def test_sample_means_match_the_declared_mean(spec: str) -> None:
    dist = parse_length(spec)
    values = dist.sample(rng(7), 20_000)
    assert values.dtype == np.int64 and values.min() >= 1
    stderr = values.std() / np.sqrt(len(values))
    assert abs(values.mean() - dist.mean) < max(4 * stderr, 0.02 * dist.mean)


def test_lognormal_mean_and_cv_within_a_few_percent() -> None:
    values = parse_length("lognormal:mean=1000,cv=0.5").sample(rng(3), 20_000)
    assert values.mean() == pytest.approx(1000, rel=0.03)
    assert values.std() / values.mean() == pytest.approx(0.5, rel=0.05)


def test_uniform_bounds_are_inclusive_and_zipf_bounded() -> None:
    values = Uniform(3, 6).sample(rng(), 5_000)
    assert set(values.tolist()) == {3, 4, 5, 6}
    zipf = Zipf(1.2, 50).sample(rng(), 20_000)
    assert zipf.min() == 1 and zipf.max() <= 50
    assert (zipf == 1).mean() > (zipf == 2).mean() > (zipf == 10).mean()
