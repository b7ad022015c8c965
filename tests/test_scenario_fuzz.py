"""Fuzzing the scenario loader: random bytes as scenario files and random TOML / YAML / JSON
tables of keys (known and unknown keys, group tables, values of every type, NaN, infinities,
huge numbers, unicode) either build a scenario or raise a one-line KavierError; never another
exception. The same for sweep files."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kavier.errors import KavierError, ScenarioError
from kavier.scenario import Scenario, build_scenario
from kavier.sweep.spec import load_sweep, plan_runs

# FUZZ_N=2000 pytest tests/test_scenario_fuzz.py searches harder than the default run
FUZZ = settings(
    max_examples=int(os.environ.get("FUZZ_N", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
KEYS = [*Scenario.model_fields, "Preset", "llm ", "ünïcode", "", "base", "axes", "runs", "mode"]
TABLES = ["system", "workload", "serving", "performance", "cache", "thesis_cache", "energy", "cost"]
WORDS = [
    "A10", "H100-SXM", "Llama-3-8B", "Llama-3.1-70B", "thesis", "serving", "lru", "arc", "on", "off",
    "block", "global", "session", "poisson", "closed-loop", "chat", "lognormal:mean=100,cv=0.5",
    "uniform:1,5", "64GiB", "host-dram:64GiB", "5min", "1e3", "-1", "NL", "2022-07-01T00:00:00Z",
    "mooncake-synthetic", "no-such-file.csv", "round_robin", "activity", "bf16", "0.5,1.5", "",
]  # fmt: skip
SCALARS = st.one_of(
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.sampled_from(WORDS),
    st.text(max_size=10),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(KEYS), inner, max_size=3)
    ),
    max_leaves=6,
)
TABLE = st.dictionaries(
    st.one_of(st.sampled_from(KEYS), st.sampled_from(TABLES)),
    st.one_of(VALUES, st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=3)),
    max_size=6,
)


def toml_text(table: dict[str, Any]) -> str:
    """A small TOML writer (scalars, arrays of scalars, one level of tables); other values become
    strings, so the file is valid TOML and reaches the scenario checks."""

    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int):
            return str(v) if -(2**63) <= v < 2**63 else json.dumps(str(v))
        if isinstance(v, float):
            return (
                "nan"
                if v != v
                else ("inf" if v == float("inf") else "-inf" if v == float("-inf") else repr(v))
            )
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return json.dumps(str(v))

    lines, tables = [], []
    for k, v in table.items():
        (tables if isinstance(v, dict) else lines).append((k, v))
    out = [f"{json.dumps(k)} = {value(v)}" for k, v in lines]
    for name, inner in tables:
        out.append(f"[{json.dumps(name)}]")
        out += [f"{json.dumps(k)} = {value(v)}" for k, v in inner.items()]
    return "\n".join(out) + "\n"


def load(text: bytes | str, suffix: str) -> None:
    """Build a scenario from the file, and plan it as a sweep; only KavierError may escape."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"scenario{suffix}"
        path.write_bytes(text.encode() if isinstance(text, str) else text)
        for reader in (build_scenario, lambda p: plan_runs(load_sweep(p))):
            try:
                reader(path)
            except KavierError as exc:
                assert str(exc).strip() and "\n" not in str(exc).strip(), str(exc)


@FUZZ
@given(st.binary(max_size=200), st.sampled_from([".toml", ".json", ".yaml", ".yml", ".txt"]))
def test_random_bytes(data: bytes, suffix: str) -> None:
    load(data, suffix)


@FUZZ
@given(TABLE, st.sampled_from([".toml", ".json", ".yaml"]))
def test_random_tables(table: dict[str, Any], suffix: str) -> None:
    if suffix == ".toml":
        text = toml_text(table)
    elif suffix == ".json":
        text = json.dumps(table)
    else:
        text = yaml.safe_dump(table, allow_unicode=True)
    load(text, suffix)


@FUZZ
@given(st.dictionaries(st.sampled_from(list(Scenario.model_fields)), VALUES, max_size=5))
def test_random_overrides(values: dict[str, Any]) -> None:
    try:
        build_scenario(None, values)
    except KavierError as exc:
        assert "\n" not in str(exc).strip(), str(exc)


SWEEP = st.fixed_dictionaries(
    {
        "axes": st.one_of(
            st.dictionaries(st.sampled_from(KEYS), st.lists(VALUES, max_size=3), max_size=3), VALUES
        ),
    },
    optional={
        "runs": st.one_of(
            st.lists(st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=3), max_size=2), VALUES
        ),
        "mode": st.one_of(st.sampled_from(["product", "zip"]), VALUES),
        "base": st.one_of(st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=3), VALUES),
        "llm": st.sampled_from(WORDS),
    },
)


@FUZZ
@given(SWEEP, st.sampled_from([".json", ".yaml"]))
def test_random_sweeps(table: dict[str, Any], suffix: str) -> None:
    text = json.dumps(table) if suffix == ".json" else yaml.safe_dump(table, allow_unicode=True)
    load(text, suffix)


def test_a_preset_that_is_not_a_string_is_a_one_line_error(tmp_path: Path) -> None:
    """Found by the fuzzing above: ``preset = []`` raised TypeError (unhashable type)."""
    with pytest.raises(ScenarioError, match="unknown preset"):
        build_scenario(None, {"preset": []})
    path = tmp_path / "s.json"
    path.write_text('{"preset": ["thesis"]}', encoding="utf-8")
    with pytest.raises(ScenarioError, match="unknown preset"):
        build_scenario(path)


def test_a_sweep_base_naming_a_blank_path_is_a_one_line_error() -> None:
    """Found by test_random_sweeps: ``base = "\\n"`` printed the resolved path's newline."""
    load(json.dumps({"base": "\n", "axes": {}}), ".json")


def test_an_option_value_with_a_newline_is_a_one_line_error() -> None:
    """Found by the fuzzing above: ``--export-rate`` given ``"\\n"`` echoed the raw value, so the
    error spanned two lines. An option's value is shown as typed unless it is unprintable."""
    with pytest.raises(ScenarioError) as caught:
        build_scenario(None, {"export_rate": "\n"})
    assert "\n" not in str(caught.value)
    assert str(caught.value).startswith("--export-rate '\\n': ")
    with pytest.raises(ScenarioError, match=r"^--export-rate 100x: "):
        build_scenario(None, {"export_rate": "100x"})


def test_a_trace_name_with_a_newline_is_a_one_line_error() -> None:
    from kavier.workload.traces import unknown_trace_message

    assert "\n" not in unknown_trace_message("a\nb")
    assert unknown_trace_message("nope").startswith("trace nope does not exist")
