"""Figures of a sweep for the HTML report, rendered as standalone SVG text.

Every builder takes the report's :class:`~kavier.report.runs.RunSet` and a :class:`Layout`
(which axis is the load, which axes make a configuration) and returns SVG text, or ``None``
when its data is missing. Runs that failed are never plotted. When seeds vary, each point is
the mean over seeds and a band (lines) or error bar (bars) spans the min–max over seeds.

SVG bytes are reproducible: a fixed ``svg.hashsalt`` and no date in the metadata. Figures are
built with ``matplotlib.figure.Figure`` (no pyplot global state).
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from matplotlib import rc_context
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator, PercentFormatter

from kavier.report.runs import SEED_AXIS, RunSet, finite, is_number, sort_values

__all__ = [
    "Layout",
    "cache_figure",
    "energy_co2_figure",
    "latency_figure",
    "pareto_figure",
    "throughput_figure",
    "ttft_cdf_figure",
    "to_svg",
]

DPI = 100
SVG_HASH_SALT = "kavier-report"
MAX_LEGEND_RIGHT = 10  # more configurations than this: the legend goes below the plots

# (column, panel title, y label)
LATENCY_PANELS = (
    ("ttft_p50_s", "TTFT p50", "TTFT p50 (s)"),
    ("ttft_p99_s", "TTFT p99", "TTFT p99 (s)"),
    ("tpot_p99_s", "TPOT p99", "TPOT p99 (s)"),
    ("e2e_p99_s", "End-to-end p99", "E2E p99 (s)"),
)
THROUGHPUT_PANELS = (
    ("throughput_tokens_per_s", "Token throughput (input + output)", "tokens/s"),
    ("output_throughput_tokens_per_s", "Output token throughput", "output tokens/s"),
    ("requests_per_s", "Completed requests", "requests/s"),
    ("goodput_requests_per_s", "Goodput (requests meeting the SLOs)", "requests/s"),
)
ENERGY_PANELS = (
    ("wh_per_mtok", "Facility energy per million tokens", "Wh / Mtoken"),
    ("gco2_per_mtok", "CO₂ (operational + embodied) per million tokens", "gCO₂ / Mtoken"),
)
CACHE_PANELS = (
    ("prefix_cache_token_hit_ratio", "Prefix-cache token hit ratio", "matched / prompt tokens"),
    ("prefix_cache_hit_ratio", "Requests with any prefix-cache hit", "requests with a hit / lookups"),
    ("ttft_p99_s", "TTFT p99", "TTFT p99 (s)"),
)
RATIO_COLUMNS = frozenset({"prefix_cache_token_hit_ratio", "prefix_cache_hit_ratio"})
MEASURED_LOAD = "requests_per_s"
UNBOUNDED_AT_ZERO = frozenset({"cache_capacity_tokens", "cache_capacity_bytes"})
OBJECTIVES = (
    ("usd_per_mtok", "cost (US$ / Mtoken)"),
    ("ttft_p99_s", "TTFT p99 (s)"),
    ("gco2_per_mtok", "CO₂ (g / Mtoken)"),
)


@dataclass(frozen=True)
class Layout:
    """How runs map onto curves.

    ``load_axis`` is the sweep axis on the x of the load curves (None: the measured
    ``requests_per_s`` is the x); ``config_axes`` are the other varying non-seed axes, whose
    combination is one line; ``seeds_vary`` says whether points average over seeds.
    """

    load_axis: str | None
    config_axes: tuple[str, ...]
    seeds_vary: bool

    @property
    def x_label(self) -> str:
        if self.load_axis is None:
            return "measured load (requests/s)"
        return _axis_label(self.load_axis)


def _axis_label(axis: str) -> str:
    units = {
        "rate": "rate (requests/s)",
        "session_rate": "session_rate (sessions/s)",
        "rate_scale": "rate_scale (× trace rate)",
        "concurrency": "concurrency (clients)",
        "num_requests": "num_requests",
        "cache_capacity_tokens": "cache_capacity_tokens (tokens; 0 = free KV memory)",
        "cache_capacity_bytes": "cache_capacity_bytes (bytes)",
        "prefix_cache_size": "prefix_cache_size (prompts)",
        "prefix_len": "prefix_len (tokens)",
    }
    return units.get(axis, axis)


# -------------------------------------------------------------------------------- rendering


def to_svg(fig: Figure) -> str:
    """The figure as SVG text with reproducible bytes (fixed hash salt, no date)."""
    buf = io.StringIO()
    with rc_context({"svg.hashsalt": SVG_HASH_SALT, "svg.fonttype": "path"}):
        fig.savefig(buf, format="svg", metadata={"Date": None})
    return buf.getvalue()


def _new_figure(width: float, height: float) -> Figure:
    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


def _style(i: int) -> dict[str, Any]:
    """Colour, line style and marker of configuration ``i`` (distinct for the first 40)."""
    return {
        "color": f"C{i % 10}",
        "ls": ("-", "--", ":", "-.")[(i // 10) % 4],
        "marker": ("o", "s", "^", "D", "v", "P", "X", "*")[i % 8],
    }


def _legend(fig: Figure, handles: list, labels: list[str], title: str | None) -> None:
    if not handles:
        return
    if len(labels) <= MAX_LEGEND_RIGHT and max(len(lbl) for lbl in labels) <= 48:
        fig.legend(handles, labels, loc="outside right upper", title=title, fontsize=9)
    else:
        ncols = 3 if max(len(lbl) for lbl in labels) <= 40 else 2
        fig.legend(handles, labels, loc="outside lower center", title=title, fontsize=8, ncols=ncols)


def _fmt_tick(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 1e5 or abs(value) < 1e-3:
        return f"{value:.0e}"
    return f"{value:g}"


# ------------------------------------------------------------------------------ grouping


def config_key(row: dict[str, Any], axes: Sequence[str]) -> tuple:
    return tuple(_key(row.get(a)) for a in axes)


def _key(value: Any) -> Any:
    return "None" if value is None else value


def config_label(key: tuple, axes: Sequence[str]) -> str:
    """``gpu=A10, prefix_cache=off``; ``all runs`` when there are no configuration axes."""
    if not axes:
        return "all runs"
    return ", ".join(f"{a}={_fmt_value(v)}" for a, v in zip(axes, key, strict=True))


def _fmt_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def sorted_configs(rows: list[dict[str, Any]], axes: Sequence[str]) -> list[tuple]:
    keys = {config_key(r, axes) for r in rows}

    # Sort by each axis in turn, numbers numerically.
    def sort_key(k: tuple) -> tuple:
        out = []
        for v in k:
            out.append((0, float(v), "") if is_number(v) else (1, 0.0, str(v)))
        return tuple(out)

    return sorted(keys, key=sort_key)


@dataclass
class _Series:
    """One line: x positions and the mean / min / max of y over seeds at each x."""

    label: str
    x: np.ndarray
    y: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    n: np.ndarray  # number of runs averaged at each x


@dataclass
class _XAxis:
    """How x values map to plot positions: numeric (maybe log) or categorical."""

    numeric: bool
    log: bool
    categories: list[Any]
    zero_means_unbounded: bool = False

    @classmethod
    def for_values(cls, values: Sequence[Any], axis: str | None = None) -> _XAxis:
        vals = sort_values(list(dict.fromkeys(v for v in values if v is not None)))
        if vals and all(finite(v) for v in vals):
            arr = np.asarray(vals, dtype=float)
            if len(vals) > 2 and np.all(arr > 0) and arr.max() / arr.min() >= 20:
                return cls(numeric=True, log=True, categories=vals)
            if len(vals) > 2 and arr.min() == 0 and arr.max() > 0:
                positive = arr[arr > 0]
                if positive.size > 1 and positive.max() / positive.min() >= 20:
                    # 0 next to 2^k: evenly spaced categories. A cache capacity of 0 means
                    # "bounded only by free KV memory", the largest, so it goes last.
                    if axis in UNBOUNDED_AT_ZERO:
                        vals = [v for v in vals if v != 0] + [v for v in vals if v == 0]
                        return cls(numeric=False, log=False, categories=vals, zero_means_unbounded=True)
                    return cls(numeric=False, log=False, categories=vals)
            return cls(numeric=True, log=False, categories=vals)
        return cls(numeric=False, log=False, categories=vals)

    def position(self, value: Any) -> float:
        if self.numeric:
            return float(value)
        return float(self.categories.index(value))

    def apply(self, ax, label: str) -> None:
        ax.set_xlabel(label)
        if self.numeric:
            if self.log:
                ax.set_xscale("log")
                ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _p: _fmt_tick(v)))
                ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, _p: ""))
                if len(self.categories) <= 12:
                    ax.set_xticks([float(v) for v in self.categories])
            elif len(self.categories) <= 12:
                ax.set_xticks([float(v) for v in self.categories])
                ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _p: _fmt_tick(v)))
            return
        ax.set_xticks(range(len(self.categories)))
        labels = [
            "0 (free KV)" if self.zero_means_unbounded and c == 0 else _fmt_value(c) for c in self.categories
        ]
        rotate = sum(len(s) + 3 for s in labels) > 50
        ax.set_xticklabels(labels, rotation=30 if rotate else 0, ha="right" if rotate else "center")
        ax.set_xlim(-0.5, len(self.categories) - 0.5)


def _series(
    rows: list[dict[str, Any]],
    x_col: str | None,
    y_col: str,
    line_axes: Sequence[str],
    xaxis: _XAxis | None,
) -> list[_Series]:
    """Group ``rows`` into lines by ``line_axes``; average ``y_col`` over the other runs at each x.

    ``x_col`` is a sweep axis (positions by ``xaxis``) or None for the measured requests/s, in
    which case each line's runs are averaged into one point per distinct remaining key.
    """
    out: list[_Series] = []
    for key in sorted_configs(rows, line_axes):
        members = [r for r in rows if config_key(r, line_axes) == key and finite(r.get(y_col))]
        groups: dict[Any, list[dict[str, Any]]] = {}
        for r in members:
            if x_col is None:
                gx = "_measured"
            else:
                if r.get(x_col) is None:
                    continue
                gx = r.get(x_col)
            groups.setdefault(gx, []).append(r)
        xs, ys, lo, hi, ns = [], [], [], [], []
        for gx, grp in groups.items():
            vals = np.asarray([float(r[y_col]) for r in grp])
            if x_col is None:
                loads = [float(r[MEASURED_LOAD]) for r in grp if finite(r.get(MEASURED_LOAD))]
                if not loads:
                    continue
                xs.append(float(np.mean(loads)))
            else:
                assert xaxis is not None
                xs.append(xaxis.position(gx))
            ys.append(float(vals.mean()))
            lo.append(float(vals.min()))
            hi.append(float(vals.max()))
            ns.append(len(grp))
        if not xs:
            continue
        order = np.argsort(xs, kind="stable")
        out.append(
            _Series(
                label=config_label(key, line_axes),
                x=np.asarray(xs)[order],
                y=np.asarray(ys)[order],
                lo=np.asarray(lo)[order],
                hi=np.asarray(hi)[order],
                n=np.asarray(ns)[order],
            )
        )
    return out


def _measured_x(ax, series: list[_Series]) -> None:
    """A measured-load x axis: at least ±5 % around the data, ticks with just enough decimals."""
    xs = np.concatenate([s.x for s in series]) if series else np.empty(0)
    xs = xs[np.isfinite(xs)]
    if xs.size == 0:
        return
    lo, hi = float(xs.min()), float(xs.max())
    centre = (lo + hi) / 2
    half = max((hi - lo) / 2 * 1.1, abs(centre) * 0.05, 1e-9)
    ax.set_xlim(centre - half, centre + half)
    ax.xaxis.set_major_locator(MaxNLocator(6, steps=[1, 2, 5, 10]))

    def fmt(v: float, _p: object) -> str:
        locs = ax.xaxis.get_majorticklocs()
        step = float(np.min(np.diff(locs))) if len(locs) > 1 else abs(v) or 1.0
        decimals = max(0, -math.floor(math.log10(step) + 1e-9)) if step > 0 else 0
        return f"{v:.{decimals}f}"

    ax.xaxis.set_major_formatter(FuncFormatter(fmt))


def _has_values(rows: list[dict[str, Any]], col: str) -> bool:
    return any(finite(r.get(col)) for r in rows)


def _log_y_if_wide(ax, series: list[_Series]) -> None:
    vals = np.concatenate([s.lo for s in series] + [s.hi for s in series]) if series else np.empty(0)
    vals = vals[np.isfinite(vals)]
    if vals.size and np.all(vals > 0) and vals.max() / vals.min() >= 100:
        _set_log(ax.yaxis, ax.set_yscale, vals)


def _set_log(axis, set_scale, values: np.ndarray) -> None:
    """Log scale with plain tick labels; minor ticks at 2 and 5 labelled when under 2 decades."""
    set_scale("log")
    axis.set_major_formatter(FuncFormatter(lambda v, _p: _fmt_tick(v)))
    decades = math.log10(float(values.max()) / float(values.min()))

    def minor(v: float, _p: object) -> str:
        if decades > 2 or v <= 0:
            return ""
        lead = round(v / 10 ** math.floor(math.log10(v) + 1e-9), 6)
        return _fmt_tick(v) if lead in (2.0, 5.0) else ""

    axis.set_minor_formatter(FuncFormatter(minor))


def _draw_lines(ax, series: list[_Series], indices: dict[str, int], band: bool) -> None:
    for s in series:
        st = _style(indices[s.label])
        ax.plot(s.x, s.y, color=st["color"], ls=st["ls"], marker=st["marker"], ms=4, lw=1.5, label=s.label)
        if band and np.any(s.hi > s.lo):
            ax.fill_between(s.x, s.lo, s.hi, color=st["color"], alpha=0.15, lw=0)


def _line_panels(
    runs: RunSet,
    layout: Layout,
    panels: Sequence[tuple[str, str, str]],
    x_col: str | None,
    line_axes: Sequence[str],
    x_label: str,
    ratio_cols: frozenset[str] = frozenset(),
) -> str | None:
    rows = runs.ok_rows
    present = [p for p in panels if _has_values(rows, p[0])]
    if any(p[0] == "requests_per_s" for p in present) and all(
        r.get("goodput_requests_per_s") in (None, r.get("requests_per_s")) for r in rows
    ):
        present = [p for p in present if p[0] != "goodput_requests_per_s"]  # no SLO: goodput = rate
    if not present:
        return None
    xaxis = _XAxis.for_values([r.get(x_col) for r in rows], x_col) if x_col is not None else None
    all_series = {col: _series(rows, x_col, col, line_axes, xaxis) for col, _, _ in present}
    labels = [s.label for ser in all_series.values() for s in ser]
    indices = {lbl: i for i, lbl in enumerate(dict.fromkeys(labels))}
    if not indices:
        return None
    ncols = 2 if len(present) > 1 else 1
    nrows = math.ceil(len(present) / ncols)
    legend_below = len(indices) > MAX_LEGEND_RIGHT
    fig = _new_figure(12.5, 3.6 * nrows + (0.35 * math.ceil(len(indices) / 3) if legend_below else 0) + 0.2)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False).ravel())
    band = layout.seeds_vary
    for ax, (col, title, ylabel) in zip(axes, present, strict=False):
        series = all_series[col]
        _draw_lines(ax, series, indices, band)
        ax.set_title(title, fontsize=11)
        ax.set_ylabel(ylabel)
        if xaxis is not None:
            xaxis.apply(ax, x_label)
        else:
            ax.set_xlabel(x_label)
            _measured_x(ax, series)
        if col in ratio_cols:
            ax.set_ylim(-0.02, 1.02)
            ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        else:
            _log_y_if_wide(ax, series)
            if ax.get_yscale() == "linear":
                lo, hi = ax.get_ylim()
                ax.set_ylim(min(0.0, lo), hi)
        ax.grid(True, alpha=0.35)
        ax.grid(True, which="minor", alpha=0.12)
    for ax in axes[len(present) :]:
        ax.set_visible(False)
    handles, lbls = [], []
    seen: set[str] = set()
    for ax in axes[: len(present)]:
        for h, lbl in zip(*ax.get_legend_handles_labels(), strict=True):
            if lbl not in seen:
                seen.add(lbl)
                handles.append(h)
                lbls.append(lbl)
    title = ", ".join(line_axes) if line_axes else None
    _legend(fig, handles, lbls, title)
    return to_svg(fig)


# -------------------------------------------------------------------------------- figures


def latency_figure(runs: RunSet, layout: Layout) -> str | None:
    """TTFT p50/p99, TPOT p99 and E2E p99 (s) against load, one line per configuration."""
    return _line_panels(
        runs,
        layout,
        LATENCY_PANELS,
        layout.load_axis,
        layout.config_axes,
        layout.x_label,
    )


def throughput_figure(runs: RunSet, layout: Layout) -> str | None:
    """Token and request throughput (per s) against load, one line per configuration."""
    return _line_panels(
        runs,
        layout,
        THROUGHPUT_PANELS,
        layout.load_axis,
        layout.config_axes,
        layout.x_label,
    )


def cache_figure(runs: RunSet, layout: Layout, cache_axis: str | None) -> str | None:
    """Prefix-cache hit ratios (and TTFT p99) against ``cache_axis``, else against load."""
    if cache_axis is not None:
        others = [a for a in runs.varying_axes() if a not in (cache_axis, SEED_AXIS)]
        return _line_panels(
            runs,
            layout,
            CACHE_PANELS,
            cache_axis,
            others,
            _axis_label(cache_axis),
            RATIO_COLUMNS,
        )
    return _line_panels(
        runs,
        layout,
        CACHE_PANELS,
        layout.load_axis,
        layout.config_axes,
        layout.x_label,
        RATIO_COLUMNS,
    )


def energy_co2_figure(runs: RunSet, layout: Layout) -> str | None:
    """Grouped bars of Wh/Mtoken and gCO₂/Mtoken: a group per configuration, a bar per load."""
    rows = runs.ok_rows
    present = [p for p in ENERGY_PANELS if _has_values(rows, p[0])]
    if not present:
        return None
    configs = sorted_configs(rows, layout.config_axes)
    loads = runs.values(layout.load_axis, rows) if layout.load_axis else [None]
    loads = [v for v in loads if v is not None] or [None]
    n_groups, n_bars = len(configs), len(loads)
    width = min(16.0, max(9.0, 1.0 + n_groups * (0.35 * n_bars + 0.5)))
    long_labels = layout.config_axes and n_groups > 3
    fig = _new_figure(width, 3.1 * len(present) + (1.0 if long_labels else 0.3))
    axes = np.atleast_1d(fig.subplots(len(present), 1, sharex=True, squeeze=False).ravel())
    bar_w = 0.8 / n_bars
    for ax, (col, title, ylabel) in zip(axes, present, strict=True):
        for j, load in enumerate(loads):
            xs, ys, err_lo, err_hi = [], [], [], []
            for g, key in enumerate(configs):
                vals = [
                    float(r[col])
                    for r in rows
                    if config_key(r, layout.config_axes) == key
                    and (load is None or r.get(layout.load_axis) == load)
                    and finite(r.get(col))
                ]
                if not vals:
                    continue
                mean = float(np.mean(vals))
                xs.append(g - 0.4 + bar_w * (j + 0.5))
                ys.append(mean)
                err_lo.append(mean - min(vals))
                err_hi.append(max(vals) - mean)
            if not xs:
                continue
            label = f"{layout.load_axis}={_fmt_value(load)}" if load is not None else None
            color = f"C{j % 10}" if load is not None else "C0"
            yerr = np.asarray([err_lo, err_hi]) if layout.seeds_vary else None
            ax.bar(xs, ys, bar_w * 0.92, color=color, label=label, yerr=yerr, capsize=2, ecolor="0.25")
        ax.set_title(title, fontsize=11)
        ax.set_ylabel(ylabel)
        ax.grid(True, axis="y", alpha=0.35)
        ax.set_axisbelow(True)
        ax.set_xlim(-0.6, n_groups - 0.4)
    ax = axes[-1]
    ax.set_xticks(range(n_groups))
    if layout.config_axes:
        tick_labels = ["\n".join(_fmt_value(v) for v in key) for key in configs]
        rotate = n_groups > 6 and max(len(t) for t in tick_labels) > 8
        ax.set_xticklabels(
            [t.replace("\n", ", ") for t in tick_labels] if rotate else tick_labels,
            rotation=30 if rotate else 0,
            ha="right" if rotate else "center",
            fontsize=9,
        )
        ax.set_xlabel("configuration: " + " / ".join(layout.config_axes))
    else:
        ax.set_xticklabels(["all runs"])
    if layout.load_axis:
        handles, labels = axes[0].get_legend_handles_labels()
        _legend(fig, handles, labels, _axis_label(layout.load_axis))
    return to_svg(fig)


def pareto_figure(
    runs: RunSet, rows: list[dict[str, Any]], front: np.ndarray, numbers: dict[str, int]
) -> str | None:
    """Two scatters of the runs with the Pareto front ringed and numbered.

    Left: cost (US$/Mtoken) against TTFT p99 (s), coloured by CO₂ (g/Mtoken); right: cost against
    CO₂, coloured by TTFT p99. ``rows`` are the comparable runs, ``front`` their front mask,
    ``numbers`` the front's run ids to their row number in the front table.
    """
    if not rows:
        return None
    cost = np.asarray([float(r["usd_per_mtok"]) for r in rows])
    ttft = np.asarray([float(r["ttft_p99_s"]) for r in rows])
    co2 = np.asarray([float(r["gco2_per_mtok"]) for r in rows])
    fig = _new_figure(12.5, 5.0)
    axes = fig.subplots(1, 2)
    panels = (
        (axes[0], ttft, "TTFT p99 (s)", co2, "CO₂ (g / Mtoken)"),
        (axes[1], co2, "CO₂ (g / Mtoken)", ttft, "TTFT p99 (s)"),
    )
    for ax, y, ylabel, colour, clabel in panels:
        sc = ax.scatter(cost, y, c=colour, cmap="viridis", s=36, edgecolors="none", zorder=2)
        ax.scatter(
            cost[front],
            y[front],
            s=150,
            facecolors="none",
            edgecolors="crimson",
            lw=1.6,
            zorder=3,
            label="Pareto front",
        )
        cbar = fig.colorbar(sc, ax=ax, shrink=0.9)
        cbar.set_label(clabel)
        ax.set_xlabel("cost (US$ / Mtoken)")
        ax.set_ylabel(ylabel)
        for vals, axis, setter in ((cost, ax.xaxis, ax.set_xscale), (y, ax.yaxis, ax.set_yscale)):
            if np.all(vals > 0) and vals.max() / vals.min() >= 30:
                _set_log(axis, setter, vals)
            else:
                axis.set_major_formatter(FuncFormatter(lambda v, _p: _fmt_tick(v)))
        ax.grid(True, alpha=0.35)
        ax.legend(loc="best", fontsize=9)
        _number_points(fig, ax, cost, y, front, [numbers[rows[i]["run_id"]] for i in np.flatnonzero(front)])
    return to_svg(fig)


_LABEL_OFFSETS = ((6, 5), (6, -11), (-13, 5), (-13, -11), (12, -3), (-19, -3), (0, 10), (0, -16))


def _number_points(
    fig: Figure, ax, x: np.ndarray, y: np.ndarray, mask: np.ndarray, labels: list[int]
) -> None:
    """Write ``labels`` next to the ``mask``-ed points, nudged so that no two labels overlap."""
    fig.canvas.draw()  # fixes the limits and scales, so data -> pixel transforms are final
    to_px = ax.transData.transform
    px_per_pt = fig.dpi / 72.0
    placed: list[tuple[float, float]] = []
    for label, i in zip(labels, np.flatnonzero(mask), strict=True):
        px, py = to_px((x[i], y[i]))
        choice = _LABEL_OFFSETS[0]
        for dx, dy in _LABEL_OFFSETS:
            cx, cy = px + dx * px_per_pt, py + dy * px_per_pt
            if all(abs(cx - ox) > 14 * px_per_pt or abs(cy - oy) > 9 * px_per_pt for ox, oy in placed):
                choice = (dx, dy)
                break
        placed.append((px + choice[0] * px_per_pt, py + choice[1] * px_per_pt))
        ax.annotate(
            str(label),
            (x[i], y[i]),
            xytext=choice,
            textcoords="offset points",
            fontsize=8,
            color="crimson",
            zorder=4,
        )


def ttft_cdf_figure(
    panels: list[tuple[str, list[tuple[str, np.ndarray]]]], config_labels: Sequence[str]
) -> str | None:
    """TTFT CDFs (s) read from the runs' ``requests.parquet``: a panel per load value.

    ``panels`` = ``[(panel title, [(configuration label, ttft values), ...]), ...]``;
    ``config_labels`` fixes the colour of each configuration (the same as in the other figures).
    """
    panels = [
        (title, [(lbl, v[np.isfinite(v)]) for lbl, v in curves if np.isfinite(v).any()])
        for title, curves in panels
    ]
    panels = [(t, c) for t, c in panels if c]
    if not panels:
        return None
    indices = {lbl: i for i, lbl in enumerate(config_labels)}
    ncols = min(len(panels), 2)
    nrows = math.ceil(len(panels) / ncols)
    legend_below = len(indices) > MAX_LEGEND_RIGHT
    fig = _new_figure(12.5, 3.4 * nrows + (0.3 * math.ceil(len(indices) / 3) if legend_below else 0) + 0.3)
    axes = fig.subplots(nrows, ncols, squeeze=False, sharey=True).ravel()
    everything = np.concatenate([v for _, curves in panels for _, v in curves])
    positive = everything[everything > 0]
    log = bool(positive.size and positive.max() / positive.min() >= 100)
    for ax, (title, curves) in zip(axes, panels, strict=False):
        for label, values in curves:
            x = np.sort(values)
            if x.size > 5000:
                x = x[np.linspace(0, x.size - 1, 5000).round().astype(np.int64)]
            y = np.arange(1, x.size + 1) / x.size
            st = _style(indices.get(label, len(indices)))
            ax.step(x, y, where="post", color=st["color"], ls=st["ls"], lw=1.4, label=label)
        if log:
            _set_log(ax.xaxis, ax.set_xscale, positive)
        ax.set_title(title, fontsize=11)
        ax.set_xlabel("TTFT (s)")
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        ax.set_ylim(0, 1.02)
        ax.grid(True, alpha=0.35)
        ax.grid(True, which="minor", alpha=0.12)
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    for row in range(nrows):
        axes[row * ncols].set_ylabel("fraction of requests ≤ x")
    handles, labels = [], []
    for ax in axes[: len(panels)]:
        for h, lbl in zip(*ax.get_legend_handles_labels(), strict=True):
            if lbl not in labels:
                handles.append(h)
                labels.append(lbl)
    order = sorted(range(len(labels)), key=lambda k: indices.get(labels[k], len(indices)))
    _legend(fig, [handles[k] for k in order], [labels[k] for k in order], None)
    return to_svg(fig)
