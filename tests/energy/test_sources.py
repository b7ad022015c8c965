"""``kavier.energy.sources``: a region's and the default intensity, a real trace."""

import pytest

from tests.energy.helpers import one_request


def test_region_and_default_intensity():
    nl = one_request(region="NL").summary
    from kavier.energy.carbon import region_intensity

    expected = region_intensity("NL").g_per_kwh
    assert nl["carbon_intensity_mean_g_per_kwh"] == pytest.approx(expected)
    assert (
        nl["carbon_intensity_source"]
        == "region NL: 268 gCO2/kWh (2023, Ember via Our World in Data, CC-BY-4.0)"
    )
    default = one_request().summary
    assert default["carbon_intensity_mean_g_per_kwh"] == pytest.approx(480.0)


def test_real_opendc_trace_nl(shared_data):
    trace = shared_data / "carbon" / "opendc_2022_NL.parquet"
    r = one_request(carbon_trace=str(trace), start_time="2022-03-01T12:00:00Z")
    assert 50 < r.summary["carbon_intensity_mean_g_per_kwh"] < 800
