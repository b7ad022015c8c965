"""Power models, energy as the exact integral of power, carbon, PUE and cost, by hand."""

import math

import numpy as np
import pytest

import kavier
from kavier.energy.power import PowerModel

IDLE, MAX = 50.0, 250.0


@pytest.mark.parametrize(
    ("name", "u", "expected"),
    [
        ("constant", 0.3, MAX),
        ("linear", 0.3, IDLE + 200 * 0.3),
        ("square", 0.3, IDLE + 200 * 0.09),
        ("cubic", 0.3, IDLE + 200 * 0.027),
        ("sqrt", 0.25, IDLE + 200 * 0.5),
        ("mse", 0.5, IDLE + 200 * (1.0 - 0.5**1.4)),
        ("asymptotic", 0.5, IDLE + 100 * (1.5 - math.exp(-0.5 / 0.3))),
        ("asymptotic-dvfs", 0.5, IDLE + 100 * (1.125 - math.exp(-0.125 / 0.3))),
    ],
)
def test_opendc_power_models(name, u, expected):
    model = PowerModel(name, IDLE, MAX)
    assert model.power_w(np.array([u]))[0] == pytest.approx(expected)
    if name != "constant":
        assert model.power_w(np.array([0.0]))[0] == pytest.approx(IDLE)


def test_activity_model_prefill_vs_decode_like_a_measured_h100():
    h100 = PowerModel("activity", 70.0, 700.0)
    prefill = h100.power_w(np.array([0.95]), np.array([1.0]), np.array([0.05]))[0]
    decode = h100.power_w(np.array([0.95]), np.array([0.007]), np.array([1.0]))[0]
    assert prefill == pytest.approx(700.0)
    assert 360 < decode < 400
    assert h100.power_w(np.array([0.0]), np.array([1.0]), np.array([1.0]))[0] == pytest.approx(70.0)


def _one_request(**kw):
    req = {"num_input_tokens": [1000], "num_output_tokens": [100], "arrival_s": [0.0]}
    return kavier.simulate(requests=req, prefix_len=0, gpu_idle_w=IDLE, gpu_max_w=MAX, **kw)


def test_one_request_energy_by_hand():
    r = _one_request(power_model="linear", export_rate=0.05, carbon_intensity=300.0, pue=1.25)
    t_p = 1000 * 2 * 8e9 / (125e12 * 0.3) + 0.025
    t_d = 100 * 2 * 8e9 / (600e9 * 0.6)
    d = t_p + t_d
    # utilisation 0.5 in the first and last 0.2 s, 0.95 between
    util_seconds = 0.5 * 0.4 + 0.95 * (d - 0.4)
    energy = IDLE * d + (MAX - IDLE) * util_seconds
    s = r.summary
    assert s["simulated_time_s"] == pytest.approx(d)
    assert s["energy_it_j"] == pytest.approx(energy, rel=1e-12)
    assert s["energy_facility_j"] == pytest.approx(1.25 * energy, rel=1e-12)
    assert s["co2_operational_g"] == pytest.approx(1.25 * energy * 300.0 / 3.6e6, rel=1e-12)
    ts = r.timeseries
    energy_j = ts.column("energy_j").to_numpy()
    assert energy_j.sum() == pytest.approx(energy, rel=1e-12)
    assert np.allclose(energy_j, ts.column("power_w").to_numpy() * ts.column("interval_s").to_numpy())
    assert np.allclose(ts.column("co2_g").to_numpy(), energy_j * 1.25 * 300.0 / 3.6e6)
    assert s["avg_power_w"] == pytest.approx(energy / d)


@pytest.mark.parametrize("model", ["linear", "mse", "asymptotic", "activity", "cubic"])
def test_energy_does_not_depend_on_export_rate(model):
    rng = np.random.default_rng(3)
    req = {
        "num_input_tokens": rng.integers(1, 4000, 60),
        "num_output_tokens": rng.integers(1, 300, 60),
        "arrival_s": np.cumsum(rng.exponential(8.0, 60)),
    }
    energies = [
        kavier.simulate(requests=req, prefix_len=0, gpus=2, power_model=model, export_rate=rate).summary[
            "energy_it_j"
        ]
        for rate in (0.01, 0.7, 1.0, 300.0)
    ]
    assert max(energies) - min(energies) <= 1e-9 * max(energies)


def test_idle_gpus_draw_idle_power_for_the_whole_run():
    req = {"num_input_tokens": [10, 10], "num_output_tokens": [1, 1], "arrival_s": [0.0, 1000.0]}
    r = kavier.simulate(requests=req, prefix_len=0, gpus=4, gpu_idle_w=IDLE, gpu_max_w=MAX, export_rate=10.0)
    end = r.summary["simulated_time_s"]
    ts = r.timeseries
    replica = ts.column("replica").to_numpy()
    energy = ts.column("energy_j").to_numpy()
    used = set(r.requests.column("replica").to_pylist())
    for g in set(range(4)) - used:
        assert energy[replica == g].sum() == pytest.approx(IDLE * end, rel=1e-12)
    assert r.summary["energy_it_j"] > 4 * IDLE * end


def test_cost_and_embodied_carbon():
    r = _one_request(
        gpu_price_per_hour=3.6, energy_price_per_kwh=0.2, gpu_lifetime_years=4, token_price_per_mtok="1,2"
    )
    s = r.summary
    hours = s["simulated_time_s"] / 3600
    assert s["cost_gpu_usd"] == pytest.approx(3.6 * hours)
    assert s["cost_energy_usd"] == pytest.approx(s["energy_facility_j"] / 3.6e6 * 0.2)
    assert s["cost_total_usd"] == pytest.approx(s["cost_gpu_usd"] + s["cost_energy_usd"])
    from kavier.library.catalog import load_catalog

    embodied = load_catalog().gpu("A10").embodied_co2_g
    assert s["co2_embodied_g"] == pytest.approx(embodied * s["simulated_time_s"] / (4 * 365.25 * 86400))
    assert s["usd_per_mtok"] == pytest.approx(s["cost_total_usd"] / (1100 / 1e6))
    assert s["wh_per_mtok"] == pytest.approx(s["energy_facility_j"] / 3600 / (1100 / 1e6))
    assert s["joules_per_output_token"] == pytest.approx(s["energy_facility_j"] / 100)
    assert s["revenue_usd"] == pytest.approx(1000 / 1e6 * 1 + 100 / 1e6 * 2)


def test_pue_below_one_is_rejected():
    from kavier.errors import ScenarioError

    with pytest.raises(ScenarioError, match="PUE"):
        kavier.build_scenario(overrides={"pue": 0.9})
