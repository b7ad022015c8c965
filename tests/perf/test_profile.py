"""``kavier.perf.profile``: the TOML file of calibrated constants (round trips, tables, errors)."""

from __future__ import annotations

import math
import tomllib
from dataclasses import replace

import pytest

from kavier.errors import ScenarioError
from kavier.perf.profile import PROFILE_KEYS, load_profile, profile_degrees, profile_text, write_profile
from kavier.perf.roofline import ServingPerfParams
from tests.perf.helpers import TRUTH, one_line


def test_profile_round_trip(tmp_path):
    params = replace(TRUTH, context_terms=False)
    meta = {
        "model": "Llama-2-70B",
        "gpu": "A100-80GB",
        "tp": [2, 4, 8],
        "source": 'dir with "quotes"\\file.csv',
        "rows_fit": 270,
        "mape_percent": {"prompt_time_fit": 6.5, "token_time_held_out": 20.0},
        "skipped": None,
    }
    out = write_profile(tmp_path / "p.toml", params, meta)
    assert out == tmp_path / "p.toml"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.toml"]  # no temporary file left
    assert load_profile(out, ServingPerfParams()) == params
    data = tomllib.loads(out.read_text())
    assert data["meta"]["tp"] == [2, 4, 8] and data["meta"]["source"] == meta["source"]
    assert data["meta"]["mape_percent"]["token_time_held_out"] == 20.0
    assert "skipped" not in data["meta"]
    assert set(PROFILE_KEYS) <= set(data)
    # Overwriting replaces the file.
    write_profile(out, ServingPerfParams(), {})
    assert load_profile(out, params) == ServingPerfParams()


def test_profile_tp_tables_round_trip_and_apply_to_their_degree(tmp_path):
    by_tp = {4: replace(TRUTH, compute_efficiency=0.6), 8: replace(TRUTH, memory_efficiency=0.4)}
    out = write_profile(tmp_path / "p.toml", TRUTH, {"note": "x"}, by_tp=by_tp)
    assert profile_degrees(out) == (4, 8)
    assert load_profile(out) == TRUTH  # no degree: the top level
    assert load_profile(out, tp=2) == TRUTH  # a degree without a table: the top level
    assert load_profile(out, tp=4) == by_tp[4] and load_profile(out, tp=8) == by_tp[8]
    # A partial table replaces only its fields, over the top level and the base.
    path = tmp_path / "partial.toml"
    path.write_text("compute_efficiency = 0.5\n[tp.4]\nmemory_efficiency = 0.3\n")
    got = load_profile(path, TRUTH, tp=4)
    assert got == replace(TRUTH, compute_efficiency=0.5, memory_efficiency=0.3)


def test_profile_fields_replace_the_base(tmp_path):
    path = tmp_path / "partial.toml"
    path.write_text("compute_efficiency = 0.5\niteration_overhead_s = 0\n[meta]\nnote = 'hand-made'\n")
    base = replace(TRUTH, iteration_overhead_s=0.01)
    got = load_profile(path, base)
    assert got == replace(base, compute_efficiency=0.5, iteration_overhead_s=0.0)
    assert load_profile(path) == replace(
        ServingPerfParams(), compute_efficiency=0.5, iteration_overhead_s=0.0
    )


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("compute_eficiency = 0.5\n", "unknown field 'compute_eficiency'"),
        ("compute_efficiency = 0\n", "field 'compute_efficiency'"),
        ("memory_efficiency = 1.5\n", "field 'memory_efficiency'"),
        ("prefill_overhead_s = -0.1\n", "field 'prefill_overhead_s'"),
        ("comm_efficiency = 'high'\n", "field 'comm_efficiency'"),
        ("context_terms = 1\n", "field 'context_terms'"),
        ("compute_efficiency = nan\n", "field 'compute_efficiency'"),
        ("compute_efficiency = \n", "not a valid TOML"),
        ("meta = 3\n", "'meta'"),
        ("tp = 3\n", "'tp'"),
        ("[tp.four]\ncompute_efficiency = 0.5\n", "[tp.four]"),
        ("[tp.4]\ncompute_eficiency = 0.5\n", "unknown field 'tp.4.compute_eficiency'"),
        ("[tp.4]\nmemory_efficiency = 2\n", "field 'tp.4.memory_efficiency'"),
    ],
)
def test_profile_errors_are_one_line(tmp_path, text, needle):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ScenarioError) as exc:
        load_profile(path, ServingPerfParams())
    msg = one_line(exc)
    assert str(path) in msg and needle in msg


def test_profile_missing_and_unwritable(tmp_path):
    with pytest.raises(ScenarioError) as exc:
        load_profile(tmp_path / "nope.toml")
    assert "nope.toml" in one_line(exc)
    with pytest.raises(ScenarioError) as exc:
        write_profile(tmp_path / "no-dir" / "p.toml", ServingPerfParams(), {})
    assert "p.toml" in one_line(exc)


def test_profile_text_is_valid_toml():
    data = tomllib.loads(profile_text(TRUTH, {"weird key": 1.0, "n": float("inf")}))
    assert data["compute_efficiency"] == TRUTH.compute_efficiency
    assert data["meta"]["weird key"] == 1.0 and math.isinf(data["meta"]["n"])
