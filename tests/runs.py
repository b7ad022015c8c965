"""Small runs shared by tests in several folders: thesis-preset runs whose formulas the tests pin,
and the serving set-up of the cache tests."""

from __future__ import annotations

import numpy as np

import kavier

# The serving engine on one H100 with the catalogue's Llama-3.1-8B, no OpenDC files.
SERVE = {"llm": "Llama-3.1-8B", "gpu": "H100-SXM", "opendc": False}
UNIT = 512  # tokens per Mooncake hash id (one prefix unit)
T_T = 2 * 8e9 / (600e9 * 0.6)  # thesis time per output token, Llama-3-8B on A10


def thesis_simulate(**kw):
    """These tests pin the thesis preset's exact formulas."""
    return kavier.simulate(preset="thesis", **kw)


def thesis_requests(n=40, seed=1, gap=5.0):
    rng = np.random.default_rng(seed)
    return {
        "num_input_tokens": rng.integers(1, 3000, n),
        "num_output_tokens": rng.integers(0, 300, n),
        "arrival_s": np.cumsum(rng.exponential(gap, n)),
    }


def util_integral_expected(t):
    """The thesis utilisation profile's integral over every request of the table ``t``."""
    prefill = t.column("prefill_s").to_numpy()
    decode = t.column("decode_s").to_numpy()
    d = prefill + decode
    warm = np.minimum(0.2, d)
    cool = np.maximum(d - 0.2, warm)
    return float(np.sum(0.5 * d + 0.45 * (cool - warm)))


def base_and_cached_folders(tmp_path):
    """Two thesis runs written to folders: without and with the prefix cache (mse power model)."""
    folders = []
    for name, prefix in (("base", 0), ("cached", 1024)):
        s = kavier.build_scenario(
            overrides={
                "preset": "thesis",
                "num_sessions": 12,
                "prefix_len": prefix,
                "power_model": "mse",
                "output_folder": str(tmp_path / name),
            }
        )
        folder, _ = kavier.run_to_folder(s)
        folders.append(folder)
    return folders
