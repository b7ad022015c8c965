"""What the kernel-level suites (``xla-collectives``, ``xla-gemm``) share: one comparison per row
of a shipped table of measured kernels, each with the constants a serving replica of its GPU gets.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kavier.validate.compare import FITTED, SHIPPED_HELD_OUT, Comparison
from kavier.validate.public import shipped_rows
from kavier.validate.splits import HELD_OUT_MODEL

Row = dict[str, str]


def _scaled_by_share(gpu: str, constant: str) -> bool:
    """True when a serving replica of ``gpu`` runs on another GPU's profile with its ``constant``
    (e.g. ``comm_efficiency``) scaled by the two GPUs' measured shares, which the GPU library
    reads off the OpenXLA tables shipped here: such a GPU's rows of those tables are fitted."""
    from kavier.engine.system import borrowed_scales, profile_of

    found = profile_of(None, "vllm-v1", gpu)
    return found is not None and bool(found.donor) and constant in borrowed_scales(None, gpu, found.donor)


@dataclass(frozen=True)
class KernelTable:
    """A shipped table of measured kernels and how to compare its rows.

    ``constant``: the efficiency a borrowed profile scales by a share read off this table (a GPU
    whose replica does so has its rows labelled fitted); ``measured_s(row)`` and
    ``predicted_s(row, profile, **overrides)`` in seconds; ``metric_of(row)`` and ``case_of(row)``
    name the comparison."""

    suite: str
    path: Path
    constant: str
    measured_s: Callable[[Row], float]
    predicted_s: Callable[..., float]
    metric_of: Callable[[Row], str]
    case_of: Callable[[Row], str]

    def run(self, split: str, profile_for: Any = None, **overrides: Any) -> list[Comparison]:
        """One comparison per row; ``profile_for(gpu, model, engine)`` picks each GPU's profile,
        ``overrides`` are scenario keys for every replica's constants. No held-out-by-model split
        (a kernel has no model)."""
        if split == HELD_OUT_MODEL:
            return []
        rows = shipped_rows(self.path)
        fitted = {gpu: _scaled_by_share(gpu, self.constant) for gpu in {r["gpu"] for r in rows}}
        out = []
        for row in rows:
            label = split
            if split == FITTED and not fitted[row["gpu"]]:
                label = SHIPPED_HELD_OUT  # no constant of this GPU's replica saw the table
            profile = profile_for(row["gpu"], "", "vllm-v1") if profile_for is not None else None
            predicted = self.predicted_s(row, profile, **overrides)
            out.append(
                Comparison(
                    self.suite,
                    self.case_of(row),
                    self.metric_of(row),
                    row["gpu"],
                    "-",
                    self.measured_s(row),
                    predicted,
                    label,
                )
            )
        return out
