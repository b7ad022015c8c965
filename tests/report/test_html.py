"""``kavier.report.html``: a self-contained HTML page of a sweep, its Pareto table and figures."""

from __future__ import annotations

import itertools
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from kavier.api import run_to_folder, simulate
from kavier.report.html import build_report, choose_layout, write_report
from kavier.report.pareto import pareto_front
from kavier.report.runs import load_runs
from kavier.scenario import build_scenario
from tests.report.helpers import bare_results

FAILED_ERROR = "ScenarioError: model does not fit: needs 160 GiB, has 24 GiB"


def make_sweep(
    folder: Path,
    axes: dict[str, list[Any]],
    base: dict[str, Any],
    *,
    fail: tuple[int, ...] = (),
    run_dirs: bool = False,
    write_meta: bool = True,
) -> Path:
    """Run every combination of ``axes`` in memory and write the sweep results layout."""
    folder.mkdir(parents=True, exist_ok=True)
    names = list(axes)
    rows = []
    for i, combo in enumerate(itertools.product(*axes.values())):
        params = dict(zip(names, combo, strict=True))
        run_id = f"{i:04d}"
        row: dict[str, Any] = {"run_id": run_id, "status": "ok", "error": None, **params}
        if i in fail:
            row.update(status="failed", error=FAILED_ERROR)
        else:
            result = simulate(**base, **params)
            for key, value in result.summary.items():
                row.setdefault(key, json.dumps(value) if isinstance(value, list | dict) else value)
            if run_dirs:
                d = folder / "runs" / run_id
                d.mkdir(parents=True)
                pq.write_table(result.requests, d / "requests.parquet")
                (d / "summary.json").write_text(json.dumps(result.summary))
        rows.append(row)
    keys = list(dict.fromkeys(k for r in rows for k in r))
    pq.write_table(pa.table({k: [r.get(k) for r in rows] for k in keys}), folder / "runs.parquet")
    if write_meta:
        meta = {"axes": names, "base": base, "mode": "product", "num_runs": len(rows)}
        (folder / "sweep.json").write_text(json.dumps(meta))
    return folder


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    """gpu x session_rate x prefix_cache x seed on a chat workload (16 runs, one failed)."""
    return make_sweep(
        tmp_path_factory.mktemp("sweep"),
        {
            "gpu": ["A10", "H100-SXM"],
            "session_rate": [0.5, 4.0],
            "prefix_cache": ["block", "off"],
            "seed": [1, 2],
        },
        {"workload": "chat", "num_sessions": 8},
        fail=(3,),
        run_dirs=True,
    )


@pytest.fixture(scope="module")
def report_html(sweep: Path, tmp_path_factory) -> Path:
    return write_report([sweep], tmp_path_factory.mktemp("out") / "report.html", title="Test sweep")


def table_rows(html_text: str, table_class: str) -> list[str]:
    m = re.search(rf"<table class='{table_class}[^']*'>.*?<tbody>(.*?)</tbody>", html_text, re.S)
    assert m, f"no table {table_class}"
    return re.findall(r"<tr[ >].*?</tr>", m.group(1), re.S)


def test_report_is_self_contained(report_html: Path):
    text = report_html.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    assert "http://" not in text and "https://" not in text
    assert 'src="//' not in text and "src='//" not in text
    assert not re.search(r"<script[^>]*\bsrc=", text), "external script"
    assert not re.search(r"<link\b", text), "external stylesheet or font"
    assert "@import" not in text and "url(" not in text
    srcs = re.findall(r"\bsrc=['\"]([^'\"]*)", text)
    assert srcs and all(s.startswith("data:image/svg+xml;base64,") for s in srcs)


def test_report_content(report_html: Path, sweep: Path):
    text = report_html.read_text(encoding="utf-8")
    assert "<title>Test sweep</title>" in text
    # Header: counts, axes and their values.
    assert "<b>16</b> runs" in text and "<b class='ok'>15</b> ok" in text
    for axis in ("gpu", "session_rate", "prefix_cache", "seed"):
        assert f"<code>{axis}</code>" in text
    assert "load (x of the curves)" in text and "seed (averaged)" in text
    # Table: one row per run, failed last with its error across the metric columns.
    rows = table_rows(text, "runs")
    assert len(rows) == 16
    assert "class='failed'" in rows[-1] and "0003" in rows[-1] and "model does not fit" in rows[-1]
    assert all("class='ok'" in r for r in rows[:-1])
    for header in ("TTFT p99 (s)", "cost (US$/<wbr>Mtok)", "energy (Wh/<wbr>Mtok)", "CO₂ (g/<wbr>Mtok)"):
        assert header in text
    # Figures: latency, throughput, energy, cache, Pareto and TTFT CDFs are all there.
    for sid in ("latency", "throughput", "energy", "cache", "pareto", "ttft-cdf"):
        section = re.search(rf"<section id='{sid}'>(.*?)</section>", text, re.S)
        assert section and "<img class='fig'" in section.group(1), sid
    assert "Omitted" not in text


def test_figures_are_valid_svg_with_expected_panels(report_html: Path):
    import base64
    import xml.etree.ElementTree as ET

    text = report_html.read_text(encoding="utf-8")
    svgs = [base64.b64decode(s).decode() for s in re.findall(r"base64,([A-Za-z0-9+/=]+)", text)]
    assert len(svgs) == 6
    for svg in svgs:
        root = ET.fromstring(svg)
        assert root.tag.endswith("svg")
        assert "<dc:date>" not in svg  # no timestamp
    axes_per_figure = [len(re.findall(r'<g id="axes_\d+">', s)) for s in svgs]
    assert axes_per_figure[0] == 4  # TTFT p50, TTFT p99, TPOT p99, E2E p99


def test_pareto_table_matches_the_pure_function(report_html: Path, sweep: Path):
    runs = load_runs([sweep])
    ok = [r for r in runs.ok_rows]
    pts = np.array([[r["usd_per_mtok"], r["ttft_p99_s"], r["gco2_per_mtok"]] for r in ok])
    expected = {r["run_id"] for r, m in zip(ok, pareto_front(pts), strict=True) if m}
    rows = table_rows(report_html.read_text(encoding="utf-8"), "front")
    shown = {re.sub(r"<wbr>", "", re.findall(r"<td class='id'>(.*?)</td>", r)[0]) for r in rows}
    assert shown == expected and len(rows) == len(expected)
    assert "0003" not in shown  # the failed run is never on the front


def test_layout_picks_load_and_configuration_axes(sweep: Path):
    layout = choose_layout(load_runs([sweep]))
    assert layout.load_axis == "session_rate"
    assert layout.config_axes == ("gpu", "prefix_cache")
    assert layout.seeds_vary


def test_output_is_deterministic(sweep: Path, report_html: Path, tmp_path: Path):
    again = write_report([sweep], tmp_path / "again.html", title="Test sweep")
    assert again.read_bytes() == report_html.read_bytes()
    assert [p.name for p in tmp_path.iterdir()] == ["again.html"]  # no temporary file left behind


def test_axes_are_inferred_without_sweep_json(tmp_path: Path):
    folder = make_sweep(
        tmp_path / "s",
        {"rate": [1.0, 8.0], "gpu": ["A10", "L4"]},
        {"workload": "poisson", "num_requests": 30},
        write_meta=False,
    )
    runs = load_runs([folder])
    assert runs.axes == ["rate", "gpu"]  # column order; gpu_max_w (a metric) is not an axis
    layout = choose_layout(runs)
    assert layout.load_axis == "rate" and layout.config_axes == ("gpu",) and not layout.seeds_vary
    text = build_report([folder])
    # Poisson prompts share no prefix: the cache section is a note, not a crash.
    assert "Omitted: the cache hit ratios are the same in every run" in text
    assert "runs/&lt;run_id&gt;/requests.parquet) are not there" in text


def test_without_a_load_axis_x_is_measured_requests_per_s(tmp_path: Path):
    folder = make_sweep(
        tmp_path / "s", {"gpu": ["A10", "L4", "H100-SXM"]}, {"workload": "poisson", "num_requests": 30}
    )
    runs = load_runs([folder])
    assert choose_layout(runs).load_axis is None
    text = build_report([folder])
    assert "x = measured requests/s" in text
    assert text.count("<img class='fig'") == 4  # latency, throughput, energy, Pareto


def test_sections_without_data_are_notes(tmp_path: Path):
    folder = bare_results(tmp_path / "bare")
    text = build_report([folder])
    assert len(table_rows(text, "runs")) == 3
    assert text.count("<img class='fig'") == 1  # only TTFT p99 against rate
    for sid in ("throughput", "energy", "cache", "pareto", "ttft-cdf"):
        assert re.search(rf"<section id='{sid}'><h2>[^<]*</h2><p class='note'>Omitted", text), sid


def test_all_runs_failed_still_renders(tmp_path: Path):
    folder = tmp_path / "failed"
    folder.mkdir()
    table = pa.table({"run_id": ["x"], "status": ["failed"], "error": ["ValueError: nope"], "gpu": ["A10"]})
    pq.write_table(table, folder / "runs.parquet")
    text = build_report([folder])
    assert "ValueError: nope" in text and "<img" not in text


def test_run_folders_make_the_same_table(tmp_path: Path):
    folders = []
    for gpu in ("A10", "L4"):
        scenario = build_scenario(
            None,
            {
                "workload": "poisson",
                "num_requests": 30,
                "rate": 2.0,
                "gpu": gpu,
                "opendc": False,
                "output_folder": str(tmp_path / f"run-{gpu}"),
            },
        )
        folders.append(run_to_folder(scenario)[0])
    runs = load_runs(folders)
    assert runs.axes == ["gpu"]
    assert [r["run_id"] for r in runs.rows] == ["run-A10", "run-L4"]
    out = write_report(folders, tmp_path / "two.html")
    text = out.read_text(encoding="utf-8")
    assert len(table_rows(text, "runs")) == 2
    assert (
        "TTFT distributions" in text and "<section id='ttft-cdf'><h2>TTFT distributions</h2><figure>" in text
    )
    single = write_report([folders[0]])
    assert single == folders[0] / "report.html" and single.is_file()


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("no headless Chromium on this machine (apt-get install chromium)")


def chromium_args(tmp_path: Path) -> list[str]:
    return [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]


def test_renders_in_headless_chromium(report_html: Path, sweep: Path, tmp_path: Path):
    exe = chromium()
    url = report_html.resolve().as_uri()
    dom = subprocess.run(
        [exe, *chromium_args(tmp_path), "--dump-dom", url], capture_output=True, text=True, timeout=120
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    html_dom = dom.stdout
    # The parsed DOM holds the table rows and the figures (the script ran and left them there).
    assert len(re.findall(r"<tr class=\"(?:ok|failed)\">", html_dom)) == 16
    assert len(re.findall(r"<img class=\"fig\"", html_dom)) == 6
    assert "Pareto front" in html_dom
    assert 'data-sortable="ready"' in html_dom  # the inline script ran without an error

    # Clicking the "TTFT p99 (s)" header sorts the ok runs by it; the failed run stays last.
    text = report_html.read_text(encoding="utf-8")
    headers = re.findall(r"<th[^>]*>(.*?)</th>", re.search(r"<table class='runs.*?</thead>", text, re.S)[0])
    col = headers.index("TTFT p99 (s)")
    clicked = tmp_path / "clicked.html"
    click = f"<script>document.querySelectorAll('table.runs th')[{col}].click();</script></body>"
    clicked.write_text(text.replace("</body>", click), encoding="utf-8")
    dom = subprocess.run(
        [exe, *chromium_args(tmp_path), "--dump-dom", clicked.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    body = re.search(r"<table class=\"runs sortable\">.*?<tbody>(.*?)</tbody>", dom.stdout, re.S)[1]
    rows = re.findall(r"<tr class=\"(ok|failed)\">(.*?)</tr>", body, re.S)
    assert [cls for cls, _ in rows][-1] == "failed"
    tds = [re.findall(r"<td([^>]*)>", cells) for cls, cells in rows if cls == "ok"]
    values = [float(re.search(r"data-v=\"([^\"]+)\"", td[col])[1]) for td in tds]
    assert values == sorted(values) and len(values) == 15
    before = [r["ttft_p99_s"] for r in load_runs([sweep]).ok_rows]
    assert before != sorted(before)  # the click did the sorting

    png = tmp_path / "shot.png"
    shot = subprocess.run(
        [exe, *chromium_args(tmp_path), f"--screenshot={png}", "--window-size=1400,3000", url],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shot.returncode == 0 and png.is_file(), shot.stderr[-2000:]
    from matplotlib.image import imread

    pixels = imread(png)
    assert pixels.shape[0] == 3000 and pixels.shape[1] == 1400
    # Not a blank page: many distinct shades (text, table lines, coloured curves).
    rgb = (pixels[..., :3] * 255).astype(np.uint8).reshape(-1, 3)
    assert len(np.unique(rgb[::7], axis=0)) > 200
