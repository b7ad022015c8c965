"""How a request's use of its GPU is spread over its service time (utilisation, 0..1).

Two shapes, one per backend: the thesis's per-request profile (a request runs alone on its GPU:
warm-up, busy, cool-down) and a batched request's share of its replica (busy utilisation divided
among the requests batched with it). The OpenDC export turns either into fragments.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class UtilizationProfile:
    """The thesis's GPU utilisation over one request: ``edge`` during the first ``warmup_s``
    and last ``cooldown_s`` seconds, ``busy`` in between (thesis Listing 4.3)."""

    busy: float = 0.95
    edge: float = 0.5
    warmup_s: float = 0.2
    cooldown_s: float = 0.2

    def knots(self, duration_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Offsets (s) where the busy part starts and ends for each request duration."""
        warm = np.minimum(self.warmup_s, duration_s)
        cool_start = np.maximum(duration_s - self.cooldown_s, warm)
        return warm, cool_start

    def integral(
        self, x_s: np.ndarray, duration_s: np.ndarray, warm: np.ndarray, cool: np.ndarray
    ) -> np.ndarray:
        """Utilisation x seconds accumulated from a request's start to offset ``x_s`` (>= 0).

        ``edge * min(x, D) + (busy - edge) * clip(x - warm, 0, cool - warm)``: the edge level
        throughout the request plus the extra of the busy part.
        """
        total = np.minimum(x_s, duration_s)
        total *= self.edge
        extra = np.subtract(x_s, warm)
        np.clip(extra, 0.0, cool - warm, out=extra)
        extra *= self.busy - self.edge
        total += extra
        return total


@dataclass(frozen=True)
class BatchShare:
    """A batched request's share of its replica's GPU: ``busy`` utilisation divided by the mean
    batch size of the replica (records' ``_batch`` column), constant over the request's life."""

    busy: float = 0.95
