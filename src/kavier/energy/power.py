"""GPU power models: watts from utilisation (OpenDC's models) or from activity (Kavier's).

OpenDC models, with idle power ``Pi``, maximum power ``Pm`` and utilisation ``u`` in [0, 1]:
constant ``Pm``; linear ``Pi + (Pm - Pi) u``; square ``... u^2``; cubic ``... u^3``; sqrt
``... sqrt(u)``; mse ``Pi + (Pm - Pi)(2u - u^r)`` (``r`` = calibration factor); asymptotic
``Pi + (Pm - Pi)/2 (1 + u - e^(-u/a))`` (``a`` = asymptotic utilisation); asymptotic-dvfs, the
same with ``u -> u^3``.

``activity`` (Kavier's): dynamic power follows what the hardware actually does. With ``c`` the
fraction of time the tensor cores are busy and ``m`` the fraction of time the memory system
streams at its achievable bandwidth (both from the performance model),
``P = Pi + (Pm - Pi) * (f + (1 - f) min(1, w_c c + w_m m)) * u / u_busy``: a busy GPU draws at least
the active floor ``f`` of its dynamic range (clocks up, kernels launching, host gaps short), and
the rest in proportion to what its tensor cores and memory do. ``f``, ``w_c`` and ``w_m`` are fitted on
measured serving power (``benchmarks/fit_profiles.py``; the ML.ENERGY H100 runs and Splitwise's
A100 rows). The ``u / u_busy`` factor keeps the utilisation profile's warm-up and cool-down
(and idle, at ``u = 0``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from kavier.errors import ScenarioError
from kavier.registry import POWER_MODELS

DEFAULT_POWER_MODEL = "activity"

# A power model: watts per GPU from the utilisation ``u`` (clipped to [0, 1]), the compute and
# memory busy fractions ``c``, ``m`` (None when the engine gives none) and the model's parameters
# ``p`` (idle and maximum power, ...). Registered in :data:`kavier.registry.POWER_MODELS`. The
# contract (checked for every registered model): the watts lie in ``[idle_w, max_w]`` and an idle
# GPU (``u = 0``) draws the same whatever ``c`` and ``m``.
Watts = Callable[[np.ndarray, "np.ndarray | None", "np.ndarray | None", "PowerModel"], np.ndarray]


@POWER_MODELS.register("activity")
def activity_watts(u: np.ndarray, c: np.ndarray | None, m: np.ndarray | None, p: PowerModel) -> np.ndarray:
    """Kavier's: ``(f + (1 - f) min(1, w_c c + w_m m)) * min(1, u / u_busy)`` (what the hardware
    does, above an active floor ``f``); ``c`` and ``m`` are the tensor-core and memory activity:
    MFU and MBU in the serving backend, the busy fractions in the thesis preset."""
    c = np.zeros_like(u) if c is None else np.asarray(c)
    m = np.zeros_like(u) if m is None else np.asarray(m)
    activity = np.minimum(1.0, p.compute_weight * c + p.memory_weight * m)
    if p.active_floor:
        activity = p.active_floor + (1.0 - p.active_floor) * activity
    return p.level_w(activity * np.minimum(1.0, u / p.busy_utilization))


@POWER_MODELS.register("constant")
def constant_watts(u: np.ndarray, c: np.ndarray | None, m: np.ndarray | None, p: PowerModel) -> np.ndarray:
    """OpenDC's constant: always ``max_w``."""
    return np.full_like(u, p.max_w)


@POWER_MODELS.register("linear")
def linear_watts(u: np.ndarray, c: np.ndarray | None, m: np.ndarray | None, p: PowerModel) -> np.ndarray:
    """OpenDC's linear: ``u``."""
    return p.level_w(u)


@POWER_MODELS.register("square")
def square_watts(u: np.ndarray, c: np.ndarray | None, m: np.ndarray | None, p: PowerModel) -> np.ndarray:
    """OpenDC's square: ``u^2``."""
    return p.level_w(u * u)


@POWER_MODELS.register("cubic")
def cubic_watts(u: np.ndarray, c: np.ndarray | None, m: np.ndarray | None, p: PowerModel) -> np.ndarray:
    """OpenDC's cubic: ``u^3``."""
    return p.level_w(u * u * u)


@POWER_MODELS.register("sqrt")
def sqrt_watts(u: np.ndarray, c: np.ndarray | None, m: np.ndarray | None, p: PowerModel) -> np.ndarray:
    """OpenDC's sqrt: ``sqrt(u)``."""
    return p.level_w(np.sqrt(u))


@POWER_MODELS.register("mse")
def mse_watts(u: np.ndarray, c: np.ndarray | None, m: np.ndarray | None, p: PowerModel) -> np.ndarray:
    """OpenDC's mse: ``2u - u^r`` (``r`` = ``power_calibration``)."""
    return p.level_w(2.0 * u - u**p.calibration)


@POWER_MODELS.register("asymptotic")
def asymptotic_watts(u: np.ndarray, c: np.ndarray | None, m: np.ndarray | None, p: PowerModel) -> np.ndarray:
    """OpenDC's asymptotic: ``(1 + u - e^(-u/a)) / 2`` (``a`` = ``power_asym_util``)."""
    return p.level_w(0.5 * (1.0 + u - np.exp(-u / p.asym_util)))


@POWER_MODELS.register("asymptotic-dvfs")
def asymptotic_dvfs_watts(
    u: np.ndarray, c: np.ndarray | None, m: np.ndarray | None, p: PowerModel
) -> np.ndarray:
    """OpenDC's asymptotic with DVFS: the asymptotic model of ``u^3``."""
    x = u**3
    return p.level_w(0.5 * (1.0 + x - np.exp(-x / p.asym_util)))


@dataclass(frozen=True)
class PowerModel:
    """Per-GPU power (W) as a function of utilisation and activity."""

    name: str
    idle_w: float
    max_w: float
    calibration: float = 1.4  # mse exponent r (OpenDC's calibrationFactor), 1..2
    asym_util: float = 0.3  # asymptotic models' a (OpenDC's asymUtil)
    memory_weight: float = 0.5  # activity model's w_m
    busy_utilization: float = 0.95  # activity model's u_busy
    active_floor: float = 0.0  # activity model's f: the share of the range a busy GPU draws at least
    compute_weight: float = 1.0  # activity model's w_c

    def __post_init__(self) -> None:
        if self.name not in POWER_MODELS:
            raise ScenarioError(f"power_model {self.name!r}: choose one of {', '.join(POWER_MODELS.names())}")
        if not (0 <= self.idle_w <= self.max_w):
            raise ScenarioError(
                f"GPU power: idle {self.idle_w} W and max {self.max_w} W must satisfy 0 <= idle <= max"
            )
        if self.asym_util <= 0:
            raise ScenarioError(f"power_asym_util {self.asym_util}: must be > 0")
        if self.calibration < 1:
            raise ScenarioError(
                f"power_calibration {self.calibration}: must be >= 1 (below, mse draws < idle)"
            )
        if not 0 <= self.active_floor < 1:
            raise ScenarioError(f"power_active_floor {self.active_floor}: must be in [0, 1)")
        if not 0 < self.busy_utilization <= 1:
            raise ScenarioError(f"busy_utilization {self.busy_utilization}: must be in (0, 1]")

    def power_w(
        self,
        utilization: np.ndarray,
        compute_fraction: np.ndarray | None = None,
        memory_fraction: np.ndarray | None = None,
    ) -> np.ndarray:
        """Watts for each utilisation (and, for ``activity``, compute/memory busy fractions)."""
        u = np.clip(np.asarray(utilization, dtype=np.float64), 0.0, 1.0)
        return POWER_MODELS.get(self.name)(u, compute_fraction, memory_fraction, self)

    def level_w(self, level: np.ndarray) -> np.ndarray:
        """Watts at ``level`` (0..1) of the dynamic range: ``idle_w + (max_w - idle_w) level``."""
        return self.idle_w + (self.max_w - self.idle_w) * level

    @property
    def idle_power_w(self) -> float:
        """Power of an idle GPU (u = 0): ``max_w`` for the constant model, else ``idle_w``."""
        return float(self.power_w(np.zeros(1))[0])
