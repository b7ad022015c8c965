"""GPU power models: watts from utilisation (OpenDC's models) or from activity (Kavier's).

OpenDC models, with idle power ``Pi``, maximum power ``Pm`` and utilisation ``u`` in [0, 1]:
constant ``Pm``; linear ``Pi + (Pm - Pi) u``; square ``... u^2``; cubic ``... u^3``; sqrt
``... sqrt(u)``; mse ``Pi + (Pm - Pi)(2u - u^r)`` (``r`` = calibration factor); asymptotic
``Pi + (Pm - Pi)/2 (1 + u - e^(-u/a))`` (``a`` = asymptotic utilisation); asymptotic-dvfs, the
same with ``u -> u^3``.

``activity`` (Kavier's): dynamic power follows what the hardware actually does. With ``c`` the
fraction of time the tensor cores are busy and ``m`` the fraction of time the memory system
streams at its achievable bandwidth (both from the performance model),
``P = Pi + (Pm - Pi) * min(1, c + w_m m) * u / u_busy``. With the default ``w_m = 0.5`` a
compute-bound prefill draws ``Pm`` and a memory-bound decode about half of the dynamic range,
which is what measured GPUs show (an H100-SXM near 700 W in prefill and near 380 W in decode;
Splitwise, ISCA 2024; DynamoLLM, HPCA 2025). The ``u / u_busy`` factor keeps the utilisation
profile's warm-up and cool-down (and idle, at ``u = 0``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kavier.errors import ScenarioError

POWER_MODELS = (
    "activity",
    "constant",
    "linear",
    "square",
    "cubic",
    "sqrt",
    "mse",
    "asymptotic",
    "asymptotic-dvfs",
)
DEFAULT_POWER_MODEL = "activity"


@dataclass(frozen=True)
class PowerModel:
    """Per-GPU power (W) as a function of utilisation and activity."""

    name: str
    idle_w: float
    max_w: float
    calibration: float = 1.4  # mse exponent r (OpenDC's calibrationFactor)
    asym_util: float = 0.3  # asymptotic models' a (OpenDC's asymUtil)
    memory_weight: float = 0.5  # activity model's w_m
    busy_utilization: float = 0.95  # activity model's u_busy

    def __post_init__(self) -> None:
        if self.name not in POWER_MODELS:
            raise ScenarioError(f"power_model {self.name!r}: choose one of {', '.join(POWER_MODELS)}")
        if not (0 <= self.idle_w <= self.max_w):
            raise ScenarioError(
                f"GPU power: idle {self.idle_w} W and max {self.max_w} W must satisfy 0 <= idle <= max"
            )
        if self.asym_util <= 0:
            raise ScenarioError(f"power_asym_util {self.asym_util}: must be > 0")

    def power_w(
        self,
        utilization: np.ndarray,
        compute_fraction: np.ndarray | None = None,
        memory_fraction: np.ndarray | None = None,
    ) -> np.ndarray:
        """Watts for each utilisation (and, for ``activity``, compute/memory busy fractions)."""
        u = np.clip(np.asarray(utilization, dtype=np.float64), 0.0, 1.0)
        span = self.max_w - self.idle_w
        name = self.name
        if name == "constant":
            return np.full_like(u, self.max_w)
        if name == "linear":
            level = u
        elif name == "square":
            level = u * u
        elif name == "cubic":
            level = u * u * u
        elif name == "sqrt":
            level = np.sqrt(u)
        elif name == "mse":
            level = 2.0 * u - u**self.calibration
        elif name in ("asymptotic", "asymptotic-dvfs"):
            x = u**3 if name == "asymptotic-dvfs" else u
            level = 0.5 * (1.0 + x - np.exp(-x / self.asym_util))
        else:  # activity
            c = np.zeros_like(u) if compute_fraction is None else np.asarray(compute_fraction)
            m = np.zeros_like(u) if memory_fraction is None else np.asarray(memory_fraction)
            activity = np.minimum(1.0, c + self.memory_weight * m)
            level = activity * np.minimum(1.0, u / self.busy_utilization)
        return self.idle_w + span * level

    @property
    def idle_power_w(self) -> float:
        """Power of an idle GPU (u = 0): ``max_w`` for the constant model, else ``idle_w``."""
        return float(self.power_w(np.zeros(1))[0])
