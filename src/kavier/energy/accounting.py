"""Energy, facility energy and operational carbon per interval, and their run totals.

Per GPU and export interval: ``power_w`` is the exact mean power over the interval (idle power
plus the mean dynamic power of the activity inside it), ``energy_j = power_w * interval_s``,
``carbon_intensity_g_per_kwh`` the time-weighted mean grid intensity over the interval, and
``co2_g = energy_j * pue * intensity / 3.6e6`` (the grid supplies facility energy, IT x PUE).
Every provisioned GPU draws idle power from the start to the end of the run.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import pyarrow as pa

from kavier.io.columns import arrow_array
from kavier.units import J_PER_KWH


class IntervalSeries(Protocol):
    """A time series that can be averaged over uniform intervals (epoch seconds)."""

    def interval_means(self, start_epoch_s: float, dt_s: float, nbins: int) -> np.ndarray: ...


class ConstantSeries:
    """The same value at every instant (a fixed carbon intensity or PUE)."""

    def __init__(self, value: float) -> None:
        self.value = float(value)

    def interval_means(self, start_epoch_s: float, dt_s: float, nbins: int) -> np.ndarray:
        """``value`` for every interval."""
        return np.full(nbins, self.value)


class EnergyAccountant:
    """Adds the energy and carbon columns to time-series tables and keeps run totals."""

    def __init__(
        self,
        num_replicas: int,
        idle_power_w: np.ndarray,
        start_epoch_s: float,
        intensity: IntervalSeries,
        pue: IntervalSeries,
    ) -> None:
        self.reps = int(num_replicas)
        self.idle_power_w = np.broadcast_to(np.asarray(idle_power_w, dtype=np.float64), (self.reps,))
        self.start_epoch_s = float(start_epoch_s)
        self.intensity = intensity
        self.pue = pue
        self.energy_it_j = 0.0
        self.energy_facility_j = 0.0
        self.co2_g = 0.0
        self.peak_power_w = 0.0
        self.duration_s = 0.0

    def _per_bin(self, series: IntervalSeries, time_s: np.ndarray, width: np.ndarray) -> np.ndarray:
        """Mean of ``series`` over each bin; the bins are uniform but for a shorter last one."""
        nb = time_s.size
        dt = float(width[0])
        values = series.interval_means(self.start_epoch_s + float(time_s[0]), dt, nb)
        if nb and width[-1] != dt:
            values[-1] = series.interval_means(self.start_epoch_s + float(time_s[-1]), float(width[-1]), 1)[0]
        return values

    def augment(self, table: pa.Table, power_excess_w: str = "power_excess_w") -> pa.Table:
        """Replace the dynamic-power column by ``power_w``, add energy and carbon columns and
        add the table's sums to the run totals (J, g, s)."""
        reps = self.reps
        excess = table.column(power_excess_w).to_numpy()
        width = table.column("interval_s").to_numpy()
        nb = width.size // reps
        bin_time = table.column("time_s").to_numpy()[::reps]
        bin_width = width[::reps]
        power = (excess.reshape(nb, reps) + self.idle_power_w).ravel()
        energy = power * width
        intensity = self._per_bin(self.intensity, bin_time, bin_width)
        if reps > 1:
            intensity = np.repeat(intensity, reps)
        # A constant factor multiplies as a scalar: the same products, without the array.
        if isinstance(self.pue, ConstantSeries):
            facility = energy * self.pue.value
        else:
            pue = self._per_bin(self.pue, bin_time, bin_width)
            facility = energy * (np.repeat(pue, reps) if reps > 1 else pue)
        factor = self.intensity.value if isinstance(self.intensity, ConstantSeries) else intensity
        co2 = facility * factor
        co2 /= J_PER_KWH
        if nb:
            self.peak_power_w = max(self.peak_power_w, float(power.reshape(nb, reps).sum(axis=1).max()))
            self.energy_it_j += float(energy.sum())
            self.energy_facility_j += float(facility.sum())
            self.co2_g += float(co2.sum())
            self.duration_s += float(bin_width.sum())
        index = table.column_names.index(power_excess_w)
        table = table.remove_column(index)
        for name, values in (
            ("power_w", power),
            ("energy_j", energy),
            ("carbon_intensity_g_per_kwh", intensity),
            ("co2_g", co2),
        ):
            table = table.append_column(name, arrow_array(values))
        return table

    @property
    def avg_power_w(self) -> float:
        """Mean cluster IT power over the run (W)."""
        return self.energy_it_j / self.duration_s if self.duration_s > 0 else 0.0
