"""Calibrated profiles shipped with Kavier: the serving model's constants per engine and GPU.

``<engine>/<GPU>.toml`` holds the constants fitted for an engine family on a GPU from public
measurements, with their provenance and held-out errors in ``[meta]`` (``benchmarks/
fit_profiles.py`` writes them; see its docstring and ``docs/validation.md``). A GPU without a
profile of its own takes the profile of the nearest architecture (:data:`NEAREST`): the
constants are efficiencies (shares of the peak numbers) and overheads, so they carry over to the
other GPU's peak FLOP/s, bandwidth and interconnect from the library; the run says so.
``<engine>/generic.toml``, fitted on every GPU at once, serves GPUs the table does not know.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent

# GPU -> the GPU whose profile it takes when it has none, with why (architecture, memory type).
NEAREST: dict[str, tuple[str, str]] = {
    "A100-40GB": ("A100-80GB", "same architecture (Ampere, HBM2)"),
    "H100-PCIe": ("H100-SXM", "same architecture (Hopper)"),
    "H200": ("H100-SXM", "same architecture (Hopper, HBM3e)"),
    "B200": ("H100-SXM", "nearest earlier datacentre architecture (Blackwell after Hopper)"),
    "MI300X": ("H100-SXM", "nearest datacentre GPU of its class (HBM3, 8-GPU platform)"),
    "L40S": ("A10", "nearest GDDR-memory GPU (Ada after Ampere)"),
    "L4": ("A10", "nearest GDDR-memory GPU (Ada after Ampere)"),
    "T4": ("A10", "nearest GDDR-memory GPU (Turing before Ampere)"),
}


@dataclass(frozen=True)
class ShippedProfile:
    """A shipped profile file and how it was chosen for a GPU."""

    path: Path
    name: str  # "vllm-v1/H100-SXM"
    note: str  # "" when the GPU has its own profile, else why another GPU's was taken


def shipped_profile(engine: str, gpu: str) -> ShippedProfile | None:
    """The profile of ``engine`` for ``gpu``: its own, the nearest architecture's, or the
    generic one; None when the engine ships none."""
    folder = HERE / engine
    own = folder / f"{gpu}.toml"
    if own.is_file():
        return ShippedProfile(own, f"{engine}/{gpu}", "")
    nearest = NEAREST.get(gpu)
    if nearest is not None and (folder / f"{nearest[0]}.toml").is_file():
        note = (
            f"{gpu} has no calibrated profile; using {nearest[0]}'s ({nearest[1]}), scaled by the "
            "library's peak numbers"
        )
        return ShippedProfile(folder / f"{nearest[0]}.toml", f"{engine}/{nearest[0]}", note)
    generic = folder / "generic.toml"
    if generic.is_file():
        note = f"{gpu} has no calibrated profile and no near architecture in Kavier's table: the generic fit"
        return ShippedProfile(generic, f"{engine}/generic", note)
    return None
