"""The presets: the defaults a scenario starts from (``preset = "serving"`` or ``"thesis"``).

A preset's values replace the fields' defaults unless the scenario gives them (resolution
order: preset < scenario file < command-line flags; :func:`kavier.scenario.build_scenario`).
"""

from __future__ import annotations

from typing import Any

PRESETS: dict[str, dict[str, Any]] = {
    # Real serving: continuous batching with a paged KV cache on each replica, the batched
    # roofline performance model, many replicas behind a router.
    "serving": {
        "scheduler": "continuous",
        "perf_model": "serving",
        "prefix_cache": "block",
    },
    # The thesis prototype: one request at a time per GPU, thesis roofline model, thesis
    # prefix cache (exact match on the first prefix_len tokens, capacity in prompts, LRU).
    "thesis": {
        "scheduler": "sequential",
        "perf_model": "thesis",
        "prefix_cache": "thesis",
        "compute_efficiency": 0.30,
        "memory_efficiency": 0.60,
        "overhead_s": 0.025,
        "power_memory_weight": 0.5,
        "power_compute_weight": 1.0,
        "power_active_floor": 0.0,
    },
}
DEFAULT_PRESET = "serving"
