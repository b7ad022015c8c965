"""``kavier.validate.splitwise``: an end-to-end run of a measured batch reproduces the one-iteration
predictions ``kavier calibrate`` fits on (the same batch, the same constants)."""

from __future__ import annotations

from dataclasses import fields

import pytest

from kavier.library.catalog import load_catalog
from kavier.perf.calibrate import Measurement, predict_rows
from kavier.perf.roofline import ServingPerfParams
from kavier.validate.splitwise import replay


@pytest.mark.parametrize(
    ("model", "gpu", "tp", "prompt", "batch", "tokens"),
    [
        ("Llama-2-70B", "H100-SXM", 4, 512, 8, 128),
        ("Llama-2-70B", "A100-80GB", 8, 2048, 4, 256),
        ("Llama-3.1-8B", "H100-SXM", 1, 1024, 16, 64),
    ],
)
def test_a_replayed_batch_has_the_calibration_rows_prompt_and_token_time(
    model, gpu, tp, prompt, batch, tokens
):
    row = Measurement(
        line=2,
        batch_size=batch,
        prompt_size=prompt,
        tp=tp,
        prompt_time_s=1.0,
        token_time_s=1.0,
        context_tokens=prompt + tokens / 2.0,
        token_size=tokens,
    )
    catalog = load_catalog()
    params = ServingPerfParams()
    prompt_s, token_s = predict_rows([row], catalog.model(model), catalog.gpu(gpu), params)
    constants = {f.name: getattr(params, f.name) for f in fields(params)}
    constants["overhead_s"] = constants.pop("prefill_overhead_s")
    got = replay(model, gpu, tp, prompt, batch, tokens, **constants)
    assert got["prefill_s"] == pytest.approx(prompt_s[0], rel=1e-9)
    assert got["decode_step_s"] == pytest.approx(token_s[0], rel=1e-6)
