"""``kavier.observers.timeseries``: the time series' integrals and its coverage checks."""

import numpy as np
import pytest

import kavier
from tests.energy.helpers import write_trace
from tests.runs import thesis_requests, thesis_simulate, util_integral_expected


@pytest.mark.parametrize("rate", [0.01, 0.37, 1.0, 60.0])
def test_timeseries_integrals_do_not_depend_on_export_rate(rate):
    r = thesis_simulate(requests=thesis_requests(), prefix_len=0, export_rate=rate)
    ts = r.timeseries
    width = ts.column("interval_s").to_numpy()

    def integral(name):
        return float(np.sum(ts.column(name).to_numpy() * width))

    assert integral("gpu_utilization") == pytest.approx(util_integral_expected(r.requests), rel=1e-9)
    assert integral("running") == pytest.approx(r.summary["gpu_busy_s"], rel=1e-9)
    queued = float(np.sum(r.requests.column("queue_s")))
    assert integral("waiting") == pytest.approx(queued, rel=1e-9, abs=1e-9)
    # intervals tile the run exactly: [0, simulated_time_s]
    assert float(np.sum(width)) == pytest.approx(r.summary["simulated_time_s"], rel=1e-12)
    assert np.all(width[:-1] == rate)


def test_carbon_trace_must_cover_the_run_unless_wrapped(tmp_path):
    from kavier.errors import ScenarioError

    trace = tmp_path / "c.parquet"
    write_trace(trace, 1656633600000, [100.0, 300.0])
    req = {"num_input_tokens": [10], "num_output_tokens": [200_000], "arrival_s": [0.0]}
    with pytest.raises(ScenarioError, match="carbon-trace-wrap"):
        kavier.simulate(
            requests=req,
            preset="thesis",
            prefix_len=0,
            carbon_trace=str(trace),
            start_time="2022-07-01T00:00:00Z",
        )
    wrapped = kavier.simulate(
        requests=req,
        preset="thesis",
        prefix_len=0,
        carbon_trace=str(trace),
        carbon_trace_wrap=True,
        start_time="2022-07-01T00:00:00Z",
        export_rate=3600.0,
    )
    intensity = wrapped.timeseries.column("carbon_intensity_g_per_kwh").to_numpy()
    assert np.allclose(intensity[:3], [100.0, 300.0, 100.0], rtol=1e-9)
