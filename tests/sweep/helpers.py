"""Sweep files for the sweep tests: a tiny base scenario plus the axes a test gives."""

from __future__ import annotations

from pathlib import Path

# A tiny scenario: 30 Poisson requests on one A10, no OpenDC files (fast to run and write).
BASE = """
llm = "Llama-3-8B"
gpu = "A10"
workload = "poisson"
num_requests = 30
rate = 4.0
input_tokens = "lognormal:mean=600,cv=0.5"
output_tokens = "lognormal:mean=60,cv=0.5"
opendc = false
"""


def write(tmp_path: Path, body: str, name: str = "sweep.toml") -> Path:
    path = tmp_path / name
    path.write_text(BASE + body, encoding="utf-8")
    return path
