"""kavier sweep: axes expansion, validation before running, resume, failures, runs.parquet, backends."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from cli_helper import kavier
from kavier.errors import ScenarioError
from kavier.sweep import SweepInterrupted, load_sweep, plan_runs, prepare, run_sweep
from kavier.sweep.collect import FIXED_COLUMNS, comparable, is_wall_clock

# A tiny scenario: 30 Poisson requests on one A10, no OpenDC files (fast to run and write).
BASE = """
llm = "Llama-3-8B"
gpu = "A10"
workload = "poisson"
num_requests = 30
rate = 4.0
input_tokens = "lognormal:mean=600,cv=0.5"
output_tokens = "lognormal:mean=60,cv=0.5"
opendc = false
"""


def write(tmp_path: Path, body: str, name: str = "sweep.toml") -> Path:
    path = tmp_path / name
    path.write_text(BASE + body, encoding="utf-8")
    return path


# --- sweep files and axes -------------------------------------------------------------------


def test_product_is_cartesian_first_axis_slowest_with_stable_ids(tmp_path):
    path = write(
        tmp_path,
        """
[axes]
gpu = ["A100-80GB", "H100-SXM"]
replicas = [2, 4, 8]
prefix_cache = ["off", "block"]
seed = [1, 2]
""",
    )
    spec = load_sweep(path)
    runs = plan_runs(spec, tmp_path / "runs")
    assert len(runs) == 2 * 3 * 2 * 2
    assert spec.axis_names == ["gpu", "replicas", "prefix_cache", "seed"]
    assert runs[0].params == {"gpu": "A100-80GB", "replicas": 2, "prefix_cache": "off", "seed": 1}
    assert runs[1].params["seed"] == 2 and runs[2].params["prefix_cache"] == "block"
    assert runs[-1].params == {"gpu": "H100-SXM", "replicas": 8, "prefix_cache": "block", "seed": 2}
    assert runs[7].run_id == "0007-gpu=A100-80GB_replicas=4_prefix_cache=block_seed=2"
    combos = {tuple(r.params.values()) for r in runs}
    assert len(combos) == len(runs)
    # Each run's scenario holds base + its axis values, and its folder under runs/.
    assert runs[7].scenario.replicas == 4 and runs[7].scenario.workload == "poisson"
    assert Path(runs[7].scenario.output_folder) == tmp_path / "runs" / runs[7].run_id
    again = plan_runs(load_sweep(path), tmp_path / "runs")
    assert [r.run_id for r in again] == [r.run_id for r in runs]


def test_zip_mode_explicit_runs_base_table_and_yaml(tmp_path):
    yaml_path = tmp_path / "sweep.yaml"
    yaml_path.write_text(
        "base:\n  workload: poisson\n  num_requests: 20\nmode: zip\n"
        "axes:\n  gpu: [A10, H100-SXM]\n  seed: [3, 4]\n"
        "runs:\n  - {gpu: L4, router: round_robin}\n",
        encoding="utf-8",
    )
    spec = load_sweep(yaml_path)
    runs = plan_runs(spec)
    assert [r.params for r in runs] == [
        {"gpu": "A10", "seed": 3},
        {"gpu": "H100-SXM", "seed": 4},
        {"gpu": "L4", "router": "round_robin"},
    ]
    assert spec.axis_names == ["gpu", "seed", "router"]
    assert all(r.scenario.num_requests == 20 for r in runs)
    assert runs[2].scenario.seed == 0  # base value where an explicit run sets no seed


def test_relative_paths_and_base_file_resolve_against_the_sweep_file(tmp_path):
    folder = tmp_path / "exp"
    (folder / "traces").mkdir(parents=True)
    trace = folder / "traces" / "t.csv"
    trace.write_text(
        "num_input_tokens,num_output_tokens,ts\n"
        + "".join(f"{100 + i},{10 + i},{i * 0.5}\n" for i in range(10))
    )
    (folder / "scenario.toml").write_text('llm = "Llama-3-8B"\ngpu = "A10"\nopendc = false\n')
    sweep = folder / "sweep.toml"
    sweep.write_text('base = "scenario.toml"\ntrace = "traces/t.csv"\n[axes]\nreplicas = [1, 2]\n')
    other_cwd = tmp_path / "elsewhere"
    other_cwd.mkdir()
    res = kavier("sweep", sweep, "--out", "res", "-q", "--workers", "1", cwd=other_cwd)
    assert res.returncode == 0, res.stderr
    stored = json.loads((other_cwd / "res" / "runs" / "0001-replicas=2" / "scenario.json").read_text())
    assert Path(stored["trace"]) == trace and stored["gpu"] == "A10" and stored["replicas"] == 2
    manifest = json.loads((other_cwd / "res" / "sweep.json").read_text())
    assert manifest["axes"] == ["replicas"] and manifest["mode"] == "product" and manifest["num_runs"] == 2
    assert manifest["base"]["trace"] == str(trace) and manifest["base"]["llm"] == "Llama-3-8B"


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ("[axes]\nreplicaz = [1, 2]\n", "axis 'replicaz' is not a scenario key (did you mean replicas"),
        ("[axes]\nreplicas = [1, 0]\n", "axis replicas = 0 (run 0001-replicas=0)"),
        ('[axes]\ngpu = ["A10", "H100-SXMX"]\n', "axis gpu = 'H100-SXMX': unknown GPU"),
        ('[axes]\nregion = ["NL", "XX"]\n', "axis region = 'XX': unknown grid region"),
        ('mode = "zip"\n[axes]\ngpu = ["A10", "L4"]\nseed = [1]\n', "zip' needs axes of equal length"),
        ("[axes]\nseed = 3\n", "axis seed = 3: give a list"),
        ('[axes]\noutput_folder = ["a"]\n', "output_folder is set by the sweep"),
    ],
)
def test_every_run_is_validated_before_anything_runs(tmp_path, body, needle):
    path = write(tmp_path, body)
    with pytest.raises(ScenarioError) as info:
        run_sweep(path, tmp_path / "out", workers=1)
    message = str(info.value)
    assert needle in message and str(path) in message and "\n" not in message
    assert not (tmp_path / "out").exists()  # nothing was written


def test_cli_validation_error_is_one_line_without_traceback(tmp_path):
    path = write(tmp_path, "[axes]\nrate = [1, 'fast']\n")
    res = kavier("sweep", path, "--out", tmp_path / "out")
    assert res.returncode == 2
    assert "axis rate = 'fast'" in res.stderr and "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


# --- running, results and resume ------------------------------------------------------------


def test_runs_parquet_has_the_axes_and_every_summary_value(tmp_path):
    path = write(tmp_path, '[axes]\ngpu = ["A10", "L4"]\nreplicas = [1, 2]\n')
    report = run_sweep(path, tmp_path / "out", workers=1)
    assert len(report.ok) == 4 and not report.failed and report.skipped == 0
    table = pq.read_table(tmp_path / "out" / "runs.parquet")
    assert table.column_names[:5] == [*FIXED_COLUMNS, "gpu", "replicas"]
    assert str(table.schema.field("replicas").type) == "int64"
    rows = table.to_pylist()
    assert [r["run_id"] for r in rows] == [
        "0000-gpu=A10_replicas=1",
        "0001-gpu=A10_replicas=2",
        "0002-gpu=L4_replicas=1",
        "0003-gpu=L4_replicas=2",
    ]
    for row in rows:
        folder = tmp_path / "out" / "runs" / row["run_id"]
        summary = json.loads((folder / "summary.json").read_text())
        assert (folder / "requests.parquet").is_file() and (folder / "timeseries.parquet").is_file()
        assert row["status"] == "ok" and row["error"] is None
        for key, value in summary.items():
            column = f"summary_{key}" if key in ("gpu", "replicas") else key
            assert row[column] == value, key
        assert row["summary_gpu"] == row["gpu"]
        assert row["num_replicas"] == row["replicas"]
    # Integer metrics stay integers, floats stay floats.
    assert str(table.schema.field("num_requests").type) == "int64"
    assert str(table.schema.field("ttft_p99_s").type) == "double"


def test_rerun_skips_finished_runs_and_redoes_only_what_is_missing_or_changed(tmp_path):
    path = write(tmp_path, "[axes]\nseed = [1, 2, 3]\n")
    out = tmp_path / "out"
    run_sweep(path, out, workers=1)
    summaries = sorted((out / "runs").glob("*/summary.json"))
    mtimes = {p: p.stat().st_mtime_ns for p in summaries}
    before = pq.read_table(out / "runs.parquet")

    again = run_sweep(path, out, workers=1)
    assert again.skipped == 3 and again.ok == [] and again.failed == {}
    assert {p: p.stat().st_mtime_ns for p in summaries} == mtimes
    assert pq.read_table(out / "runs.parquet").equals(before)

    # A lost run (crash before its rename) is redone, the others are kept.
    import shutil

    shutil.rmtree(out / "runs" / "0001-seed=2")
    third = run_sweep(path, out, workers=1)
    assert third.skipped == 2 and third.ok == ["0001-seed=2"]
    assert summaries[0].stat().st_mtime_ns == mtimes[summaries[0]]
    assert comparable(pq.read_table(out / "runs.parquet")).equals(comparable(before))

    # --force reruns everything; a changed base reruns everything it changed.
    assert len(run_sweep(path, out, workers=1, force=True).ok) == 3
    path.write_text(path.read_text().replace("num_requests = 30", "num_requests = 31"))
    changed = run_sweep(path, out, workers=1)
    assert changed.skipped == 0 and len(changed.ok) == 3
    assert pq.read_table(out / "runs.parquet").column("num_requests").to_pylist() == [31, 31, 31]


def test_a_failing_run_is_recorded_while_the_others_finish(tmp_path):
    # Llama-3-70B does not fit on one A10: that run fails at run time, the others go on.
    path = write(tmp_path, '[axes]\nllm = ["Llama-3-8B", "Llama-3-70B"]\nseed = [1, 2]\n')
    out = tmp_path / "out"
    report = run_sweep(path, out, workers=2)
    assert sorted(report.ok) == ["0000-llm=Llama-3-8B_seed=1", "0001-llm=Llama-3-8B_seed=2"]
    assert sorted(report.failed) == ["0002-llm=Llama-3-70B_seed=1", "0003-llm=Llama-3-70B_seed=2"]
    record = json.loads((out / "runs" / "0002-llm=Llama-3-70B_seed=1.failed.json").read_text())
    assert "needs" in record["error"] and "GiB" in record["error"] and "\n" not in record["error"]
    assert record["params"] == {"llm": "Llama-3-70B", "seed": 1}
    assert not (out / "runs" / "0002-llm=Llama-3-70B_seed=1").exists()
    rows = pq.read_table(out / "runs.parquet").to_pylist()
    assert [r["status"] for r in rows] == ["ok", "ok", "failed", "failed"]
    assert rows[2]["error"] == record["error"] and rows[2]["ttft_p99_s"] is None
    assert rows[2]["llm"] == "Llama-3-70B" and rows[0]["ttft_p99_s"] > 0

    # Through the CLI: exit code 1, one line per failed run, runs.parquet still written;
    # finished runs are skipped and the failed ones retried.
    (out / "runs.parquet").unlink()
    res = kavier("sweep", path, "--out", out, "--workers", "1")
    assert res.returncode == 1
    lines = [line for line in res.stderr.splitlines() if line.startswith("failed: ")]
    assert len(lines) == 2 and all("Llama-3-70B" in line for line in lines)
    assert "Traceback" not in res.stderr
    assert "skipped (finished before)" in res.stdout and (out / "runs.parquet").is_file()


def test_results_do_not_depend_on_the_number_of_workers(tmp_path):
    body = (
        '[axes]\ngpu = ["A10", "L4"]\nprefix_cache = ["off", "block"]\nrouter = ["random", "round_robin"]\n'
    )
    body += "replicas = [2]\n"
    path = write(tmp_path, body)
    one = run_sweep(path, tmp_path / "one", workers=1)  # in this process
    two = run_sweep(path, tmp_path / "two", workers=2)  # a pool of two spawned processes
    assert len(one.ok) == len(two.ok) == 8
    a = pq.read_table(tmp_path / "one" / "runs.parquet")
    b = pq.read_table(tmp_path / "two" / "runs.parquet")
    assert any(is_wall_clock(c) for c in a.column_names)
    assert comparable(a).equals(comparable(b))
    assert a.num_rows == 8 and a.column("status").to_pylist() == ["ok"] * 8


def test_ctrl_c_keeps_finished_runs_and_resume_completes(tmp_path):
    path = write(tmp_path, "[axes]\nseed = [1, 2, 3, 4, 5, 6]\n")
    out = tmp_path / "out"
    seen = []

    def interrupt_after_two(outcome):
        seen.append(outcome.run_id)
        if len(seen) == 2:
            raise KeyboardInterrupt

    with pytest.raises(SweepInterrupted) as info:
        run_sweep(path, out, workers=2, on_outcome=interrupt_after_two)
    assert info.value.report.interrupted and len(info.value.report.ok) == 2
    assert not [p for p in (out / "runs").iterdir() if p.name.startswith(".")]  # no temp folders
    partial = pq.read_table(out / "runs.parquet")
    assert 2 <= partial.num_rows < 6 and set(partial.column("status").to_pylist()) == {"ok"}
    plan = prepare(path, out)
    assert len(plan.finished) >= 2
    rest = run_sweep(path, out, workers=2)
    assert rest.skipped == len(plan.finished) and rest.skipped + len(rest.ok) == 6
    assert pq.read_table(out / "runs.parquet").num_rows == 6


def test_dry_run_lists_runs_and_their_state(tmp_path):
    path = write(tmp_path, "[axes]\nseed = [1, 2]\n")
    run_sweep(path, tmp_path / "out", workers=1)
    (tmp_path / "out" / "runs" / "0001-seed=2" / "summary.json").unlink()
    res = kavier("sweep", path, "-o", tmp_path / "out", "--dry-run")
    assert res.returncode == 0, res.stderr
    assert "0000-seed=1" in res.stdout and "done" in res.stdout and "todo" in res.stdout
    assert "1 finished, 1 to run" in res.stdout


def test_refuses_an_output_folder_that_is_not_a_sweep(tmp_path):
    path = write(tmp_path, "[axes]\nseed = [1]\n")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "thesis.pdf").write_text("x")
    res = kavier("sweep", path, "--out", tmp_path / "busy")
    assert res.returncode == 2 and "is not a sweep results folder" in res.stderr


def test_ray_backend_gives_identical_results(tmp_path):
    pytest.importorskip("ray")
    path = write(tmp_path, '[axes]\ngpu = ["A10", "L4"]\nseed = [1, 2]\n')
    local = run_sweep(path, tmp_path / "local", workers=2)
    ray_report = run_sweep(path, tmp_path / "ray", workers=2, backend="ray")
    assert len(local.ok) == len(ray_report.ok) == 4
    a = pq.read_table(tmp_path / "local" / "runs.parquet")
    b = pq.read_table(tmp_path / "ray" / "runs.parquet")
    assert comparable(a).equals(comparable(b))


def test_ray_backend_without_ray_is_a_one_line_error(tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray" or name.startswith("ray."):
            raise ImportError("no ray")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    path = write(tmp_path, "[axes]\nseed = [1]\n")
    from kavier.errors import KavierError

    with pytest.raises(KavierError, match=r"pip install -e '\.\[ray\]'"):
        run_sweep(path, tmp_path / "out", backend="ray")


def test_one_sweep_process_per_results_folder(tmp_path):
    from kavier.errors import KavierError
    from kavier.sweep.store import SweepLayout

    path = write(tmp_path, "[axes]\nseed = [1]\n")
    layout = SweepLayout(tmp_path / "out")
    layout.prepare()
    with layout.locked(), pytest.raises(KavierError, match="another kavier sweep is writing"):
        run_sweep(path, tmp_path / "out", workers=1)
    assert len(run_sweep(path, tmp_path / "out", workers=1).ok) == 1  # the lock is released
