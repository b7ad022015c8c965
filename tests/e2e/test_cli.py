"""End to end through the command line: flags in both spellings, scenario files with overrides,
one-line errors, and every command's output."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.cli_helper import kavier, write_tiny_llama_config


@pytest.fixture
def trace(tmp_path):
    path = tmp_path / "t.csv"
    rows = ["session_id,turn_id,ts,num_input_tokens,num_output_tokens"]
    for i in range(30):
        rows.append(f"{i % 5},{i // 5},{i * 3.0},{1200 + 100 * (i // 5)},{20 + i}")
    path.write_text("\n".join(rows) + "\n")
    return path


def test_default_run_prints_a_summary_and_writes_the_contract(tmp_path):
    res = kavier("run", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "TTFT" in res.stdout and "Llama-3-8B / A10" in res.stdout
    out = tmp_path / "kavier_output"
    for name in (
        "requests.parquet",
        "timeseries.parquet",
        "summary.json",
        "scenario.json",
        "opendc/tasks.parquet",
        "opendc/fragments.parquet",
    ):
        assert (out / name).is_file(), name
    summary = json.loads((out / "summary.json").read_text())
    for key in (
        "num_requests",
        "simulated_time_s",
        "gpu_busy_s",
        "total_prefill_s",
        "total_decode_s",
        "input_tokens",
        "output_tokens",
        "throughput_tokens_per_s",
        "ttft_mean_s",
        "ttft_p50_s",
        "ttft_p99_s",
        "tpot_mean_s",
        "e2e_mean_s",
        "e2e_p99_s",
        "queue_mean_s",
        "prefix_cache_hit_ratio",
        "prefix_cache_evictions",
        "wall_time_s",
    ):
        assert key in summary, key
    assert not list(tmp_path.glob(".kavier_output.partial-*"))


@pytest.mark.parametrize("style", ["dash", "underscore"])
def test_thesis_flags_in_both_spellings(tmp_path, trace, style):
    def flag(name):
        return "--" + (name if style == "dash" else name.replace("-", "_"))

    out = tmp_path / "out"
    res = kavier(
        "run",
        "--trace",
        trace,
        "--llm",
        "Llama-3-8B",
        "--gpu",
        "A10",
        flag("output-folder"),
        out,
        flag("kv-cache"),
        "off",
        flag("prefix-len"),
        1024,
        flag("export-rate"),
        0.5,
        flag("flush-size"),
        7,
        "--preset",
        "thesis",
        "-q",
    )
    assert res.returncode == 0, res.stderr
    scenario = json.loads((out / "scenario.json").read_text())
    assert scenario["kv_cache"] is False
    assert scenario["export_rate"] == 0.5 and scenario["flush_size"] == 7
    times = pq.read_table(out / "timeseries.parquet").column("time_s").to_numpy()
    assert times[1] - times[0] == pytest.approx(0.5)
    reqs = pq.read_table(out / "requests.parquet")
    assert reqs.num_rows == 30


def test_scenario_file_with_flag_override(tmp_path, trace):
    scen = tmp_path / "s.toml"
    scen.write_text(f'preset = "thesis"\ntrace = "{trace.name}"\ngpus = 2\nprefix_cache_size = 3\nseed = 4\n')
    res = kavier("run", scen, "--gpus", 3, "-o", tmp_path / "o", "-q")
    assert res.returncode == 0, res.stderr
    resolved = json.loads((tmp_path / "o" / "scenario.json").read_text())
    assert resolved["gpus"] == 3 and resolved["prefix_cache_size"] == 3 and resolved["seed"] == 4
    assert Path(resolved["trace"]).resolve() == trace.resolve()
    yaml_file = tmp_path / "s.yaml"
    yaml_file.write_text(f"trace: {trace}\ngpus: 2\n")
    assert kavier("run", yaml_file, "-o", tmp_path / "y", "-q").returncode == 0


def test_library_lists_models_and_gpus():
    res = kavier("library")
    assert res.returncode == 0, res.stderr
    for name in ("Llama-3-8B", "Mixtral-8x7B", "A10", "H100-SXM", "MI300X"):
        assert name in res.stdout


def test_library_regions_show_source_and_year():
    res = kavier("library", "--kind", "regions")
    assert res.returncode == 0, res.stderr
    header = next(line for line in res.stdout.splitlines() if "g_per_kwh" in line)
    assert all(col in header for col in ("year", "source", "licence"))
    rows = {line.split()[1]: line for line in res.stdout.splitlines() if line.startswith("│")}
    assert len(rows) == 39
    for code, cells in (("US-WA", ("123", "2023", "Electricity Maps", "ODbL-1.0")),
                        ("NL", ("268", "2023", "Ember via Our World in Data", "CC-BY-4.0"))):  # fmt: skip
        assert all(cell in rows[code] for cell in cells), rows[code]
    assert "source_data" in res.stdout  # the footer points at the per-figure provenance


def test_validate_prints_both_mapes():
    res = kavier("validate", "thesis-a10")
    assert res.returncode == 0, res.stderr
    assert "MAPE prefill: 7.50 %" in res.stdout
    assert "MAPE decode: 4.00 %" in res.stdout


def _one_line_error(res):
    assert res.returncode != 0
    assert "Traceback" not in res.stderr
    lines = [ln for ln in res.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, res.stderr
    return lines[0]


def test_bad_inputs_give_one_line_errors(tmp_path):
    missing = tmp_path / "missing.csv"
    assert "missing.csv" in _one_line_error(kavier("run", "--trace", missing, "-o", tmp_path / "o"))
    cols = tmp_path / "cols.csv"
    cols.write_text("num_input_tokens,foo\n1,2\n")
    assert "cols.csv" in _one_line_error(kavier("run", "--trace", cols, "-o", tmp_path / "o"))
    neg = tmp_path / "neg.csv"
    neg.write_text("num_input_tokens,num_output_tokens\n5,3\n7,-2\n")
    line = _one_line_error(kavier("run", "--trace", neg, "-o", tmp_path / "o"))
    assert "neg.csv" in line and "row 2" in line
    nan = tmp_path / "nan.csv"
    nan.write_text("num_input_tokens,num_output_tokens\n5,3\nNaN,2\n")
    assert "row 2" in _one_line_error(kavier("run", "--trace", nan, "-o", tmp_path / "o"))
    binary = tmp_path / "bin.parquet"
    binary.write_bytes(b"\x00\x01garbage")
    assert "bin.parquet" in _one_line_error(kavier("run", "--trace", binary, "-o", tmp_path / "o"))
    assert "Llama-9B" in _one_line_error(kavier("run", "--llm", "Llama-9B", "-o", tmp_path / "o"))
    assert "Z100" in _one_line_error(kavier("run", "--gpu", "Z100", "-o", tmp_path / "o"))
    line = _one_line_error(kavier("run", "--llm", "Llama-3.1-70B", "--gpu", "A10", "-o", tmp_path / "o"))
    assert "GiB" in line
    assert "duration" in _one_line_error(kavier("run", "--export-rate", "5kg", "-o", tmp_path / "o"))
    assert "--gpus" in _one_line_error(kavier("run", "--gpus", "-1", "-o", tmp_path / "o"))
    bad_toml = tmp_path / "bad.toml"
    bad_toml.write_text("gpus = [\n")
    assert "bad.toml" in _one_line_error(kavier("run", bad_toml, "-o", tmp_path / "o"))
    unknown_key = tmp_path / "k.toml"
    unknown_key.write_text("gpuz = 2\n")
    assert "gpuz" in _one_line_error(kavier("run", unknown_key, "-o", tmp_path / "o"))
    # nothing that looks like an output folder was left behind
    assert not (tmp_path / "o").exists()
    assert not list(tmp_path.glob(".o.partial-*"))


def test_refuses_to_overwrite_a_foreign_folder(tmp_path):
    foreign = tmp_path / "precious"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("x")
    line = _one_line_error(kavier("run", "-o", foreign))
    assert "precious" in line
    assert (foreign / "thesis.tex").read_text() == "x"


def test_hf_config_and_user_catalogue(tmp_path):
    cfg = write_tiny_llama_config(tmp_path / "tiny")
    res = kavier("run", "--llm", cfg, "-o", tmp_path / "o", "-q")
    assert res.returncode == 0, res.stderr
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["kv_bytes_per_token"] == 2 * 4 * 2 * 64 * 2
    catalogue = tmp_path / "mine.toml"
    catalogue.write_text(
        "[gpus.MyGPU]\nfp16_dense_tflops = 100\nmemory_gib = 48\nmemory_bandwidth_gb_per_s = 1000\n"
        "idle_power_w = 50\nmax_power_w = 300\ninterconnect_gb_per_s = 32\nprice_per_hour_usd = 1.5\n"
        'embodied_co2_kg = 100\ncores = 10000\nboost_clock_mhz = 1500\nsource = "test"\n'
    )
    res = kavier("run", "--gpu", "MyGPU", "--catalog", catalogue, "-o", tmp_path / "c", "-q")
    assert res.returncode == 0, res.stderr
    assert json.loads((tmp_path / "c" / "summary.json").read_text())["gpu"] == "MyGPU"


def test_plots_flag_and_plot_command(tmp_path):
    res = kavier("run", "--num-sessions", 10, "-o", tmp_path / "o", "--plots", "-q")
    assert res.returncode == 0, res.stderr
    pngs = sorted(p.name for p in (tmp_path / "o" / "plots").glob("*.png"))
    assert pngs == ["kv_usage.png", "latency_cdf.png", "power_energy_co2.png", "utilization_queue.png"]
    res = kavier("plot", tmp_path / "o", "--out", tmp_path / "p")
    assert res.returncode == 0, res.stderr
    assert len(list((tmp_path / "p").glob("*.png"))) == 4


def test_compare_prints_ratios(tmp_path):
    for name, prefix in (("a", 0), ("b", 1024)):
        assert (
            kavier(
                "run",
                "--preset",
                "thesis",
                "--num-sessions",
                10,
                "--prefix-len",
                prefix,
                "-o",
                tmp_path / name,
                "-q",
            ).returncode
            == 0
        )
    res = kavier("compare", tmp_path / "a", tmp_path / "b")
    assert res.returncode == 0, res.stderr
    assert "R_f" in res.stdout and "R_s" in res.stdout and "b / a" in res.stdout
    assert "summary.json" in _one_line_error(kavier("compare", tmp_path / "a", tmp_path / "nothing"))


def test_energy_flags(tmp_path):
    res = kavier(
        "run",
        "--num-sessions",
        5,
        "-o",
        tmp_path / "o",
        "-q",
        "--power-model",
        "sqrt",
        "--gpu-idle-w",
        20,
        "--gpu-max-w",
        140,
        "--pue",
        1.4,
        "--region",
        "FR",
        "--gpu-price-per-hour",
        2,
        "--energy-price-per-kwh",
        0.3,
        "--token-price-per-mtok",
        "1,3",
        "--gpu-lifetime-years",
        3,
    )
    assert res.returncode == 0, res.stderr
    s = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert s["power_model"] == "sqrt" and s["gpu_idle_w"] == 20 and s["gpu_max_w"] == 140
    assert s["energy_facility_j"] == pytest.approx(1.4 * s["energy_it_j"])
    assert s["gpu_price_per_hour_usd"] == 2 and "revenue_usd" in s
    assert "region" in _one_line_error(kavier("run", "--region", "Atlantis", "-o", tmp_path / "x"))


def test_cli_cache_flags(tmp_path):
    from typer.testing import CliRunner

    from kavier.cli import app

    out = tmp_path / "out"
    res = CliRunner().invoke(
        app,
        [
            "run", "--llm", "Llama-3.1-8B", "--gpu", "H100-SXM", "--num-sessions", "10",
            "--cache-eviction", "arc", "--cache-tiers", "host-dram:8GiB", "--router", "prefix_affinity",
            "--baseline", "--output-folder", str(out), "-q",
        ],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    summary = json.loads((out / "summary.json").read_text())
    assert "saved_energy_j" in summary and "prefix_cache_token_hit_ratio" in summary
    scenario = json.loads((out / "scenario.json").read_text())
    assert scenario["cache_eviction"] == "arc" and scenario["router"] == "prefix_affinity"


def test_an_overloaded_run_exits_0_with_one_warning_line(tmp_path):
    """3x past capacity: the run still succeeds, the table says so and stderr has one line."""
    argv = ["run", "--workload", "poisson", "--rate", "200", "--num-requests", "400", "--input-tokens", "512"]
    argv += ["--output-tokens", "128", "--max-num-seqs", "16", "--llm", "Llama-3.1-8B", "--gpu", "H100-SXM"]
    done = kavier(*argv, "--no-plots", "-o", tmp_path / "over")
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("warning: load overloaded: the waiting queue grows by")
    assert "overloaded (queue +" in done.stdout and "GPU busy fraction" in done.stdout
    assert "GPU utilisation" not in done.stdout and "KV use mean / peak" in done.stdout
    calm = kavier(*argv[:4], "1", *argv[5:], "--no-plots", "-o", tmp_path / "calm")
    assert calm.returncode == 0 and "warning" not in calm.stderr and "stable (queue" in calm.stdout
