"""``kavier report``: one self-contained HTML page about a sweep (or a few runs).

The page holds a summary of the sweep (runs, ok/failed, axes and their values), a sortable
table of the runs, latency and throughput curves against load, energy and CO₂ per million
tokens per configuration, prefix-cache hit curves, the Pareto front of cost (US$/Mtoken),
TTFT p99 (s) and CO₂ (g/Mtoken), and, when the runs' own folders are there, TTFT CDFs.

Self-contained: figures are SVG in ``data:`` URIs, the CSS and the few lines of table-sorting
JavaScript are inline, and nothing refers to the network. The same input gives the same bytes.
A section whose data is missing is replaced by a one-line note.
"""

from __future__ import annotations

import base64
import html
import math
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from kavier.report import figures
from kavier.report.figures import Layout, config_label
from kavier.report.pareto import pareto_front
from kavier.report.runs import (
    CACHE_AXES,
    LOAD_AXES,
    SEED_AXIS,
    ReportError,
    RunSet,
    finite,
    is_number,
    load_runs,
)

__all__ = ["build_report", "choose_layout", "render_html", "write_report"]

MAX_AXIS_VALUES_SHOWN = 24
MAX_CDF_PANELS = 4
MAX_CDF_CONFIGS = 12

# (column, header with unit) of the metrics shown in the run table, when present.
TABLE_METRICS: tuple[tuple[str, str], ...] = (
    ("num_requests", "requests"),
    ("ttft_p50_s", "TTFT p50 (s)"),
    ("ttft_p99_s", "TTFT p99 (s)"),
    ("tpot_p99_s", "TPOT p99 (s)"),
    ("e2e_p99_s", "E2E p99 (s)"),
    ("throughput_tokens_per_s", "throughput (tok/s)"),
    ("requests_per_s", "requests/s"),
    ("goodput_requests_per_s", "goodput (req/s)"),
    ("usd_per_mtok", "cost (US$/Mtok)"),
    ("wh_per_mtok", "energy (Wh/Mtok)"),
    ("gco2_per_mtok", "CO₂ (g/Mtok)"),
    ("prefix_cache_token_hit_ratio", "prefix hit ratio (tokens)"),
    ("preemptions", "preemptions"),
    ("load_state", "load"),
    ("queue_growth_requests_per_s", "queue growth (req/s)"),
    ("gpu_busy_fraction", "GPU busy fraction"),
    ("mfu_mean", "MFU"),
    ("mbu_mean", "MBU"),
    ("kv_use_peak", "KV use peak"),
    ("kv_headroom_blocks", "KV headroom (blocks)"),
)
PARETO_OBJECTIVES = ("usd_per_mtok", "ttft_p99_s", "gco2_per_mtok")
# Constant context shown in the header when every run agrees on it.
CONTEXT_KEYS = (("model", "model"), ("gpu", "GPU"), ("preset", "preset"), ("scheduler", "scheduler"))


def write_report(
    paths: Sequence[str | Path], out: str | Path | None = None, title: str | None = None
) -> Path:
    """Build the report of ``paths`` and write it atomically to ``out``; return its path.

    ``out`` defaults to ``<folder>/report.html`` for one folder and ``report.html`` otherwise.

    Raises:
        ReportError: unreadable input (see :func:`kavier.report.runs.load_runs`) or an output
            path that cannot be written.
    """
    runs = load_runs(paths)
    if out is None:
        out = Path(paths[0]) / "report.html" if len(paths) == 1 else Path("report.html")
    dest = Path(out)
    text = render_html(runs, title)
    _atomic_write(dest, text)
    return dest


def build_report(paths: Sequence[str | Path], title: str | None = None) -> str:
    """The report of ``paths`` as HTML text."""
    return render_html(load_runs(paths), title)


def _atomic_write(dest: Path, text: str) -> None:
    parent = dest.parent if str(dest.parent) else Path(".")
    if not parent.is_dir():
        raise ReportError(f"cannot write {dest}: folder {parent}/ does not exist")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=parent)
    except OSError as exc:
        raise ReportError(f"cannot write {dest}: {exc.strerror or exc}") from exc
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise ReportError(f"cannot write {dest}: {exc.strerror or exc}") from exc
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# ------------------------------------------------------------------------------- layout


def choose_layout(runs: RunSet) -> Layout:
    """Load axis = the first of :data:`LOAD_AXES` that varies; configuration = other axes."""
    varying = runs.varying_axes()
    load_axis = next((a for a in LOAD_AXES if a in varying), None)
    if load_axis is not None and not all(
        finite(r.get(load_axis)) for r in runs.ok_rows if r.get(load_axis) is not None
    ):
        load_axis = None  # a non-numeric "load" cannot be a curve's x
    config_axes = tuple(a for a in varying if a not in (load_axis, SEED_AXIS))
    seeds_vary = SEED_AXIS in varying
    return Layout(load_axis=load_axis, config_axes=config_axes, seeds_vary=seeds_vary)


def _cache_axis(runs: RunSet) -> str | None:
    varying = runs.varying_axes()
    return next((a for a in CACHE_AXES if a in varying), None)


# ------------------------------------------------------------------------------- rendering


def render_html(runs: RunSet, title: str | None = None) -> str:
    """The whole page for ``runs``."""
    from kavier import __version__

    layout = choose_layout(runs)
    page_title = title or f"Kavier report: {Path(runs.source).name or runs.source}"
    sections = [
        _header(runs, layout, page_title),
        _runs_table(runs, layout),
        _figure_section(
            "latency",
            "Latency against load",
            figures.latency_figure(runs, layout),
            "no successful run has latency metrics (ttft_p50_s, ttft_p99_s, tpot_p99_s, e2e_p99_s)",
            _load_caption(layout),
        ),
        _figure_section(
            "throughput",
            "Throughput against load",
            figures.throughput_figure(runs, layout),
            "no successful run has throughput metrics (throughput_tokens_per_s, requests_per_s)",
            _load_caption(layout),
        ),
        _figure_section(
            "energy",
            "Energy and CO₂ per million tokens",
            figures.energy_co2_figure(runs, layout),
            "no successful run has wh_per_mtok or gco2_per_mtok",
            "Facility energy (Wh) and CO₂ (operational + embodied, g) per million tokens "
            "(input + output) of each configuration"
            + (f", one bar per {layout.load_axis}" if layout.load_axis else "")
            + "."
            + (" Bars are the mean over seeds; whiskers span their min–max." if layout.seeds_vary else ""),
        ),
        _cache_section(runs, layout),
        _pareto_section(runs, layout),
        _cdf_section(runs, layout),
    ]
    body = "\n".join(s for s in sections if s)
    return _PAGE.format(
        title=_e(page_title),
        css=_CSS,
        body=body,
        script=_SCRIPT,
        version=_e(__version__),
        source=_e(runs.source),
    )


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _wbr(text: Any) -> str:
    """Escaped text with line-break opportunities after ``_``, ``-`` and ``/``."""
    out = _e(text)
    for ch in ("_", "-", "/"):
        out = out.replace(ch, ch + "<wbr>")
    return out


def _load_caption(layout: Layout) -> str:
    lines = (
        f"one line per configuration ({', '.join(layout.config_axes)})"
        if layout.config_axes
        else "one line for all runs"
    )
    x = (
        f"x = the sweep axis <code>{_e(layout.load_axis)}</code>"
        if layout.load_axis
        else "no load axis was swept (rate, rate_scale, concurrency, …), so x = measured requests/s"
    )
    seeds = (
        " Points are the mean over seeds; the shaded band spans their min–max." if layout.seeds_vary else ""
    )
    return f"{_e(lines)}; {x}.{seeds}"


def _header(runs: RunSet, layout: Layout, title: str) -> str:
    n, ok, failed = len(runs.rows), len(runs.ok_rows), len(runs.failed_rows)
    parts = [f"<h1>{_e(title)}</h1>"]
    runs_fact = f"<b>{n}</b> run{'s' if n != 1 else ''}"
    if runs.planned_runs is not None:
        runs_fact = f"<b class='bad'>{ok} of {runs.planned_runs}</b> runs (interrupted sweep)"
    facts = [
        runs_fact,
        f"<b class='ok'>{ok}</b> ok",
        f"<b class='{'bad' if failed else ''}'>{failed}</b> failed",
    ]
    if runs.mode:
        facts.append(f"mode <code>{_e(runs.mode)}</code>")
    facts.append(f"source <code>{_e(runs.source)}</code>")
    parts.append(f"<p class='facts'>{' · '.join(facts)}</p>")
    context = []
    for key, label in CONTEXT_KEYS:
        if key in runs.axes:
            continue
        vals = {str(r.get(key)) for r in runs.ok_rows if r.get(key) is not None}
        if len(vals) == 1:
            context.append(f"{_e(label)} <code>{_e(vals.pop())}</code>")
    if context:
        parts.append(f"<p class='facts'>{' · '.join(context)}</p>")
    if runs.axes:
        rows = []
        for axis in runs.axes:
            vals = runs.values(axis)
            shown = ", ".join(_e(_fmt_cell(v)) for v in vals[:MAX_AXIS_VALUES_SHOWN])
            if len(vals) > MAX_AXIS_VALUES_SHOWN:
                shown += f", … ({len(vals)} values)"
            role = (
                "load (x of the curves)"
                if axis == layout.load_axis
                else "seed (averaged)"
                if axis == SEED_AXIS and layout.seeds_vary
                else "configuration"
                if axis in layout.config_axes
                else "constant"
            )
            rows.append(
                f"<tr><td><code>{_e(axis)}</code></td><td class='num'>{len(vals)}</td>"
                f"<td>{shown}</td><td>{_e(role)}</td></tr>"
            )
        parts.append(
            "<table class='axes'><thead><tr><th>axis</th><th>values</th><th>which</th>"
            f"<th>role</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
        )
    else:
        parts.append("<p class='note'>No sweep axes: the runs share one scenario or were not swept.</p>")
    for note in runs.notes:
        parts.append(f"<p class='note'>{_e(note)}</p>")
    nav = " ".join(
        f"<a href='#{sid}'>{_e(name)}</a>"
        for sid, name in (
            ("runs", "runs"),
            ("latency", "latency"),
            ("throughput", "throughput"),
            ("energy", "energy & CO₂"),
            ("cache", "cache hits"),
            ("pareto", "Pareto front"),
            ("ttft-cdf", "TTFT CDFs"),
        )
    )
    parts.append(f"<nav>{nav}</nav>")
    return f"<header>{''.join(parts)}</header>"


def _fmt_cell(value: Any) -> str:
    """A table cell's text: numbers to 4 significant digits, thousands separated."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "∞" if value > 0 else "−∞"
        if value == 0:
            return "0"
        a = abs(value)
        if a >= 1e4:
            return f"{value:,.0f}"
        if a < 1e-3:
            return f"{value:.3e}"
        return f"{value:.4g}"
    return str(value)


def _sort_attr(value: Any) -> str:
    """``data-v`` for the sorter: numbers as repr, text as itself."""
    if is_number(value) and math.isfinite(value):
        return f" data-v='{float(value)!r}'"
    return ""


def _runs_table(runs: RunSet, layout: Layout) -> str:
    columns = set(runs.columns())
    axes = list(runs.axes)
    metrics = [(c, h) for c, h in TABLE_METRICS if c in columns and c not in axes]
    if _same_everywhere(runs.ok_rows, "goodput_requests_per_s", "requests_per_s"):
        metrics = [(c, h) for c, h in metrics if c != "goodput_requests_per_s"]  # no SLO given
    head = ["<th>run_id</th>", "<th>status</th>"]
    head += [f"<th class='axis'>{_wbr(a)}</th>" for a in axes]
    head += [f"<th title='{_e(c)}'>{_wbr(h)}</th>" for c, h in metrics]
    body = []
    for row in runs.ok_rows + runs.failed_rows:
        failed = row.get("status") != "ok"
        cells = [f"<td class='id'>{_wbr(row['run_id'])}</td>", f"<td>{_e(row.get('status'))}</td>"]
        for a in axes:
            v = row.get(a)
            num = " num" if is_number(v) else ""
            cells.append(f"<td class='axis{num}'{_sort_attr(v)}>{_e(_fmt_cell(v))}</td>")
        if failed:
            err = row.get("error") or "no error message"
            cells.append(f"<td class='err' colspan='{max(len(metrics), 1)}'>{_e(err)}</td>")
        else:
            for c, _ in metrics:
                v = row.get(c)
                cells.append(f"<td class='num'{_sort_attr(v)}>{_e(_fmt_cell(v))}</td>")
        body.append(f"<tr class='{'failed' if failed else 'ok'}'>{''.join(cells)}</tr>")
    note = (
        f"<p class='note'>{len(runs.failed_rows)} failed run(s) are listed last with their error "
        "and left out of every figure.</p>"
        if runs.failed_rows
        else ""
    )
    return (
        "<section id='runs'><h2>Runs</h2>"
        "<p class='caption'>Click a column header to sort (failed runs stay at the bottom). "
        "Units are in the headers; hover a header for its summary.json key.</p>"
        f"{note}<div class='scroll'><table class='runs sortable'><thead><tr>{''.join(head)}</tr></thead>"
        f"<tbody>{''.join(body)}</tbody></table></div></section>"
    )


def _same_everywhere(rows: list[dict[str, Any]], a: str, b: str) -> bool:
    """True when column ``a`` equals column ``b`` in every row (or ``a`` is nowhere)."""
    return all(r.get(a) == r.get(b) for r in rows if r.get(a) is not None)


def _img(svg: str, alt: str) -> str:
    data = base64.b64encode(svg.encode("utf-8")).decode("ascii")
    return f"<img class='fig' alt='{_e(alt)}' src='data:image/svg+xml;base64,{data}'>"


def _figure_section(sid: str, heading: str, svg: str | None, missing: str, caption: str) -> str:
    if svg is None:
        return (
            f"<section id='{sid}'><h2>{_e(heading)}</h2><p class='note'>Omitted: {_e(missing)}.</p></section>"
        )
    return (
        f"<section id='{sid}'><h2>{_e(heading)}</h2><figure>{_img(svg, heading)}"
        f"<figcaption>{caption}</figcaption></figure></section>"
    )


def _cache_section(runs: RunSet, layout: Layout) -> str:
    heading = "Prefix-cache hits"
    rows = runs.ok_rows
    col = "prefix_cache_token_hit_ratio"
    vals = {float(r[col]) for r in rows if finite(r.get(col))}
    alt = {float(r["prefix_cache_hit_ratio"]) for r in rows if finite(r.get("prefix_cache_hit_ratio"))}
    if len(vals) <= 1 and len(alt) <= 1:
        why = (
            "no successful run reports prefix_cache_token_hit_ratio"
            if not vals and not alt
            else f"the cache hit ratios are the same in every run ({_fmt_cell(next(iter(vals or alt)))})"
        )
        return f"<section id='cache'><h2>{heading}</h2><p class='note'>Omitted: {_e(why)}.</p></section>"
    cache_axis = _cache_axis(runs)
    svg = figures.cache_figure(runs, layout, cache_axis)
    if cache_axis:
        others = [a for a in runs.varying_axes() if a not in (cache_axis, SEED_AXIS)]
        caption = (
            f"x = the cache axis <code>{_e(cache_axis)}</code>; one line per "
            + (f"combination of {_e(', '.join(others))}" if others else "sweep")
            + "."
        )
    else:
        caption = "No cache axis was swept, so the hit ratios are drawn against load; " + _load_caption(
            layout
        )
    return _figure_section("cache", heading, svg, "no cache metrics", caption)


def _pareto_section(runs: RunSet, layout: Layout) -> str:
    heading = "Pareto front: cost vs TTFT p99 vs CO₂"
    rows = [r for r in runs.ok_rows if all(finite(r.get(c)) for c in PARETO_OBJECTIVES)]
    if not rows:
        missing = ", ".join(PARETO_OBJECTIVES)
        return (
            f"<section id='pareto'><h2>{_e(heading)}</h2><p class='note'>Omitted: no successful run "
            f"has all of {_e(missing)}.</p></section>"
        )
    points = np.asarray([[float(r[c]) for c in PARETO_OBJECTIVES] for r in rows])
    front = pareto_front(points)
    members = sorted(
        (rows[i] for i in np.flatnonzero(front)),
        key=lambda r: (r["usd_per_mtok"], r["ttft_p99_s"], r["gco2_per_mtok"], r["run_id"]),
    )
    numbers = {r["run_id"]: k + 1 for k, r in enumerate(members)}
    svg = figures.pareto_figure(runs, rows, front, numbers)
    axes = list(runs.varying_axes())
    head = "<th>#</th><th>run_id</th>" + "".join(f"<th class='axis'>{_wbr(a)}</th>" for a in axes)
    head += "<th>cost (US$/Mtok)</th><th>TTFT p99 (s)</th><th>CO₂ (g/Mtok)</th>"
    body = []
    for r in members:
        cells = [f"<td class='num' data-v='{numbers[r['run_id']]}'>{numbers[r['run_id']]}</td>"]
        cells.append(f"<td class='id'>{_wbr(r['run_id'])}</td>")
        for a in axes:
            v = r.get(a)
            cells.append(f"<td class='axis'{_sort_attr(v)}>{_e(_fmt_cell(v))}</td>")
        for c in PARETO_OBJECTIVES:
            cells.append(f"<td class='num'{_sort_attr(r[c])}>{_e(_fmt_cell(r[c]))}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    left_out = len(runs.ok_rows) - len(rows)
    caption = (
        f"{len(members)} of {len(rows)} runs are not dominated: no other run is at least as good "
        "in all three of cost (US$ per million tokens), TTFT p99 and CO₂ (g per million tokens) "
        "and better in one. Front members are ringed in red and numbered as in the table below. "
        "Each run is one point (seeds are not averaged)."
        + (f" {left_out} successful run(s) lack one of the three and are left out." if left_out else "")
    )
    return (
        f"<section id='pareto'><h2>{_e(heading)}</h2><figure>{_img(svg, heading) if svg else ''}"
        f"<figcaption>{_e(caption)}</figcaption></figure>"
        f"<div class='scroll'><table class='front sortable'><thead><tr>{head}</tr></thead>"
        f"<tbody>{''.join(body)}</tbody></table></div></section>"
    )


def _cdf_section(runs: RunSet, layout: Layout) -> str:
    heading = "TTFT distributions"
    ok = [r for r in runs.ok_rows if r["run_id"] in runs.run_dirs]
    if not ok:
        return (
            f"<section id='ttft-cdf'><h2>{heading}</h2><p class='note'>Omitted: the runs' own "
            "folders (runs/&lt;run_id&gt;/requests.parquet) are not there.</p></section>"
        )
    notes = []
    if layout.seeds_vary:
        first = runs.values(SEED_AXIS, ok)[0]
        ok = [r for r in ok if r.get(SEED_AXIS) == first]
        notes.append(f"seed {_fmt_cell(first)} only")
    loads: list[Any] = [None]
    if layout.load_axis:
        loads = [v for v in runs.values(layout.load_axis, ok) if v is not None]
        if len(loads) > MAX_CDF_PANELS:
            picks = np.unique(np.linspace(0, len(loads) - 1, MAX_CDF_PANELS).round().astype(int))
            loads = [loads[k] for k in picks]
            notes.append(f"{len(loads)} of the {layout.load_axis} values")
    configs = figures.sorted_configs(runs.ok_rows, layout.config_axes)
    config_labels = [config_label(k, layout.config_axes) for k in configs]
    if len(configs) > MAX_CDF_CONFIGS:
        configs = configs[:MAX_CDF_CONFIGS]
        notes.append(f"the first {MAX_CDF_CONFIGS} of {len(config_labels)} configurations")
    panels = []
    for load in loads:
        curves = []
        members = [r for r in ok if load is None or r.get(layout.load_axis) == load]
        for key in configs:
            for r in members:
                if figures.config_key(r, layout.config_axes) != key:
                    continue
                ttft = _read_ttft(runs.run_dirs[r["run_id"]] / "requests.parquet")
                if ttft is not None:
                    curves.append((config_label(key, layout.config_axes), ttft))
                break  # one run per configuration and load
        title = f"{layout.load_axis} = {_fmt_cell(load)}" if load is not None else "all runs"
        panels.append((title, curves))
    svg = figures.ttft_cdf_figure(panels, config_labels)
    caption = (
        "Time to first token of every request (queueing included), read from each run's "
        "requests.parquet"
        + (f", one panel per {layout.load_axis}" if layout.load_axis else "")
        + (f" ({'; '.join(notes)})" if notes else "")
        + "."
    )
    return _figure_section(
        "ttft-cdf",
        heading,
        svg,
        "no readable requests.parquet with ttft_s in the runs' folders",
        _e(caption),
    )


def _read_ttft(path: Path) -> np.ndarray | None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path, columns=["ttft_s"])
    except (OSError, pa.ArrowException, KeyError):
        return None
    return np.asarray(table.column("ttft_s").cast(pa.float64()).to_numpy(zero_copy_only=False), dtype=float)


_CSS = """
:root { --fg: #1d2330; --muted: #5b6475; --line: #d9dde5; --bg: #ffffff; --head: #f3f5f9;
        --bad: #b3261e; --ok: #1b7f3b; --accent: #2456a6; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--fg);
       font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; }
main { max-width: 1360px; margin: 0 auto; padding: 20px 28px 40px; }
h1 { font-size: 24px; margin: 0 0 6px; }
h2 { font-size: 18px; margin: 28px 0 8px; padding-bottom: 4px; border-bottom: 2px solid var(--line); }
code { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 12.5px;
       background: var(--head); padding: 1px 4px; border-radius: 3px; }
.facts { margin: 4px 0; color: var(--muted); }
.facts b { color: var(--fg); }
b.ok { color: var(--ok); } b.bad { color: var(--bad); }
.note { color: var(--muted); font-style: italic; margin: 6px 0; }
.caption, figcaption { color: var(--muted); font-size: 13px; margin: 4px 0 8px; }
nav { margin: 12px 0 0; display: flex; flex-wrap: wrap; gap: 6px 14px; }
nav a { color: var(--accent); text-decoration: none; }
nav a:hover { text-decoration: underline; }
table { border-collapse: collapse; font-size: 12px; }
th, td { border: 1px solid var(--line); padding: 3px 5px; vertical-align: top; }
td { white-space: nowrap; }
td.id { white-space: normal; min-width: 24ch; max-width: 34ch; font-size: 11px; }
th { background: var(--head); text-align: left; font-weight: 600; vertical-align: bottom;
     max-width: 96px; white-space: normal; }
table.sortable th { cursor: pointer; user-select: none; }
table.sortable th:hover { background: #e6eaf2; }
th.sorted-asc::after { content: " \\25B2"; font-size: 9px; }
th.sorted-desc::after { content: " \\25BC"; font-size: 9px; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.axis, th.axis { background-color: #f8f9fc; }
tr.failed td { background: #fdf0ef; }
tr.failed td:nth-child(2) { color: var(--bad); font-weight: 600; }
td.err { color: var(--bad); white-space: normal; }
tbody tr:hover td { background: #eef3fb; }
table.axes { margin-top: 10px; }
.scroll { overflow-x: auto; max-width: 100%; }
figure { margin: 6px 0 10px; }
img.fig { display: block; max-width: 100%; height: auto; }
footer { color: var(--muted); font-size: 12px; margin-top: 32px; border-top: 1px solid var(--line);
         padding-top: 8px; }
"""

# Sorts a table by the clicked column: numbers (data-v) numerically, text alphabetically;
# a second click reverses. Rows without a number sort last.
_SCRIPT = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  var heads = table.tHead.rows[0].cells;
  Array.prototype.forEach.call(heads, function (th, col) {
    th.addEventListener("click", function () {
      var asc = !th.classList.contains("sorted-asc");
      Array.prototype.forEach.call(heads, function (h) { h.classList.remove("sorted-asc", "sorted-desc"); });
      th.classList.add(asc ? "sorted-asc" : "sorted-desc");
      var body = table.tBodies[0];
      var all = Array.prototype.slice.call(body.rows);
      var isFailed = function (r) { return r.classList.contains("failed"); };
      var rows = all.filter(function (r) { return !isFailed(r); });
      var failed = all.filter(isFailed);
      rows.sort(function (a, b) {
        var ca = a.cells[col], cb = b.cells[col];
        var va = ca.getAttribute("data-v"), vb = cb.getAttribute("data-v");
        var r;
        if (va !== null && vb !== null) { r = parseFloat(va) - parseFloat(vb); }
        else if (va !== null) { return -1; }
        else if (vb !== null) { return 1; }
        else { r = ca.textContent.localeCompare(cb.textContent, undefined, {numeric: true}); }
        return asc ? r : -r;
      });
      rows.concat(failed).forEach(function (row) { body.appendChild(row); });
    });
  });
});
document.body.setAttribute("data-sortable", "ready");
"""

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="kavier {version}">
<title>{title}</title>
<style>{css}</style>
</head>
<body>
<main>
{body}
<footer>Generated by kavier {version} report from <code>{source}</code>. Self-contained page:
figures are inline SVG, no network access is needed to view it.</footer>
</main>
<script>{script}</script>
</body>
</html>
"""
