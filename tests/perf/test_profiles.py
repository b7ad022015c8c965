"""``kavier.perf.profiles``: the shipped profiles, how a GPU finds one, and the bands."""

from __future__ import annotations

import math
import tomllib

import pytest
from hypothesis import given
from hypothesis import strategies as st

import kavier
from kavier.library.catalog import load_catalog
from kavier.perf.profile import load_profile
from kavier.perf.profiles import (
    BAND_KEYS,
    HERE,
    NEAREST,
    band_limits,
    bands,
    share_scale,
    shipped_profile,
)
from kavier.perf.roofline import ServingPerfParams
from kavier.registry import ENGINES

FAMILIES = sorted({ENGINES.get(name).profile_family for name in ENGINES.names()})
CATALOG_GPUS = list(load_catalog().gpus)
# Every per-GPU profile file: <engine>/<GPU>.toml, not the generic fit nor the bands.
GPU_PROFILES = sorted(
    p for family in FAMILIES for p in (HERE / family).glob("*.toml") if p.stem not in ("generic", "bands")
)
# (engine, GPU) pairs that kavier validate replays (benchmarks/fit_profiles.py SUITE_ENGINE: the
# Splitwise suite with vllm-v0 on A100-80GB and H100-SXM, the A10 and ML.ENERGY H100 suites with
# vllm-v1, vllm-public with vllm-v1 on A100-80GB): their profiles carry the replays' errors in
# [meta.validation].
REPLAYED = {
    ("vllm-v0", "A100-80GB"),
    ("vllm-v0", "H100-SXM"),
    ("vllm-v1", "A10"),
    ("vllm-v1", "A100-80GB"),
    ("vllm-v1", "H100-SXM"),
}
SMALL = {
    "llm": "Llama-3.1-8B",
    "workload": "poisson",
    "rate": 20.0,
    "num_requests": 12,
    "input_tokens": "800",
    "output_tokens": "16",
    "seed": 2,
    "opendc": False,
    "prefix_cache": "off",
}


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("gpu", CATALOG_GPUS)
def test_every_catalogue_gpu_gets_a_loadable_profile(family, gpu):
    """Every library GPU gets a profile of each engine, named <engine>/<file stem>, that loads."""
    found = shipped_profile(family, gpu)
    assert found is not None and found.path.is_file()
    assert found.path.parent == HERE / family and found.name == f"{family}/{found.path.stem}"
    assert found.path.stem != "generic", f"{gpu} should have its own or a near profile"
    assert isinstance(load_profile(found.path), ServingPerfParams)


@pytest.mark.parametrize("family", FAMILIES)
def test_own_nearest_and_generic_profiles(family):
    """A GPU with a file has an empty note; a NEAREST GPU takes its neighbour's and says so."""
    own = {p.stem for p in (HERE / family).glob("*.toml")} - {"generic", "bands"}
    assert own == {"A10", "A100-80GB", "H100-SXM", "L40S"}
    for gpu in own:
        found = shipped_profile(family, gpu)
        assert (found.path, found.name, found.note) == (HERE / family / f"{gpu}.toml", f"{family}/{gpu}", "")
    for gpu, (near, why) in NEAREST.items():
        assert gpu in CATALOG_GPUS and near in own, gpu
        found = shipped_profile(family, gpu)
        assert found.path == HERE / family / f"{near}.toml" and found.name == f"{family}/{near}"
        assert found.note.startswith(f"{gpu} has no calibrated profile; using {near}'s") and why in found.note
    b200 = shipped_profile(family, "B200")
    assert b200.name == f"{family}/H100-SXM" and "H100-SXM" in b200.note


def test_share_scale_is_the_ratio_of_measured_shares():
    """B200 on H100-SXM's profile: 0.630 / 0.789 of its compute efficiency (OpenXLA's measured
    GEMMs, 1,417 of 2,250 and 780 of 989 TFLOP/s) and 0.682 / 0.894 of its all-reduce efficiency
    (measured 2 GiB all-reduces, 613.9 of 900 and 402.5 of 450 GB/s bus bandwidth); 1 when
    either GPU has no measured share."""
    cat = load_catalog()
    b200, h100, h200 = cat.gpu("B200"), cat.gpu("H100-SXM"), cat.gpu("H200")
    assert (b200.gemm_peak_fraction, h100.gemm_peak_fraction) == (0.630, 0.789)
    gemm = (1417 / 2250) / (780 / 989)
    assert share_scale(b200, h100, "gemm_peak_fraction") == pytest.approx(gemm, rel=2e-3)
    bus = 2 * 7 / 8  # bus bandwidth over tensor bytes per second, 8 GPUs
    assert share_scale(b200, h100, "allreduce_link_fraction") == pytest.approx(
        (bus * 350.8 / 900) / (bus * 230.0 / 450), rel=2e-3
    )
    for share in ("gemm_peak_fraction", "allreduce_link_fraction"):
        assert share_scale(h200, h100, share) == 1.0 and share_scale(h100, h200, share) == 1.0
    # BabelStream triads (Azure's ND H200 v5 and ND H100 v5 results): 4.15 of 4.8 and 2.97 of 3.35 TB/s
    triad = (4.15 / 4.8) / (2.97 / 3.35)
    assert share_scale(h200, h100, "memory_bandwidth_fraction") == pytest.approx(triad, rel=2e-3)
    assert share_scale(b200, h100, "memory_bandwidth_fraction") == 1.0  # no B200 triad published


@pytest.mark.parametrize("family", FAMILIES)
def test_borrowed_profile_is_scaled_by_measured_shares(family):
    """A GPU on a NEAREST profile gets the donor's compute, memory and comm efficiencies times
    the share ratios, every other constant unchanged, and the note says so; an efficiency without
    both GPUs' measured shares is not scaled."""
    from dataclasses import replace

    from kavier.engine.system import load_perf_params
    from kavier.scenario import Scenario

    engine = next(n for n in ENGINES.names() if ENGINES.get(n).profile_family == family)
    scenario = Scenario(engine=engine)
    donor, _, _ = load_perf_params(scenario, 1, "H100-SXM")
    b200, name, note = load_perf_params(scenario, 1, "B200")
    assert name == f"{family}/H100-SXM"
    assert b200.compute_efficiency == pytest.approx(donor.compute_efficiency * 0.630 / 0.789)
    assert b200.comm_efficiency == pytest.approx(donor.comm_efficiency * 0.682 / 0.894)
    assert replace(b200, compute_efficiency=0.5, comm_efficiency=0.5) == replace(
        donor, compute_efficiency=0.5, comm_efficiency=0.5
    )
    assert "compute efficiency x 0.80" in note and "comm efficiency x 0.76" in note
    assert b200.memory_efficiency == donor.memory_efficiency and "memory efficiency" not in note
    h200, _, note = load_perf_params(scenario, 1, "H200")
    assert h200.memory_efficiency == pytest.approx(donor.memory_efficiency * 0.865 / 0.887)
    assert replace(h200, memory_efficiency=0.5) == replace(donor, memory_efficiency=0.5)
    assert "memory efficiency x 0.98" in note and "compute efficiency" not in note


def test_held_out_gpu_profiles_borrow_as_the_fallback_does():
    """Each held-out-by-GPU profile of benchmarks/fit_profiles.py carries the efficiencies of the
    GPU its [meta] names in the fit without the held-out GPU's rows (fit.json), scaled by the two
    GPUs' measured shares as Kavier's fallback scales a borrowed profile (at most 1)."""
    import json

    fit = json.loads((HERE / "fit.json").read_text(encoding="utf-8"))
    cat = load_catalog()
    for gpu, values in fit["held_out_gpu"].items():
        for family in FAMILIES:
            path = HERE / family / "held-out" / f"gpu-{gpu}.toml"
            held = tomllib.loads(path.read_text(encoding="utf-8"))
            donor = held["meta"]["held_out"].split("; ", 1)[1].split("'s ", 1)[0]
            for constant, share in (
                ("compute_efficiency", "gemm_peak_fraction"),
                ("memory_efficiency", "memory_bandwidth_fraction"),
            ):
                scale = share_scale(cat.gpu(gpu), cat.gpu(donor), share)
                expected = min(1.0, values[f"{constant}@gpu={donor}"] * scale)
                assert held[constant] == pytest.approx(expected, rel=1e-12), (path, constant)


def test_held_out_model_profiles_of_a_gpu_left_without_rows_borrow():
    """A leave-one-model-out fit that keeps no row of some GPU (the A10, whose only rows are
    Llama-3-8B's) has no efficiencies of that GPU; its held-out-by-model profile is then what an
    unmeasured GPU gets (the donor's efficiencies scaled by the measured shares, and a [meta]
    saying so), never the fit's neutral starting values. GPUs with rows left keep their own."""
    import json

    fit = json.loads((HERE / "fit.json").read_text(encoding="utf-8"))
    cat = load_catalog()
    borrowed = 0
    for model, values in fit["held_out_model"].items():
        for gpu in fit["held_out_gpu"]:
            for family in FAMILIES:
                path = HERE / family / "held-out" / f"model-{model}" / f"{gpu}.toml"
                held = tomllib.loads(path.read_text(encoding="utf-8"))
                if f"compute_efficiency@gpu={gpu}" in values:
                    assert held["compute_efficiency"] == values[f"compute_efficiency@gpu={gpu}"], path
                    assert "stand in" not in held["meta"]["held_out"], path
                    continue
                borrowed += 1
                assert "stand in" in held["meta"]["held_out"], path
                donor = held["meta"]["held_out"].split(": ", 1)[1].split("'s ", 1)[0]
                scale = share_scale(cat.gpu(gpu), cat.gpu(donor), "gemm_peak_fraction")
                expected = min(1.0, values[f"compute_efficiency@gpu={donor}"] * scale)
                assert held["compute_efficiency"] == pytest.approx(expected, rel=1e-12), path
    assert borrowed >= len(FAMILIES)  # the A10 without Llama-3-8B, in every family


USER_GPU = """
[gpus.My-H100-Like]
fp16_dense_tflops = 800
memory_gib = 94
memory_bandwidth_gb_per_s = 3900
idle_power_w = 60
max_power_w = 400
interconnect_gb_per_s = 300
price_per_hour_usd = 3.0
embodied_co2_kg = 150
gemm_peak_fraction = 0.7
allreduce_link_fraction = 0.8
nearest = "{nearest}"
source = "made up for a test"
"""


def test_a_user_gpu_names_its_nearest_profile(tmp_path):
    """A user catalogue's GPU with ``nearest`` takes that GPU's profile, scaled by the measured
    shares it gives, and the run says so; a ``nearest`` without a profile is a one-line error."""
    from kavier.engine.system import load_perf_params
    from kavier.errors import LibraryError
    from kavier.scenario import Scenario

    catalog = tmp_path / "gpus.toml"
    catalog.write_text(USER_GPU.format(nearest="H100-SXM"))
    scenario = Scenario(catalog=str(catalog))
    donor, _, _ = load_perf_params(scenario, 2, "H100-SXM")
    mine, name, note = load_perf_params(scenario, 2, "My-H100-Like")
    assert name == "vllm-v1/H100-SXM" and "'nearest' field" in note
    assert mine.compute_efficiency == pytest.approx(donor.compute_efficiency * 0.7 / 0.789)
    assert mine.comm_efficiency == pytest.approx(donor.comm_efficiency * 0.8 / 0.894)
    assert mine.memory_efficiency == donor.memory_efficiency
    summary = kavier.simulate(gpu="My-H100-Like", catalog=str(catalog), **SMALL).summary
    assert summary["perf_profile_used"] == "vllm-v1/H100-SXM"
    assert "My-H100-Like" in summary["perf_profile_note"]
    catalog.write_text(USER_GPU.format(nearest="B200"))
    with pytest.raises(LibraryError, match="nearest = 'B200' has no calibrated vllm-v1 profile") as err:
        load_perf_params(Scenario(catalog=str(catalog)), 1, "My-H100-Like")
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("family", FAMILIES)
def test_unknown_gpu_takes_the_generic_fit(family):
    """A GPU neither shipped nor in NEAREST takes generic.toml, with a note naming the GPU."""
    found = shipped_profile(family, "Made-Up-9000")
    assert found.path == HERE / family / "generic.toml" and found.name == f"{family}/generic"
    assert found.note.startswith("Made-Up-9000 has no calibrated profile") and "generic" in found.note
    assert shipped_profile("no-such-engine", "H100-SXM") is None


def test_run_reports_the_profile_it_used(tmp_path):
    """A run names its profile: own (no note), nearest (B200: H100-SXM's, noted) or generic."""
    h100 = kavier.simulate(gpu="H100-SXM", **SMALL).summary
    assert h100["perf_profile_used"] == "vllm-v1/H100-SXM" and h100["perf_profile_note"] is None
    b200 = kavier.simulate(gpu="B200", **SMALL).summary
    assert b200["perf_profile_used"] == "vllm-v1/H100-SXM"
    note = b200["perf_profile_note"]
    assert note and "B200" in note and "H100-SXM" in note
    v0 = kavier.simulate(gpu="B200", engine="vllm-v0", **SMALL).summary
    assert v0["perf_profile_used"] == "vllm-v0/H100-SXM"
    catalog = tmp_path / "gpus.toml"
    catalog.write_text(
        "[gpus.Made-Up-9000]\nfp16_dense_tflops = 200\nmemory_gib = 48\nmemory_bandwidth_gb_per_s = 1500\n"
        "idle_power_w = 40\nmax_power_w = 400\ninterconnect_gb_per_s = 64\nprice_per_hour_usd = 1.5\n"
        'embodied_co2_kg = 100\nsource = "made up for a test"\n'
    )
    generic = kavier.simulate(gpu="Made-Up-9000", catalog=str(catalog), **SMALL).summary
    assert generic["perf_profile_used"] == "vllm-v1/generic"
    assert "Made-Up-9000" in generic["perf_profile_note"]


@pytest.mark.parametrize("path", GPU_PROFILES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_shipped_gpu_profile_files_carry_their_provenance(path):
    """Each <engine>/<GPU>.toml loads, names its GPU and engine, has a source and (when replayed)
    its validation fitted and held out by GPU and by model."""
    params = load_profile(path)
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    assert params.compute_efficiency == data["compute_efficiency"]
    meta = data["meta"]
    assert (meta["gpu"], meta["engine"]) == (path.stem, path.parent.name)
    assert path.stem in CATALOG_GPUS
    assert isinstance(meta["source"], str) and meta["source"].strip()
    validation = meta.get("validation")
    if (path.parent.name, path.stem) in REPLAYED:
        assert validation is not None, f"{path.parent.name}/{path.stem}: no [meta.validation]"
    if validation is None:
        return
    # fitted where a suite fitted on it replays this GPU; held_out_shipped where only suites no
    # constant saw do (vllm-v1/A100-80GB: vllm-public)
    assert validation.get("fitted") or validation.get("held_out_shipped")
    for split in ("fitted", "held_out_shipped", "held_out_gpu", "held_out_model"):
        if split in ("held_out_gpu", "held_out_model"):
            assert validation[split], split
        for metric, (mape, count) in validation.get(split, {}).items():
            assert math.isfinite(mape) and mape >= 0 and isinstance(count, int) and count > 0, metric


@pytest.mark.parametrize("family", FAMILIES)
def test_generic_profile_loads_and_names_its_source(family):
    """Each engine's generic.toml loads and says what it was fitted on."""
    path = HERE / family / "generic.toml"
    assert isinstance(load_profile(path), ServingPerfParams)
    meta = tomllib.loads(path.read_text(encoding="utf-8"))["meta"]
    assert meta["source"].strip() and meta["fitted_on"]


@pytest.mark.parametrize("family", FAMILIES)
def test_bands_read_bands_toml(family):
    """bands() gives (q10, q90) of every band class of bands.toml, q10 <= q90, each class in BAND_KEYS."""
    data = tomllib.loads((HERE / family / "bands.toml").read_text(encoding="utf-8"))
    found = bands(family)
    assert set(found) == set(data) == set(BAND_KEYS)
    for name, (q_low, q_high) in found.items():
        assert (q_low, q_high) == (data[name]["q10"], data[name]["q90"])
        assert -1 < q_low <= q_high and data[name]["n"] > 0
    assert bands("no-such-engine") == {}


@given(
    value=st.floats(0, 1e9),
    qs=st.lists(st.floats(-0.95, 5.0), min_size=2, max_size=2).map(sorted),
)
def test_band_limits_invert_the_relative_error(value, qs):
    """band_limits gives value / (1 + q90) <= value / (1 + q10): measured values at the quantiles."""
    q_low, q_high = qs
    low, high = band_limits(value, q_low, q_high)
    assert low <= high
    assert low * (1 + q_high) == pytest.approx(value, rel=1e-12, abs=1e-300)
    assert high * (1 + q_low) == pytest.approx(value, rel=1e-12, abs=1e-300)
    if q_low <= 0 <= q_high:
        assert low <= value <= high  # an unbiased band holds the prediction
    if q_low > 0:
        assert high <= value  # predictions run high: the band lies below them
    if q_high < 0:
        assert low >= value  # predictions run low: the band lies above them


def test_borrow_named_scales_and_says_by_how_much():
    """A10 on A100-80GB's constants: compute x 0.448 / 0.731 and memory x 0.782 / 0.834, the
    clause naming both factors; a GPU borrowing from itself keeps its constants, with no clause."""
    from kavier.perf.profiles import borrow_named

    base = ServingPerfParams(compute_efficiency=0.6, memory_efficiency=0.8)
    a10, clause = borrow_named(base, "A10", "A100-80GB")
    assert a10.compute_efficiency == pytest.approx(0.6 * 0.448 / 0.731)
    assert a10.memory_efficiency == pytest.approx(0.8 * 0.782 / 0.834)
    assert clause == ", scaled by the measured shares (compute efficiency x 0.613, memory efficiency x 0.938)"
    assert borrow_named(base, "A10", "A10") == (base, "")
