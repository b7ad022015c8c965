"""``kavier.perf.thesis``: the thesis equations (docs/architecture.md) computed by hand."""

import numpy as np

from kavier.perf.thesis import ThesisPerfModel


def test_prefill_formula(llama3_8b, a10):
    perf = ThesisPerfModel(llama3_8b, a10)
    per_token = 2 * 8e9 / (125e12 * 0.30)
    assert np.isclose(perf.prefill_s(np.array([1000]))[0], 1000 * per_token + 0.025)


def test_time_per_token_is_memory_bound_on_a10(llama3_8b, a10):
    perf = ThesisPerfModel(llama3_8b, a10)
    memory = 2 * 8e9 / (600e9 * 0.60)
    compute = 2 * 8e9 / (125e12 * 0.30)
    assert memory > compute
    assert np.isclose(perf.time_per_token_s, memory)  # 44.4 ms per token


def test_decode_with_and_without_kv_cache(llama3_8b, a10):
    on = ThesisPerfModel(llama3_8b, a10, kv_cache=True)
    off = ThesisPerfModel(llama3_8b, a10, kv_cache=False)
    t = on.time_per_token_s
    n = np.array([1, 10, 100])
    assert np.allclose(on.decode_s(n), n * t)
    assert np.allclose(off.decode_s(n), n * (n + 1) / 2 * t)
