"""``kavier.workload.scale``: ``rate_scale`` divides arrival times exactly."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pyarrow.parquet as pq
import pytest

import kavier
from kavier.errors import ScenarioError
from kavier.scenario import build_scenario
from kavier.workload.build import workload_source
from kavier.workload.source import concat_chunks


def _arrivals(**keys) -> np.ndarray:
    return concat_chunks(workload_source(build_scenario(None, keys)).chunks(64)).arrival_s


@pytest.mark.parametrize("arrival", ["poisson", "gamma"])
def test_rate_scale_halves_generator_inter_arrival_times_exactly(arrival):
    keys = {"workload": arrival, "rate": 3.0, "num_requests": 500, "arrival_cv": 2.0}
    one, two = _arrivals(**keys), _arrivals(**keys, rate_scale=2.0)
    assert np.array_equal(two, one * 0.5)
    np.testing.assert_allclose(_arrivals(**keys, rate_scale=3.0), one / 3.0, rtol=1e-12)


def test_rate_scale_divides_trace_arrivals(tmp_path):
    trace = tmp_path / "t.csv"
    trace.write_text(
        "ts,num_input_tokens,num_output_tokens\n" + "".join(f"{7 + i * 1.5},100,10\n" for i in range(20))
    )
    one = _arrivals(trace=str(trace))
    two = _arrivals(trace=str(trace), rate_scale=2.0)
    assert np.array_equal(two, one * 0.5) and one[-1] == pytest.approx(28.5)
    res = kavier.simulate(trace=str(trace), llm="Llama-3-8B", gpu="A10", rate_scale=2.0)
    assert np.array_equal(res.requests.column("arrival_s").to_numpy(), one * 0.5)


def test_rate_scale_divides_in_memory_and_cli_arrivals(tmp_path):
    arrivals = [0.0, 3.0, 5.0, 9.0]
    columns = {"num_input_tokens": [100] * 4, "num_output_tokens": [10] * 4, "arrival_s": arrivals}
    res = kavier.simulate(requests=columns, llm="Llama-3-8B", gpu="A10", rate_scale=4.0)
    assert res.requests.column("arrival_s").to_pylist() == [0.0, 0.75, 1.25, 2.25]
    trace = tmp_path / "t.csv"
    trace.write_text("ts,num_input_tokens,num_output_tokens\n0,100,10\n3,100,10\n5,100,10\n9,100,10\n")
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "kavier", "run", "--trace", str(trace), "--rate-scale", "4", "-o", str(out)]
    cmd.append("-q")
    assert subprocess.run(cmd, capture_output=True).returncode == 0
    assert pq.read_table(out / "requests.parquet").column("arrival_s").to_pylist() == [0.0, 0.75, 1.25, 2.25]


def test_rate_scale_multiplies_chat_session_rate():
    keys = {"num_sessions": 30}
    src1 = concat_chunks(workload_source(build_scenario(None, keys)).chunks(64))
    src2 = concat_chunks(workload_source(build_scenario(None, {**keys, "rate_scale": 2.0})).chunks(64))
    starts1 = np.sort(src1.arrival_s[src1.turn_id == 0])
    starts2 = np.sort(src2.arrival_s[src2.turn_id == 0])
    assert np.array_equal(starts2, starts1 * 0.5)  # sessions start twice as often
    assert len(src1) == len(src2)


def test_rate_scale_one_keeps_outputs_identical_and_closed_loop_rejects_it():
    keys = {"workload": "poisson", "num_requests": 50, "rate": 4.0, "llm": "Llama-3-8B", "gpu": "A10"}
    a, b = kavier.simulate(**keys), kavier.simulate(**keys, rate_scale=1.0)
    assert a.requests.equals(b.requests) and a.summary.keys() == b.summary.keys()
    assert a.scenario.to_json_dict()["rate_scale"] == 1.0
    with pytest.raises(ScenarioError, match="closed-loop"):
        build_scenario(None, {"workload": "closed-loop", "rate_scale": 2.0})
    with pytest.raises(ScenarioError, match="rate-scale 0"):
        build_scenario(None, {"rate_scale": 0})
