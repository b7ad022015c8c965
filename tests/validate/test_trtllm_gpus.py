"""Suite ``trtllm-gpus``: the pairing of TensorRT-LLM rows, the skipped rows, and the replay."""

from __future__ import annotations

import csv
import math
import warnings
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kavier.perf.profiles import shipped_profile
from kavier.validate import trtllm_gpus as t
from kavier.validate.compare import FITTED, METRICS, SHIPPED_HELD_OUT
from kavier.validate.splits import HELD_OUT_GPU
from kavier.validate.suites import SUITES

PAIRS, SKIPPED = t.selection()


def _pair(gpu: str, source: str, model: str, tp: int, isl: int, osl: int) -> t.Pair:
    (found,) = [
        p
        for p in PAIRS
        if (
            p.other.gpu,
            p.other.source,
            p.other.model,
            p.other.tp,
            p.other.input_tokens,
            p.other.output_tokens,
        )
        == (gpu, source, model, tp, isl, osl)
    ]
    return found


def test_the_suite_is_registered_with_shipped_data_and_kept_out_of_the_profiles():
    suite = SUITES["trtllm-gpus"]
    assert suite.data_file is None and suite.split_by_profile and not suite.feeds_profiles
    assert t.METRIC in METRICS
    assert t.data_path().is_file()
    assert t.data_path().parent.parent.parent == Path(t.__file__).parent  # inside the package


def test_pairs_share_source_model_dtype_lengths_and_tp_unless_per_gpu():
    assert len(PAIRS) > 300
    h100_tps: dict[tuple, set[int]] = {}
    for p in PAIRS:
        h100_tps.setdefault(p.reference.config[:3], set()).add(p.reference.tp)
    for p in PAIRS:
        assert p.reference.gpu == "H100-SXM" and p.other.gpu != "H100-SXM"
        if p.cross_dtype:  # B200 fp4 against the H100-SXM fp8 run: per GPU, named in the case
            assert (p.other.gpu, p.other.dtype, p.reference.dtype) == ("B200", "fp4", "fp8")
            assert p.other.config[:2] + p.other.config[3:] == p.reference.config[:2] + p.reference.config[3:]
            assert "per GPU vs H100-SXM fp8" in p.case
            continue
        assert p.other.config == p.reference.config
        if p.per_gpu:  # only where the source never ran H100-SXM at the other GPU's TP
            assert p.other.tp not in h100_tps[p.other.config[:3]] and "per GPU" in p.case
        else:
            assert p.other.tp == p.reference.tp and "per GPU" not in p.case
    per_gpu = {
        (p.other.source, p.other.gpu, p.other.model, p.other.tp, p.reference.tp)
        for p in PAIRS
        if p.per_gpu and not p.cross_dtype
    }
    assert per_gpu == {("trtllm_perf_overview_v1.0", "H200", "Llama-3.1-70B", 1, 2)}


def test_every_left_out_row_has_a_stated_reason():
    path = t.data_path()
    with path.open(newline="", encoding="utf-8") as fh:
        wanted = {
            line: r
            for line, r in enumerate(csv.DictReader(fh), start=2)
            if r["source_id"] in t.SOURCES
            and r["workload"] == "fixed"
            and r["metric"] == "output_tokens_per_s"
        }
    paired = {p.other.line for p in PAIRS} | {p.reference.line for p in PAIRS}
    skipped = {s.line: s for s in SKIPPED}
    assert not paired & set(skipped)
    for line, r in wanted.items():
        if r["gpu"] != "H100-SXM":
            assert line in paired or line in skipped, (line, r["gpu"], r["model"])
    assert all(s.reason in t.SKIP_REASONS for s in SKIPPED)
    # every B200 row is fp4 (v1.0), replayed with Kavier's fp4 weights against H100-SXM fp8
    assert {p.other.line for p in PAIRS if p.other.gpu == "B200"} == {
        line for line, r in wanted.items() if r["gpu"] == "B200"
    }


@given(
    st.floats(1.0, 1e5),
    st.floats(1.0, 1e5),
    st.sampled_from([1, 2, 4, 8]),
    st.sampled_from([1, 2, 4, 8]),
)
def test_measured_ratio_is_per_gpu_when_the_tps_differ(other_tps, reference_tps, other_gpus, reference_gpus):
    base = PAIRS[0]
    pair = t.Pair(
        replace(base.other, tp=other_gpus, num_gpus=other_gpus, tokens_per_s=other_tps),
        replace(base.reference, tp=reference_gpus, num_gpus=reference_gpus, tokens_per_s=reference_tps),
    )
    expected = (other_tps / other_gpus) / (reference_tps / reference_gpus)
    assert pair.measured_ratio == pytest.approx(expected)
    same = t.Pair(replace(pair.reference, gpu="H200"), pair.reference)
    assert same.measured_ratio == pytest.approx(1.0)


def test_a_twin_of_h100_scales_by_one(tmp_path):
    """A GPU with H100-SXM's numbers under another name, on H100-SXM's profile: ratio 1."""
    catalog = tmp_path / "twin.toml"
    catalog.write_text(
        '[gpus."H100-Twin"]\nfp16_dense_tflops = 989\nfp8_dense_tflops = 1979\nint8_dense_tops = 1979\n'
        "memory_gib = 80\nmemory_bandwidth_gb_per_s = 3350\nidle_power_w = 70\nmax_power_w = 700\n"
        'interconnect_gb_per_s = 450\nprice_per_hour_usd = 1\nembodied_co2_kg = 150\nsource = "test"\n'
    )
    reference = _pair("H200", "trtllm_perf_overview_v1.0", "Llama-3.1-8B", 1, 2048, 128).reference
    profile = str(shipped_profile("vllm-v1", "H100-SXM").path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the profile was fitted for H100-SXM, not the twin
        twin = t.replay(replace(reference, gpu="H100-Twin"), profile, catalog=str(catalog))
        h100 = t.replay(reference, profile, catalog=str(catalog))
    assert twin is not None and h100 is not None
    assert twin[0] / h100[0] == pytest.approx(1.0, rel=1e-6)


@pytest.mark.parametrize(
    ("gpu", "source", "isl", "osl"),
    [
        ("H200", "trtllm_perf_overview_v1.0", 1000, 2000),
        ("A100-80GB", "trtllm_perf_overview_v0.13", 500, 2000),
    ],
)
def test_replay_of_a_small_config_is_within_10_percent_of_the_measured_ratio(gpu, source, isl, osl):
    """Llama-3.1-8B, TP1: H200 (fp8, the fallback H100 profile) and A100-80GB (fp16) over H100-SXM."""
    p = _pair(gpu, source, "Llama-3.1-8B", 1, isl, osl)
    other, reference = t.replay(p.other), t.replay(p.reference)
    assert other is not None and reference is not None
    ratio = other[0] / reference[0]
    assert math.isfinite(ratio) and abs(ratio / p.measured_ratio - 1) < 0.10, (ratio, p.measured_ratio)


def test_run_labels_every_comparison_held_out_and_asks_each_gpus_profile(monkeypatch):
    """No shipped profile was fitted on these rows: the fitted split is labelled held out: shipped; the
    other splits keep their label; each side's profile comes from ``profile_for``."""
    p = _pair("H200", "trtllm_perf_overview_v1.0", "Llama-3.1-8B", 1, 2048, 128)
    monkeypatch.setattr(t, "selection", lambda: ([p], []))
    asked = []

    def profile_for(gpu, model, engine):
        asked.append((gpu, model, engine))
        return None

    (fitted,) = t.run(split=FITTED, profile_for=profile_for)
    (held,) = t.run(split=HELD_OUT_GPU, profile_for=profile_for)
    assert (fitted.split, held.split) == (SHIPPED_HELD_OUT, HELD_OUT_GPU)
    assert asked[:2] == [("H200", "Llama-3.1-8B", "vllm-v1"), ("H100-SXM", "Llama-3.1-8B", "vllm-v1")]
    assert fitted.metric == t.METRIC and fitted.measured == pytest.approx(p.measured_ratio)
    assert fitted.predicted == held.predicted  # both sides on the shipped profiles either way


def test_only_the_l40s_profile_was_fitted_on_these_rows():
    # benchmarks/fit_ratio_profile.py fitted L40S on its ratios (its replay is "fitted"); the
    # others' shipped profiles never saw them (H200 and B200 take H100-SXM's fallback)
    assert t.fitted_here("L40S")
    assert not any(t.fitted_here(gpu) for gpu in ("H200", "A100-80GB", "B200", "H100-SXM"))
    assert shipped_profile("vllm-v1", "L4").name == "vllm-v1/L40S"  # same Ada architecture
