"""``kavier.perf.calibrate``: fitting the serving model's constants to measurements."""

from __future__ import annotations

import csv
import math
import tomllib
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from kavier.errors import KavierError, ScenarioError
from kavier.perf.calibrate import (
    FIT_KEYS,
    Measurement,
    _Points,
    calibrate,
    calibrate_cli,
    calibrate_report,
    mape,
    parse_row_filter,
    read_measurements,
)
from kavier.perf.profile import load_profile, profile_degrees
from kavier.perf.roofline import ServingPerfModel, ServingPerfParams
from tests.paths import SHARED_DATA
from tests.perf.helpers import TRUTH, one_line

SPLITWISE = SHARED_DATA / "measurements"


SPLITWISE_CSV = SPLITWISE / "splitwise_llama2_70b_bloom_176b_a100_h100.csv"


def _write_csv(path: Path, header: list[str], rows: list[list]) -> Path:
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


def _synthetic(path: Path, llm, gpu, params: ServingPerfParams, tps=(1, 2, 4)) -> Path:
    """Rows in the simple layout whose times are the model's own predictions under ``params``."""
    rows = []
    for tp in tps:
        m = ServingPerfModel(llm, gpu, params, tp=tp)
        for batch in (1, 2, 4, 8, 16, 32):
            for prompt in (128, 512, 2048):
                tokens = 128
                ctx = prompt + tokens / 2
                pt = m.iteration(batch * prompt, batch * prompt * (prompt + 1) / 2, 0, 0, 0, batch).time_s
                tt = m.iteration(0, 0, 0, batch, batch * ctx).time_s
                rows.append([batch, prompt, tp, tokens, repr(pt), repr(tt)])
    header = ["batch_size", "prompt_size", "tp", "token_size", "prompt_time_s", "token_time_s"]
    return _write_csv(path, header, rows)


def test_synthetic_constants_are_recovered(tmp_path, llama3_8b, a10):
    path = _synthetic(tmp_path / "m.csv", llama3_8b, a10, TRUTH)
    result = calibrate(path, llama3_8b, a10)
    assert set(result.fitted) == set(FIT_KEYS)  # tp 1 rows separate the all-reduce latency
    for key in FIT_KEYS:
        assert getattr(result.params, key) == pytest.approx(getattr(TRUTH, key), rel=0.03), key
    for split in ("fit", "held_out"):
        for kind in ("prompt", "token"):
            assert result.mape[split][kind] < 0.5
    assert result.n_fit == 3 * 4 * 3 and result.n_held_out == 3 * 2 * 3
    assert result.default_mape["fit"]["prompt"] > 10  # the defaults are far from TRUTH
    assert not result.dropped


def test_latency_not_fitted_when_every_row_has_the_same_tp(tmp_path, llama3_8b, a10):
    path = _synthetic(tmp_path / "m.csv", llama3_8b, a10, TRUTH, tps=(2,))
    base = ServingPerfParams()
    result = calibrate(path, llama3_8b, a10, base=base)
    assert "comm_latency_s" not in result.fitted
    assert result.params.comm_latency_s == base.comm_latency_s
    # The iteration overhead absorbs the latency difference; the predictions still match.
    assert result.mape["held_out"]["token"] < 0.5 and result.mape["held_out"]["prompt"] < 0.5
    assert "not fitted" in calibrate_report(result)


def test_per_tp_calibration_recovers_each_degrees_constants(tmp_path, llama3_8b, a10):
    # Rows of two deployments whose engines differ (another efficiency and overhead at tp 2):
    # a fit per degree recovers each degree's own constants and predictions.
    tp2 = replace(TRUTH, compute_efficiency=0.3, iteration_overhead_s=0.009)
    a = _synthetic(tmp_path / "a.csv", llama3_8b, a10, TRUTH, tps=(1,))
    b = _synthetic(tmp_path / "b.csv", llama3_8b, a10, tp2, tps=(2,))
    both = tmp_path / "both.csv"
    both.write_text(a.read_text() + "".join(b.read_text().splitlines(keepends=True)[1:]))
    joint = calibrate(both, llama3_8b, a10)
    result = calibrate(both, llama3_8b, a10, per_tp=True)
    assert sorted(result.params_by_tp) == [1, 2] and result.params == joint.params
    assert result.joint_mape == joint.mape
    for tp, truth in ((1, TRUTH), (2, tp2)):  # (the overheads of one degree alone trade off)
        assert result.params_by_tp[tp].compute_efficiency == pytest.approx(truth.compute_efficiency, rel=0.03)
    for kind in ("prompt", "token"):
        assert result.mape["held_out"][kind] < 0.5
    # One degree only: nothing to fit per degree.
    assert calibrate(a, llama3_8b, a10, per_tp=True).params_by_tp == {}


def test_fit_filter_callable_and_string_agree(tmp_path, llama3_8b, a10):
    path = _synthetic(tmp_path / "m.csv", llama3_8b, a10, TRUTH, tps=(1,))
    a = calibrate(path, llama3_8b, a10, fit_filter="batch_size<=4")
    b = calibrate(path, llama3_8b, a10, fit_filter=lambda r: r.batch_size <= 4)
    assert a.params == b.params and a.n_fit == b.n_fit == 3 * 3


def test_mape_by_hand():
    assert mape([110.0, 90.0], [100.0, 100.0]) == pytest.approx(10.0)
    assert mape([1.5, 2.0], [1.0, 4.0]) == pytest.approx(50.0)
    assert mape([1.0, float("nan")], [2.0, 3.0]) == pytest.approx(50.0)
    assert mape([], []) is None


def test_tiny_case_predictions_and_mape_by_hand(tmp_path, llama3_8b, a10):
    """Two rows on one GPU: the default predictions and their MAPE, worked out by hand."""
    path = _write_csv(
        tmp_path / "tiny.csv",
        ["batch_size", "prompt_size", "tp", "prompt_time_s", "token_time_s", "context_tokens"],
        [[1, 1000, 1, 0.30, 0.025, 1000], [4, 100, 1, 0.10, 0.030, 600]],
    )
    base = ServingPerfParams()
    result = calibrate(path, llama3_8b, a10, fit_filter="batch_size<=1", base=base)
    n, f, bw = llama3_8b.num_active_params, a10.flops_fp16, a10.memory_bandwidth
    weights = llama3_8b.num_params * 2.0
    pair = 4.0 * llama3_8b.num_layers * llama3_8b.num_attention_heads * llama3_8b.head_dim
    kv = llama3_8b.kv_bytes_per_token(2.0)
    ce, me = base.compute_efficiency, base.memory_efficiency
    # Row 1 prefill: 1000 tokens, 1000*1001/2 attention pairs, compute-bound.
    p1 = (
        max((2 * n * 1000 + pair * 1000 * 1001 / 2) / (f * ce), weights / (bw * me)) + base.prefill_overhead_s
    )
    # Row 2 decode: 4 sequences with 4 x 600 context tokens, memory-bound.
    t2 = max((2 * n * 4 + pair * 2400) / (f * ce), (weights + kv * 2400) / (bw * me))
    r1, r2 = result.rows
    assert r1.default_prompt_s == pytest.approx(p1, rel=1e-12)
    assert r2.default_token_s == pytest.approx(t2, rel=1e-12)
    assert r1.fit and not r2.fit
    t1 = max((2 * n + pair * 1000) / (f * ce), (weights + kv * 1000) / (bw * me))
    assert result.default_mape["fit"]["prompt"] == pytest.approx(abs(p1 - 0.30) / 0.30 * 100)
    assert result.default_mape["fit"]["token"] == pytest.approx(abs(t1 - 0.025) / 0.025 * 100)
    assert result.default_mape["held_out"]["token"] == pytest.approx(abs(t2 - 0.030) / 0.030 * 100)
    # The calibrated MAPE is the MAPE of the calibrated per-row predictions.
    assert result.mape["held_out"]["prompt"] == pytest.approx(abs(r2.prompt_s - 0.10) / 0.10 * 100)


def test_decomposition_matches_the_model(tmp_path, llama3_8b, a10):
    path = _synthetic(tmp_path / "m.csv", llama3_8b, a10, TRUTH)
    _, rows = read_measurements(path)
    pts = _Points(rows, llama3_8b, a10, ServingPerfParams())
    assert pts.exact
    p = replace(TRUTH, compute_efficiency=0.8, comm_efficiency=0.3, iteration_overhead_s=0.02)
    np.testing.assert_allclose(pts._fast(p), pts._direct(p), rtol=1e-10)
    # with a p-norm join of compute and memory (roofline_norm) the decomposition still holds
    smooth = _Points(rows, llama3_8b, a10, ServingPerfParams(roofline_norm=2.5))
    assert smooth.exact
    q = replace(p, roofline_norm=2.5)
    np.testing.assert_allclose(smooth._fast(q), smooth._direct(q), rtol=1e-10)
    assert not np.allclose(smooth._fast(q), pts._fast(p), rtol=1e-6)


def test_row_filters():
    row = Measurement(
        line=2, batch_size=8, prompt_size=512, tp=2, prompt_time_s=1.0, token_time_s=0.1, context_tokens=576.0
    )
    assert parse_row_filter("batch_size<=8")(row)
    assert not parse_row_filter("batch_size<8")(row)
    assert parse_row_filter("batch_size <= 8 and tp == 2")(row)
    assert not parse_row_filter("batch_size<=8, prompt_size>=1024")(row)
    assert parse_row_filter("tensor_parallel=2 & prompt_size<1e4")(row)
    assert not parse_row_filter("token_size<=128")(row)  # no token_size: NaN matches nothing


def _splitwise_rows() -> list[list]:
    # model, hardware, tp, prompt_size, batch_size, token_size, prompt_time ms, token_time ms, e2e ms
    return [
        ["llama2-70b", "a100-80gb", 2, 512, 1, 128, 197.0, 54.9, 7165.0],
        ["llama2-70b", "a100-80gb", 2, 512, 2, 128, 416.5, 59.9, 8029.0],
        ["llama2-70b", "a100-80gb", 2, 2048, 1, 128, 688.1, 54.9, 7663.0],
        ["llama2-70b", "a100-80gb", 2, 512, 16, 128, 3238.8, 65.5, 11576.0],
        ["llama2-70b", "a100-80gb", 2, 512, 64, 128, 794.2, 67.2, 159625.0],  # impossible prefill
        ["llama2-70b", "h100-80gb", 2, 512, 1, 128, 83.8, 37.0, 4786.0],
        ["llama2-70b", "h100-80gb-pcap", 2, 512, 1, 128, 99.0, 40.0, 5200.0],
        ["bloom-176b", "a100-80gb", 8, 512, 1, 128, 173.8, 48.8, 6370.0],
    ]


SPLITWISE_HEADER = [
    "model",
    "hardware",
    "tensor_parallel",
    "prompt_size",
    "batch_size",
    "token_size",
    "prompt_time",
    "token_time",
    "e2e_time",
]


def test_splitwise_layout_selection_units_and_dropped_rows(tmp_path):
    path = _write_csv(tmp_path / "sw.csv", SPLITWISE_HEADER, _splitwise_rows())
    layout, rows = read_measurements(path)
    assert layout == "splitwise" and len(rows) == 8
    assert rows[0].prompt_time_s == pytest.approx(0.197) and rows[0].token_time_s == pytest.approx(0.0549)
    assert rows[0].context_tokens == 512 + 64 and rows[0].tp == 2
    result = calibrate(path, "Llama-2-70B", "A100-80GB")
    assert result.tps == (2,) and len(result.rows) == 4 and len(result.dropped) == 1
    assert result.dropped[0][0].batch_size == 64 and "peak FLOP/s" in result.dropped[0][1]
    assert result.n_fit == 3 and result.n_held_out == 1
    h100 = calibrate(path, "llama2-70b", "H100-SXM")  # the power-capped row is skipped
    assert len(h100.rows) == 1 and h100.rows[0].row.hardware == "h100-80gb"
    capped = calibrate(path, "Llama-2-70B", "H100-SXM", include_power_capped=True)
    assert len(capped.rows) == 2
    bloom = calibrate(path, "BLOOM-176B", "A100-80GB")
    assert bloom.tps == (8,) and bloom.n_fit == 1 and bloom.n_held_out == 0
    assert bloom.mape["held_out"]["prompt"] is None
    text = calibrate_report(result)
    assert "Llama-2-70B on A100-80GB" in text and "dropped line 6" in text


def test_simple_layout_with_model_and_gpu_columns(tmp_path, llama3_8b, a10):
    path = _write_csv(
        tmp_path / "s.csv",
        ["model", "gpu", "batch_size", "prompt_size", "tp", "prompt_time_s", "token_time_s"],
        [
            ["Llama-2-70B", "H100-SXM", 1, 512, 2, 0.084, 0.037],
            ["Llama-2-70B", "H100-SXM", 4, 512, 2, 0.300, ""],
            ["Llama-2-70B", "A100-80GB", 1, 512, 2, 0.197, 0.055],
        ],
    )
    result = calibrate(path, "Llama-2-70B", "H100-SXM")
    assert len(result.rows) == 2
    assert result.rows[1].row.token_time_s is None and math.isnan(result.rows[1].token_s)
    assert result.rows[0].row.context_tokens == 512


def test_calibration_errors_are_one_line(tmp_path, llama3_8b, a10):
    bad = _write_csv(tmp_path / "bad.csv", ["batch", "prompt", "latency"], [[1, 2, 3]])
    with pytest.raises(ScenarioError) as exc:
        calibrate(bad, llama3_8b, a10)
    msg = one_line(exc)
    assert str(bad) in msg and "prompt_time_s" in msg and "tensor_parallel" in msg

    with pytest.raises(ScenarioError) as exc:
        calibrate(tmp_path / "missing.csv", llama3_8b, a10)
    assert "not found" in one_line(exc)

    num = _write_csv(
        tmp_path / "num.csv",
        ["batch_size", "prompt_size", "tp", "prompt_time_s"],
        [[1, 512, 1, 0.1], [1, "x", 1, 0.1]],
    )
    with pytest.raises(ScenarioError) as exc:
        calibrate(num, llama3_8b, a10)
    msg = one_line(exc)
    assert "line 3" in msg and "prompt_size" in msg

    neg = _write_csv(
        tmp_path / "neg.csv", ["batch_size", "prompt_size", "tp", "prompt_time_s"], [[1, 512, 1, -2]]
    )
    with pytest.raises(ScenarioError) as exc:
        calibrate(neg, llama3_8b, a10)
    assert "prompt_time_s" in one_line(exc)

    empty = _write_csv(tmp_path / "empty.csv", ["batch_size", "prompt_size", "tp", "token_time_s"], [])
    with pytest.raises(ScenarioError) as exc:
        calibrate(empty, llama3_8b, a10)
    assert "no measurement rows" in one_line(exc)

    ok = _synthetic(tmp_path / "ok.csv", llama3_8b, a10, TRUTH, tps=(1,))
    with pytest.raises(ScenarioError) as exc:
        calibrate(ok, llama3_8b, a10, fit_filter="batch_size<=0")
    assert "matches none" in one_line(exc)
    with pytest.raises(ScenarioError) as exc:
        calibrate(ok, llama3_8b, a10, fit_filter="batchsize<=8")
    assert "unknown column" in one_line(exc)
    with pytest.raises(ScenarioError) as exc:
        calibrate(ok, llama3_8b, a10, fit_filter="batch_size is small")
    assert "batch_size<=8" in one_line(exc)

    sw = _write_csv(tmp_path / "sw.csv", SPLITWISE_HEADER, _splitwise_rows())
    with pytest.raises(ScenarioError) as exc:
        calibrate(sw, "Llama-3.1-8B", "A100-80GB")
    msg = one_line(exc)
    assert "no rows for Llama-3.1-8B on A100-80GB" in msg and "llama2-70b on a100-80gb" in msg
    with pytest.raises(KavierError) as exc:
        calibrate(sw, "Llama-2-70B", "no-such-gpu")
    one_line(exc)


def test_calibrate_cli_writes_a_loadable_profile(tmp_path, llama3_8b, a10):
    path = _synthetic(tmp_path / "m.csv", llama3_8b, a10, TRUTH, tps=(1, 2))
    catalog_model = "Llama-3.1-8B"  # the catalogue's 8B (slightly different from the fixture)
    out = tmp_path / "profile.toml"
    text = calibrate_cli(path, catalog_model, "A10", out, "batch_size<=8")
    assert "calibrated Llama-3.1-8B on A10" in text and str(out) in text
    meta = tomllib.loads(out.read_text())["meta"]
    assert meta["model"] == "Llama-3.1-8B" and meta["gpu"] == "A10" and meta["tp"] == [1, 2]
    assert meta["fit_rows"] == "batch_size<=8" and meta["rows_fit"] == 2 * 12
    assert "prompt_time_fit" in meta["mape_percent"] and "token_time_held_out" in meta["mape_percent"]
    loaded = load_profile(out, ServingPerfParams())
    assert loaded.compute_efficiency > 0 and loaded != ServingPerfParams()
    assert calibrate_cli(path, catalog_model, "A10", None, None).startswith("calibrated")
    # --per-tp: a [tp.N] table per degree, which load_profile applies at that degree.
    per_tp = tmp_path / "per_tp.toml"
    text = calibrate_cli(path, catalog_model, "A10", per_tp, "batch_size<=8", per_tp=True)
    assert "calibrated per tp" in text and "constants fitted per tp" in text
    data = tomllib.loads(per_tp.read_text())
    assert sorted(data["tp"]) == ["1", "2"] and data["meta"]["per_tp"] is True
    assert profile_degrees(per_tp) == (1, 2)
    for degree in (1, 2):
        got = load_profile(per_tp, tp=degree)
        assert got.compute_efficiency == data["tp"][str(degree)]["compute_efficiency"]
    assert load_profile(per_tp).compute_efficiency == data["compute_efficiency"]


# What the serving model reaches, fit on batch <= 8 and scored on batch > 8 (MAPE %, prompt_time /
# token_time; benchmarks/splitwise_validation.py prints the full table). The goal is <= 10 % held
# out: reached for token_time on both GPUs and for prompt_time on the H100. The A100's batched
# prefill costs more per token than its single long prompts; prefill_seq_overhead_s (about 17 ms
# per prompt) takes most of that (held out 18.7 % -> 10.1 %), but the A100 TP-4 batches stay
# 10-20 % under-predicted (their own b <= 8 rows too, with bimodal repeats at b = 4), so it
# stays just above 10 % with one set of constants for every TP degree (constants per degree
# reach the goal: test_splitwise_llama2_70b_per_tp_held_out_goal). The fit weighs every measured
# configuration once, so the H100's many batch-1 512-token rows count less and its per-row fit
# MAPE is higher than its held-out one.
REACHED = {
    "A100-80GB": {"fit": (4.5, 3.0), "held_out": (10.5, 6.5)},
    "H100-SXM": {"fit": (8.0, 1.5), "held_out": (7.5, 4.5)},
}


@pytest.fixture(scope="module")
def splitwise_results():
    if not SPLITWISE_CSV.is_file():
        pytest.skip("../shared/data is not beside the project")
    return {gpu: calibrate(SPLITWISE_CSV, "Llama-2-70B", gpu) for gpu in REACHED}


@pytest.mark.parametrize("gpu", sorted(REACHED))
def test_splitwise_llama2_70b_reached(splitwise_results, gpu):
    result = splitwise_results[gpu]
    assert result.tps == (2, 4, 8)
    assert len(result.dropped) == 5  # the batch-64 TP-2 rows, whose prefill beats peak FLOP/s
    for split, (prompt_bound, token_bound) in REACHED[gpu].items():
        assert result.mape[split]["prompt"] <= prompt_bound
        assert result.mape[split]["token"] <= token_bound
        # Calibration beats the defaults on the rows it was fitted to.
        assert result.mape["fit"]["prompt"] < result.default_mape["fit"]["prompt"]
        assert result.mape["fit"]["token"] < result.default_mape["fit"]["token"]
    # The fitted all-reduce cache size is of the order of the GPUs' L2 cache (40 / 50 MB).
    assert 20e6 < result.params.comm_cache_bytes < 100e6
    assert result.params.comm_spill_efficiency < result.params.comm_efficiency
    # Attention kernels never run faster than the dense GEMMs (the fit's bound).
    assert 0 < result.params.attention_efficiency <= result.params.compute_efficiency


_A100_PROMPT = pytest.mark.xfail(
    reason="A100 TP-4 batched prefill is 10-20 % slower than the model at every batch size "
    "(held-out prompt_time MAPE 10.1 %)",
    strict=True,
)


@pytest.mark.parametrize(
    ("gpu", "kind"),
    [
        pytest.param("A100-80GB", "prompt", marks=_A100_PROMPT),
        ("A100-80GB", "token"),
        ("H100-SXM", "prompt"),
        ("H100-SXM", "token"),
    ],
)
def test_splitwise_llama2_70b_held_out_goal(splitwise_results, gpu, kind):
    assert splitwise_results[gpu].mape["held_out"][kind] <= 10.0


# Calibrated per TP degree (``kavier calibrate --per-tp``: a profile per deployment), fit on batch
# <= 8 of each degree and scored on the same held-out rows: A100 7.5 / 7.8 %, H100 4.8 / 3.6 %.
PER_TP_REACHED = {"A100-80GB": (8.0, 8.5), "H100-SXM": (5.5, 4.0)}


@pytest.fixture(scope="module")
def splitwise_per_tp():
    if not SPLITWISE_CSV.is_file():
        pytest.skip("../shared/data is not beside the project")
    return {gpu: calibrate(SPLITWISE_CSV, "Llama-2-70B", gpu, per_tp=True) for gpu in PER_TP_REACHED}


@pytest.mark.parametrize("gpu", sorted(PER_TP_REACHED))
def test_splitwise_llama2_70b_per_tp_held_out_goal(splitwise_per_tp, splitwise_results, gpu):
    result = splitwise_per_tp[gpu]
    assert sorted(result.params_by_tp) == [2, 4, 8]
    assert result.params == splitwise_results[gpu].params  # the top level is the one fit
    assert result.joint_mape == splitwise_results[gpu].mape
    prompt_bound, token_bound = PER_TP_REACHED[gpu]
    assert result.mape["held_out"]["prompt"] <= min(prompt_bound, 10.0)
    assert result.mape["held_out"]["token"] <= min(token_bound, 10.0)


def test_repeated_rows_share_one_configuration_weight(tmp_path, llama3_8b, a10):
    rows = [[1, 512, 1, 0.2, 0.03]] * 4 + [[2, 512, 1, 0.4, 0.031]]
    path = _write_csv(
        tmp_path / "rep.csv", ["batch_size", "prompt_size", "tp", "prompt_time_s", "token_time_s"], rows
    )
    _, ms = read_measurements(path)
    w = _Points(ms, llama3_8b, a10, ServingPerfParams()).weight
    # per kind (prompt, token, interleaved per row): the four repeats share one half
    np.testing.assert_allclose(w[0::2], [0.125] * 4 + [0.5])
    np.testing.assert_allclose(w[1::2], [0.125] * 4 + [0.5])
    every = _Points(ms, llama3_8b, a10, ServingPerfParams(), weigh_repeats=False).weight
    np.testing.assert_allclose(every, [0.2] * 10)


def _config(tmp_path):
    """An HF config.json of Llama-2-70B's shape under another name."""
    import json

    path = tmp_path / "config.json"
    path.write_text(
        json.dumps(
            {
                "_name_or_path": "my-org/my-70b",
                "architectures": ["LlamaForCausalLM"],
                "hidden_size": 8192,
                "intermediate_size": 28672,
                "num_attention_heads": 64,
                "num_hidden_layers": 80,
                "num_key_value_heads": 8,
                "vocab_size": 32000,
                "max_position_embeddings": 4096,
            }
        )
    )
    return path


def _splitwise_like(tmp_path, models):
    lines = ["model,hardware,tensor_parallel,prompt_size,batch_size,token_size,prompt_time,token_time"]
    for model in models:
        for b in (1, 2, 4, 8, 16):
            lines.append(f"{model},h100-80gb,4,512,{b},128,{90 + 40 * b},{30 + 0.5 * b}")
    path = tmp_path / "m.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_calibrate_with_a_config_json_uses_the_rows_of_the_files_only_model(tmp_path):
    """`kavier calibrate --llm config.json` used to find no rows named after the config's model;
    a file holding one model is that model's."""
    result = calibrate(_splitwise_like(tmp_path, ["llama2-70b"]), str(_config(tmp_path)), "H100-SXM")
    assert len(result.rows) == 5


def test_calibrate_rows_model_picks_one_model_of_several(tmp_path):
    csv = _splitwise_like(tmp_path, ["llama2-70b", "bloom-176b"])
    with pytest.raises(ScenarioError, match="--rows-model"):
        calibrate(csv, str(_config(tmp_path)), "H100-SXM")
    result = calibrate(csv, str(_config(tmp_path)), "H100-SXM", rows_model="llama2-70b")
    assert len(result.rows) == 5
