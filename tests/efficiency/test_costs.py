"""``kavier.efficiency.costs``: GPU and energy cost, embodied carbon and per-token metrics by hand."""

import pytest

from tests.energy.helpers import one_request


def test_cost_and_embodied_carbon():
    r = one_request(
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
