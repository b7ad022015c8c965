"""``kavier.engine.schedulers``: continuous batching beats static batching beats one at a time
(the shared contract is in test_scheduler_contract.py)."""

import numpy as np
import pytest

import kavier


def test_batching_beats_one_at_a_time():
    rng = np.random.default_rng(0)
    req = {
        "num_input_tokens": rng.integers(100, 2000, 200),
        "num_output_tokens": rng.integers(50, 400, 200),
        "arrival_s": np.sort(rng.uniform(0, 60, 200)),
    }
    batched = kavier.simulate(requests=req).summary
    one = kavier.simulate(requests=req, scheduler="sequential").summary
    static = kavier.simulate(requests=req, scheduler="static").summary
    assert batched["mean_batch_size"] > 5
    assert one["mean_batch_size"] == pytest.approx(1.0)
    assert batched["simulated_time_s"] < static["simulated_time_s"] <= one["simulated_time_s"] + 1e-9
    assert batched["e2e_mean_s"] < one["e2e_mean_s"]


@pytest.mark.parametrize(
    ("chunked", "prompt", "refused"), [(False, 1001, True), (False, 1000, False), (True, 10**6, False)]
)
def test_refusal_names_prompts_a_whole_prompt_policy_can_never_run(chunked, prompt, refused):
    from kavier.engine.schedulers.base import BatchScheduler, SchedulerSettings

    policy = BatchScheduler(SchedulerSettings(max_batched_tokens=1000, chunked_prefill=chunked))
    reason = policy.refusal(prompt)
    assert (reason is not None) == refused
    assert reason is None or ("1000 tokens" in reason and "\n" not in reason)
