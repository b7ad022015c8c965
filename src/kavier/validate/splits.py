"""Which constants a replay uses: the shipped profiles (fitted on the measurements), or the
held-out variants ``benchmarks/fit_profiles.py`` writes beside them: fitted without the GPU's
rows (another measured GPU's efficiencies stand in, as Kavier's nearest-architecture fallback
would for an unmeasured GPU), or without the model's rows."""

from __future__ import annotations

from collections.abc import Callable

from kavier.perf.profiles import HERE
from kavier.validate.compare import FITTED

HELD_OUT_GPU = "held out: GPU"
HELD_OUT_MODEL = "held out: model"

# A split's label and how it picks each replay's profile: (gpu, model, engine) -> path or None.
ProfileFor = Callable[[str, str, str], str | None]


def _gpu(gpu: str, model: str, engine: str) -> str | None:
    path = HERE / engine / "held-out" / f"gpu-{gpu}.toml"
    return str(path) if path.is_file() else None


def _model(gpu: str, model: str, engine: str) -> str | None:
    path = HERE / engine / "held-out" / f"model-{model}" / f"{gpu}.toml"
    return str(path) if path.is_file() else None


SPLITS: dict[str, ProfileFor | None] = {FITTED: None, HELD_OUT_GPU: _gpu, HELD_OUT_MODEL: _model}


def available() -> bool:
    """True when the held-out profiles are shipped."""
    return (HERE / "vllm-v1" / "held-out").is_dir()
