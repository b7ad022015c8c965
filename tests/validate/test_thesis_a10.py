"""``kavier.validate.thesis_a10``: the thesis's MAPEs (within 0.05 points) and its data."""

import numpy as np

from kavier.validate.thesis_a10 import DECODE_MEDIANS, PREFILL_MEDIANS, thesis_a10


def test_thesis_a10_mape_prefill_and_decode():
    report = thesis_a10()
    prefill, decode = report.parts
    assert abs(prefill.mape_pct - 7.50) < 0.05
    assert abs(decode.mape_pct - 4.00) < 0.05


def test_measured_medians_match_the_shared_data(shared_data):
    import csv

    measurements = shared_data / "measurements"
    with open(measurements / "a10_llama3_8b_vllm_prefill_medians.csv") as f:
        rows = [(int(r["prompt_size"]), float(r["median_latency_s"])) for r in csv.DictReader(f)]
    assert rows == list(PREFILL_MEDIANS)
    with open(measurements / "a10_llama3_8b_vllm_decode_medians.csv") as f:
        rows = [
            (
                int(r["requested_response_size"]),
                int(r["actual_median_response_size"]),
                float(r["median_latency_s"]),
            )
            for r in csv.DictReader(f)
        ]
    assert rows == list(DECODE_MEDIANS)


def test_simulated_decode_is_prefill_of_seven_tokens_plus_tokens_times_tpot():
    decode = thesis_a10().parts[1]
    t_t = 2 * 8e9 / (600e9 * 0.6)
    t_p7 = 7 * 2 * 8e9 / (125e12 * 0.3) + 0.025
    n = np.array([a for _, a, _ in DECODE_MEDIANS])
    assert np.allclose(decode.simulated_s, t_p7 + n * t_t)
