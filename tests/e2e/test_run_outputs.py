"""End to end: the output contract of a run (columns and per-request identities)."""

import numpy as np

from kavier.events import REQUEST_COLUMNS
from kavier.observers.timeseries import COLUMNS as TIMESERIES_COLUMNS
from tests.runs import T_T, thesis_requests, thesis_simulate


def test_contract_columns_and_per_request_identities():
    r = thesis_simulate(requests=thesis_requests(), prefix_len=0)
    t = r.requests
    assert tuple(t.column_names) == REQUEST_COLUMNS
    assert tuple(r.timeseries.column_names) == TIMESERIES_COLUMNS
    c = {k: t.column(k).to_numpy(zero_copy_only=False) for k in t.column_names}
    assert sorted(c["request_id"]) == list(range(40))  # every request exactly once
    assert np.allclose(c["queue_s"], c["start_s"] - c["arrival_s"])
    assert np.allclose(c["e2e_s"], c["finish_s"] - c["arrival_s"])
    assert np.allclose(c["ttft_s"], c["first_token_s"] - c["arrival_s"])
    assert np.allclose(c["finish_s"], c["start_s"] + c["prefill_s"] + c["decode_s"])
    n_in, n_out = c["num_input_tokens"], c["num_output_tokens"]
    assert np.allclose(c["prefill_s"], n_in * 2 * 8e9 / (125e12 * 0.3) + 0.025)
    assert np.allclose(c["decode_s"], n_out * T_T)
    many = n_out >= 2
    assert np.allclose(c["tpot_s"][many], T_T)
    assert np.all(np.isnan(c["tpot_s"][~many]))
    # first token one decode step after prefill
    one = n_out >= 1
    assert np.allclose(c["first_token_s"][one], (c["start_s"] + c["prefill_s"] + T_T)[one])
