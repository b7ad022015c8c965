"""Run ``python -m kavier`` from this tree in a subprocess (one helper for every CLI test)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.paths import SRC


def kavier(*args: object, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``kavier ARGS...`` with this tree's ``src`` first on PYTHONPATH; text output captured."""
    env = {**os.environ, "PYTHONPATH": str(SRC) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run(
        [sys.executable, "-m", "kavier", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=300,
    )


# A 4-layer Llama in HuggingFace's config.json layout: 8 heads of 64, 2 KV heads
# (KV bytes per token at fp16: 2 x 4 layers x 2 heads x 64 x 2 bytes).
TINY_LLAMA_CONFIG = {
    "num_hidden_layers": 4,
    "hidden_size": 512,
    "num_attention_heads": 8,
    "num_key_value_heads": 2,
    "intermediate_size": 1024,
    "vocab_size": 1000,
    "model_type": "llama",
    "_name_or_path": "tiny-llama",
}


def write_tiny_llama_config(folder: Path) -> Path:
    """Write :data:`TINY_LLAMA_CONFIG` as ``folder/config.json``; returns its path."""
    import json

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "config.json"
    path.write_text(json.dumps(TINY_LLAMA_CONFIG))
    return path
