"""PNG plots of a finished run: latency CDFs, utilisation and queues, KV cache, power/energy/CO2.

``write_plots(folder)`` reads ``requests.parquet`` and ``timeseries.parquet`` from a run's output
folder and writes PNGs into ``<folder>/plots/``. Only the needed columns are read; long time series
are averaged into about 2,000 time bins and the latency CDFs are drawn from at most 200k points, so
runs with millions of requests still plot in seconds. Figures are built with
``matplotlib.figure.Figure`` (Agg canvas, no pyplot global state).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator, PercentFormatter

from kavier.errors import KavierError
from kavier.units import GIB, J_PER_KWH

__all__ = ["write_plots"]

REQUESTS_FILE = "requests.parquet"
TIMESERIES_FILE = "timeseries.parquet"

DPI = 100
MAX_CDF_POINTS = 200_000
MAX_INTERVALS = 5_000  # more distinct intervals than this and the time series gets binned
NUM_BINS = 2_000
MAX_REPLICA_LINES = 8  # more replicas than this are drawn as mean + min-max band

_LATENCY_PANELS = (
    ("ttft_s", "Time to first token", "TTFT"),
    ("tpot_s", "Time per output token", "TPOT"),
    ("e2e_s", "End-to-end latency", "E2E"),
)
_TS_REQUIRED = (
    "time_s",
    "replica",
    "gpu_utilization",
    "kv_used_bytes",
    "kv_capacity_bytes",
    "running",
    "waiting",
)
_TS_ENERGY = ("power_w", "energy_j", "carbon_intensity_g_per_kwh", "co2_g")


def write_plots(output_folder: str | Path, out_dir: str | Path | None = None) -> list[Path]:
    """Write the run's plots as PNGs and return their paths.

    Always writes ``latency_cdf.png``, ``utilization_queue.png`` and ``kv_usage.png``; writes
    ``power_energy_co2.png`` only when the time series has a ``power_w`` column. ``out_dir``
    defaults to ``<output_folder>/plots``.

    Raises:
        KavierError: the folder or one of its parquet files is missing, unreadable or lacks a
            required column.
    """
    folder = Path(output_folder)
    if not folder.is_dir():
        raise KavierError(f"run folder {folder}/ does not exist: pass the output folder of a run")
    requests_path = folder / REQUESTS_FILE
    timeseries_path = folder / TIMESERIES_FILE
    for path in (requests_path, timeseries_path):
        if not path.is_file():
            raise KavierError(f"no {path.name} in {folder}/: is this a kavier run folder?")

    requests = _read_columns(requests_path, [c for c, _, _ in _LATENCY_PANELS], [])
    series = _TimeSeries.load(timeseries_path)

    dest = Path(out_dir) if out_dir is not None else folder / "plots"
    if dest.exists() and not dest.is_dir():
        raise KavierError(f"--out {dest} is a file; pass a folder for the PNGs")
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise KavierError(f"cannot create plot folder {dest}: {exc.strerror or exc}") from exc

    written = [
        _save(_latency_cdf_figure(requests), dest / "latency_cdf.png"),
        _save(_utilization_queue_figure(series), dest / "utilization_queue.png"),
        _save(_kv_usage_figure(series), dest / "kv_usage.png"),
    ]
    if "power_w" in series.columns:
        written.append(_save(_power_energy_co2_figure(series), dest / "power_energy_co2.png"))
    return written


# --------------------------------------------------------------------------------------- reading


def _read_columns(path: Path, required: list[str], optional: list[str]) -> dict[str, np.ndarray]:
    """Read only ``required`` + whichever ``optional`` columns exist, as float64 arrays."""
    try:
        names = set(pq.read_schema(path).names)
    except (OSError, pa.ArrowException) as exc:
        raise KavierError(f"cannot read {path}: {_one_line(exc)}") from exc
    missing = [c for c in required if c not in names]
    if missing:
        raise KavierError(
            f"{path} lacks column(s) {', '.join(missing)}: was it written by this kavier version?"
        )
    wanted = required + [c for c in optional if c in names]
    try:
        table = pq.read_table(path, columns=wanted)
    except (OSError, pa.ArrowException) as exc:
        raise KavierError(f"cannot read {path}: {_one_line(exc)}") from exc
    out: dict[str, np.ndarray] = {}
    for name in wanted:
        col = table.column(name)
        if pa.types.is_floating(col.type) or pa.types.is_integer(col.type):
            col = col.cast(pa.float64())
        else:
            raise KavierError(f"{path}: column {name} has type {col.type}, expected a number")
        out[name] = np.asarray(col.to_numpy(), dtype=np.float64)  # nulls become NaN
    return out


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


@dataclass
class _TimeSeries:
    """Time series on a common time grid: one row per replica, one column per (binned) interval."""

    columns: dict[str, np.ndarray]  # raw per-row values (float64)
    replicas: np.ndarray  # distinct replica ids, sorted
    rep_idx: np.ndarray  # per row: index into ``replicas``
    bin_idx: np.ndarray  # per row: index of its time bin
    t_start: np.ndarray  # per bin: start time (s)
    t_end: np.ndarray  # per bin: end time (s)
    binned: bool  # True when several export intervals were merged into one bin

    @classmethod
    def load(cls, path: Path) -> _TimeSeries:
        cols = _read_columns(path, list(_TS_REQUIRED), list(_TS_ENERGY))
        time = cols["time_s"]
        replicas, rep_idx = np.unique(cols["replica"], return_inverse=True)
        if time.size == 0:
            empty = np.empty(0)
            return cls(cols, replicas, rep_idx, np.empty(0, np.int64), empty, empty, False)
        uniq = np.unique(time)
        step = float(np.median(np.diff(uniq))) if uniq.size > 1 else 1.0
        if uniq.size > MAX_INTERVALS:
            lo, hi = float(uniq[0]), float(uniq[-1]) + step
            edges = np.linspace(lo, hi, NUM_BINS + 1)
            bin_idx = np.clip(np.searchsorted(edges, time, side="right") - 1, 0, NUM_BINS - 1)
            return cls(cols, replicas, rep_idx, bin_idx, edges[:-1], edges[1:], True)
        bin_idx = np.searchsorted(uniq, time)
        t_end = np.append(uniq[1:], uniq[-1] + step)
        return cls(cols, replicas, rep_idx, bin_idx, uniq, t_end, False)

    @property
    def num_bins(self) -> int:
        return int(self.t_start.size)

    @property
    def empty(self) -> bool:
        return self.num_bins == 0

    def per_replica_mean(self, values: np.ndarray) -> np.ndarray:
        """Mean of ``values`` per (replica, bin) as a ``[replicas, bins]`` matrix; NaN if empty."""
        nr, nb = self.replicas.size, self.num_bins
        ok = np.isfinite(values)
        key = self.rep_idx[ok] * nb + self.bin_idx[ok]
        total = np.bincount(key, weights=values[ok], minlength=nr * nb)
        count = np.bincount(key, minlength=nr * nb)
        with np.errstate(invalid="ignore", divide="ignore"):
            return (total / count).reshape(nr, nb)

    def total_per_bin(self, values: np.ndarray) -> np.ndarray:
        """Sum of ``values`` over all rows of each bin (NaNs skipped)."""
        ok = np.isfinite(values)
        return np.bincount(self.bin_idx[ok], weights=values[ok], minlength=self.num_bins)

    def intervals_per_bin(self) -> np.ndarray:
        """Number of distinct export intervals that fell into each bin (1 when not binned)."""
        if not self.binned:
            return np.ones(self.num_bins)
        starts = np.unique(self.columns["time_s"])
        idx = np.clip(np.searchsorted(self.t_start, starts, side="right") - 1, 0, None)
        return np.maximum(np.bincount(idx, minlength=self.num_bins), 1).astype(float)


# ---------------------------------------------------------------------------------- formatting


def _time_axis(ts: _TimeSeries) -> tuple[float, str]:
    """(divisor, unit) for the time axis, chosen by the span of the run."""
    span = float(ts.t_end[-1]) if not ts.empty else 0.0
    if span > 3 * 3600:
        return 3600.0, "h"
    if span > 3 * 60:
        return 60.0, "min"
    return 1.0, "s"


def _fmt_duration(seconds: float) -> str:
    if not np.isfinite(seconds):
        return "n/a"
    s = abs(seconds)
    if s == 0:
        return "0 s"
    if s < 1e-3:
        return f"{seconds * 1e6:.3g} µs"
    if s < 1:
        return f"{seconds * 1e3:.3g} ms"
    if s < 120:
        return f"{seconds:.3g} s"
    if s < 7200:
        return f"{seconds / 60:.3g} min"
    return f"{seconds / 3600:.3g} h"


def _scale(max_value: float, units: list[tuple[float, str]]) -> tuple[float, str]:
    """Pick the largest unit (divisor, name) that keeps ``max_value`` >= 1 in that unit."""
    chosen = units[0]
    for divisor, name in units:
        if abs(max_value) >= divisor:
            chosen = (divisor, name)
    return chosen


def _no_data(ax, message: str) -> None:
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, color="0.4")
    # tick_params, not set_xticks([]): the latter would also clear axes that share this axis.
    ax.tick_params(left=False, labelleft=False, bottom=False, labelbottom=False)


def _new_figure(width: float, height: float) -> Figure:
    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


def _save(fig: Figure, path: Path) -> Path:
    fig.savefig(path, dpi=DPI, format="png")
    return path


# ------------------------------------------------------------------------------- latency CDFs


def _cdf_points(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted values and their CDF levels, deterministically thinned to ``MAX_CDF_POINTS``."""
    x = np.sort(values)
    n = x.size
    y = np.arange(1, n + 1) / n
    if n > MAX_CDF_POINTS:
        keep = np.unique(np.linspace(0, n - 1, MAX_CDF_POINTS).round().astype(np.int64))
        x, y = x[keep], y[keep]
    return x, y


def _latency_cdf_figure(requests: dict[str, np.ndarray]) -> Figure:
    fig = _new_figure(14, 5)
    axes = fig.subplots(1, 3, sharey=True)
    n_total = next(iter(requests.values())).size
    fig.suptitle(f"Request latency CDFs ({n_total:,} requests)", fontsize=14)
    for ax, (col, title, short) in zip(axes, _LATENCY_PANELS, strict=True):
        values = requests[col]
        values = values[np.isfinite(values)]
        ax.set_title(f"{title} ({short})")
        if values.size == 0:
            reason = "requests with ≥ 2 output tokens" if col == "tpot_s" else "finished requests"
            _no_data(ax, f"no data\n(no {reason})")
            continue
        x, y = _cdf_points(values)
        ax.step(x, y, where="post", color="tab:blue", lw=1.6, label=f"CDF (n={values.size:,})")
        p50, p99 = np.percentile(values, [50, 99])
        ax.axvline(p50, color="tab:green", ls="--", lw=1.2, label=f"p50 = {_fmt_duration(p50)}")
        ax.axvline(p99, color="tab:red", ls="--", lw=1.2, label=f"p99 = {_fmt_duration(p99)}")
        ax.plot([p50, p99], [0.5, 0.99], "o", color="k", ms=4, zorder=3)
        positive = values[values > 0]
        if positive.size and positive.max() / positive.min() > 100:
            ax.set_xscale("log")
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
        else:
            ax.ticklabel_format(axis="x", useOffset=False)
            ax.xaxis.set_major_locator(MaxNLocator(5))
            low, high = float(values.min()), float(values.max())
            if high - low <= 1e-9 * max(abs(high), 1e-30):  # (almost) constant: show a window
                pad = max(abs(high) * 0.05, 1e-6)
                ax.set_xlim(low - pad, high + pad)
        ax.set_xlabel(f"{short} (s)")
        ax.set_ylim(0, 1.02)
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        ax.grid(True, which="major", alpha=0.4)
        ax.grid(True, which="minor", alpha=0.15)
        ax.legend(loc="best", fontsize=9)
    axes[0].set_ylabel("Fraction of requests ≤ x")
    return fig


# -------------------------------------------------------------------------------- time series


def _step_x(ts: _TimeSeries, div: float) -> np.ndarray:
    """Bin edges in plot units: each interval mean is drawn as a flat step over its interval."""
    return np.append(ts.t_start, ts.t_end[-1]) / div


def _steps(values: np.ndarray) -> np.ndarray:
    """Repeat the last value so ``values`` lines up with ``_step_x`` for a steps-post plot."""
    return np.concatenate([values, values[..., -1:]], axis=-1)


def _plot_replicas(ax, ts: _TimeSeries, x: np.ndarray, matrix: np.ndarray) -> None:
    """Draw one line per replica, or the mean with a min–max band when there are many replicas.

    ``x`` holds the bin edges from ``_step_x``; ``matrix`` is ``[replicas, bins]``.
    """
    if ts.replicas.size <= MAX_REPLICA_LINES:
        for i, rep in enumerate(ts.replicas):
            ax.plot(
                x,
                _steps(matrix[i]),
                drawstyle="steps-post",
                lw=1.2,
                color=f"C{i}",
                label=f"replica {int(rep)}",
            )
        return
    with _quiet_nan_warnings():
        mean = np.nanmean(matrix, axis=0)
        lo = np.nanmin(matrix, axis=0)
        hi = np.nanmax(matrix, axis=0)
    ax.fill_between(
        x,
        _steps(lo),
        _steps(hi),
        step="post",
        color="tab:blue",
        alpha=0.2,
        lw=0,
        label="min–max over replicas",
    )
    label = f"mean over {ts.replicas.size} replicas"
    ax.plot(x, _steps(mean), drawstyle="steps-post", color="tab:blue", lw=1.4, label=label)


@contextmanager
def _quiet_nan_warnings() -> Iterator[None]:
    """Silence numpy's 'All-NaN slice' / 'Mean of empty slice' RuntimeWarnings."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def _time_subtitle(ts: _TimeSeries) -> str:
    n_rep = ts.replicas.size
    if ts.empty:
        return "no data"
    reps = f"{n_rep} replica{'s' if n_rep != 1 else ''}"
    if ts.binned:
        return f"{reps}; averaged into {ts.num_bins:,} time bins"
    return reps


def _finish_time_axes(axes, ts: _TimeSeries, div: float, unit: str) -> None:
    for ax in axes:
        ax.grid(True, alpha=0.4)
        ax.set_xlim(ts.t_start[0] / div, ts.t_end[-1] / div)
    axes[-1].set_xlabel(f"Simulated time ({unit})")


def _figure_legend(fig: Figure, axes) -> None:
    """One legend outside the plot area on the right, each label once, so no data is hidden."""
    seen: dict[str, object] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            seen.setdefault(label, handle)
    if seen:
        fig.legend(list(seen.values()), list(seen.keys()), loc="outside right upper", title="GPU")


def _ylim_from_zero(ax, values: np.ndarray, headroom: float = 1.1) -> None:
    """y from 0 to a bit above the largest finite value, so lines never hug the frame."""
    finite = values[np.isfinite(values)]
    top = float(finite.max()) if finite.size else 0.0
    ax.set_ylim(0, top * headroom if top > 0 else 1.0)


def _utilization_queue_figure(ts: _TimeSeries) -> Figure:
    fig = _new_figure(12, 8)
    fig.suptitle(f"GPU busy time and queues ({_time_subtitle(ts)})", fontsize=14)
    if ts.empty:
        _no_data(fig.subplots(), "no intervals in timeseries.parquet")
        return fig
    axes = fig.subplots(3, 1, sharex=True)
    div, unit = _time_axis(ts)
    x = _step_x(ts, div)
    cols = ts.columns

    util = ts.per_replica_mean(cols["gpu_utilization"] * 100.0)
    _plot_replicas(axes[0], ts, x, util)
    axes[0].set_ylabel("Busy × busy utilisation (%)")
    axes[0].set_ylim(0, 105)
    axes[0].set_title(
        "Share of each interval the GPUs ran work, × the power model's busy utilisation "
        "(not compute or bandwidth use: see mfu_mean, mbu_mean)",
        fontsize=11,
    )

    running = ts.per_replica_mean(cols["running"])
    _plot_replicas(axes[1], ts, x, running)
    axes[1].set_ylabel("Running (requests)")
    _ylim_from_zero(axes[1], running)
    axes[1].set_title("Requests in the running batch", fontsize=11)

    waiting = ts.per_replica_mean(cols["waiting"])
    _plot_replicas(axes[2], ts, x, waiting)
    axes[2].set_ylabel("Waiting (requests)")
    _ylim_from_zero(axes[2], waiting)
    axes[2].set_title("Queue length (requests waiting to be scheduled)", fontsize=11)

    _finish_time_axes(axes, ts, div, unit)
    _figure_legend(fig, axes)
    return fig


def _kv_usage_figure(ts: _TimeSeries) -> Figure:
    fig = _new_figure(12, 7)
    fig.suptitle(f"KV cache usage ({_time_subtitle(ts)})", fontsize=14)
    if ts.empty:
        _no_data(fig.subplots(), "no intervals in timeseries.parquet")
        return fig
    axes = fig.subplots(2, 1, sharex=True)
    div, unit = _time_axis(ts)
    x = _step_x(ts, div)
    used = ts.columns["kv_used_bytes"]
    cap = ts.columns["kv_capacity_bytes"]
    with np.errstate(invalid="ignore", divide="ignore"):
        pct = np.where(cap > 0, used / cap * 100.0, np.nan)

    _plot_replicas(axes[0], ts, x, ts.per_replica_mean(pct))
    axes[0].set_ylabel("KV used (% of capacity)")
    axes[0].set_ylim(0, 105)
    axes[0].set_title("KV cache used as a share of each GPU's KV capacity", fontsize=11)

    used_gib = ts.per_replica_mean(used / GIB)
    _plot_replicas(axes[1], ts, x, used_gib)
    cap_gib = ts.per_replica_mean(cap / GIB)
    with _quiet_nan_warnings():
        cap_line = np.nanmax(cap_gib, axis=0)
    finite_cap = cap_gib[np.isfinite(cap_gib)]
    if finite_cap.size:
        same = np.allclose(finite_cap, finite_cap[0])
        label = "capacity" if same else "capacity (largest replica)"
        axes[1].plot(x, _steps(cap_line), drawstyle="steps-post", color="0.3", ls="--", lw=1.2, label=label)
    _ylim_from_zero(axes[1], np.concatenate([used_gib.ravel(), cap_line]), 1.08)
    axes[1].set_ylabel("KV used (GiB)")
    axes[1].set_title("KV cache used per GPU (dashed: capacity)", fontsize=11)

    _finish_time_axes(axes, ts, div, unit)
    _figure_legend(fig, axes)
    return fig


# ------------------------------------------------------------------------ power, energy, CO2

_POWER_UNITS = [(1.0, "W"), (1e3, "kW"), (1e6, "MW")]
_ENERGY_UNITS = [(1.0, "Wh"), (1e3, "kWh"), (1e6, "MWh")]  # divisors in Wh
_CO2_UNITS = [(1.0, "g"), (1e3, "kg"), (1e6, "t")]


def _power_energy_co2_figure(ts: _TimeSeries) -> Figure:
    cols = ts.columns
    has_co2 = "co2_g" in cols or "carbon_intensity_g_per_kwh" in cols
    n_panels = 3 if has_co2 else 2
    fig = _new_figure(12, 3 * n_panels + 1)
    fig.suptitle(f"Power, energy and CO₂ — all GPUs ({_time_subtitle(ts)})", fontsize=14)
    if ts.empty:
        _no_data(fig.subplots(), "no intervals in timeseries.parquet")
        return fig
    axes = fig.subplots(n_panels, 1, sharex=True)
    div, unit = _time_axis(ts)
    x_start = ts.t_start / div
    x_end = ts.t_end / div

    # Total power: sum over replicas of each interval's mean power, averaged over merged intervals.
    power = ts.total_per_bin(cols["power_w"]) / ts.intervals_per_bin()
    has_power = np.bincount(ts.bin_idx, weights=np.isfinite(cols["power_w"]), minlength=ts.num_bins)
    power[has_power == 0] = np.nan  # a gap, not a misleading 0 W
    finite_power = power[np.isfinite(power)]
    pdiv, punit = _scale(float(finite_power.max()) if finite_power.size else 0.0, _POWER_UNITS)
    axes[0].plot(_step_x(ts, div), _steps(power / pdiv), drawstyle="steps-post", color="tab:orange", lw=1.3)
    axes[0].set_ylabel(f"Power ({punit})")
    _ylim_from_zero(axes[0], power / pdiv)
    axes[0].set_title("Total GPU power draw (sum over replicas)", fontsize=11)
    if finite_power.size == 0:
        _no_data(axes[0], "power_w is empty (all null)")

    # Energy per row: exported energy_j, else power x interval length.
    if "energy_j" in cols:
        energy_j = cols["energy_j"]
    else:
        row_dt = (ts.t_end - ts.t_start)[ts.bin_idx] / ts.intervals_per_bin()[ts.bin_idx]
        energy_j = cols["power_w"] * row_dt
    cum_wh = np.cumsum(ts.total_per_bin(energy_j)) / (J_PER_KWH / 1e3)
    # Plot cumulative values at interval ends, starting from zero at the first interval start.
    xs = np.concatenate([[x_start[0]], x_end])
    cum_wh = np.concatenate([[0.0], cum_wh])
    ediv, eunit = _scale(float(cum_wh[-1]), _ENERGY_UNITS)
    axes[1].plot(xs, cum_wh / ediv, color="tab:purple", lw=1.6)
    axes[1].set_ylabel(f"Energy ({eunit})")
    _ylim_from_zero(axes[1], cum_wh / ediv)
    axes[1].set_title(f"Cumulative energy (total {cum_wh[-1] / ediv:.3g} {eunit})", fontsize=11)

    if has_co2:
        if "co2_g" in cols:
            co2_g = cols["co2_g"]
        else:
            co2_g = energy_j / J_PER_KWH * cols["carbon_intensity_g_per_kwh"]
        cum_g = np.concatenate([[0.0], np.cumsum(ts.total_per_bin(co2_g))])
        cdiv, cunit = _scale(float(cum_g[-1]), _CO2_UNITS)
        ax = axes[2]
        ax.plot(xs, cum_g / cdiv, color="tab:green", lw=1.6, label="cumulative CO₂")
        ax.set_ylabel(f"CO₂ ({cunit})")
        _ylim_from_zero(ax, cum_g / cdiv)
        total = f"{cum_g[-1] / cdiv:.3g} {cunit}"
        ax.set_title(f"Cumulative CO₂ emissions (total {total})", fontsize=11)
        if "carbon_intensity_g_per_kwh" in cols:
            ci = ts.per_replica_mean(cols["carbon_intensity_g_per_kwh"])
            with _quiet_nan_warnings():
                ci_line = np.nanmean(ci, axis=0)
            twin = ax.twinx()
            twin.plot(
                _step_x(ts, div),
                _steps(ci_line),
                drawstyle="steps-post",
                color="0.45",
                ls=":",
                lw=1.2,
                label="carbon intensity",
            )
            twin.set_ylabel("Carbon intensity (g/kWh)", color="0.35")
            # Extra headroom keeps the dotted line clear of the legend in the upper left.
            _ylim_from_zero(twin, ci_line, 1.35)
            h1, l1 = ax.get_legend_handles_labels()
            h2, l2 = twin.get_legend_handles_labels()
            ax.legend(h1 + h2, l1 + l2, loc="upper left", fontsize=9)

    _finish_time_axes(axes, ts, div, unit)
    return fig
