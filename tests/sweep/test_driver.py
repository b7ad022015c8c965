"""``kavier.sweep.driver``: resume, failures recorded while others finish, Ctrl-C."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from kavier.sweep import SweepInterrupted, prepare, run_sweep
from kavier.sweep.collect import comparable
from tests.cli_helper import kavier
from tests.sweep.helpers import write


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


class _RayLikeRunner:
    """Runs every job, but is interrupted before it hands over the last outcome (as a Ray task
    that finishes while the driver is being stopped)."""

    def __init__(self, *args: object) -> None:
        pass

    def run(self, jobs):
        from kavier.sweep.runners import execute_run

        jobs = list(jobs)
        outcomes = [execute_run(job) for job in jobs[:3]]
        yield from outcomes[:2]
        raise KeyboardInterrupt

    def abort(self) -> None:
        pass


def test_an_interrupted_sweep_marks_runs_parquet_incomplete_and_counts_from_disk(tmp_path, monkeypatch):
    from kavier.io.sweep_marks import sweep_progress
    from kavier.report.html import render_html
    from kavier.report.runs import load_runs
    from kavier.sweep import driver

    monkeypatch.setattr(driver, "make_runner", _RayLikeRunner)
    path = write(tmp_path, "[axes]\nseed = [1, 2, 3, 4, 5, 6]\n")
    out = tmp_path / "out"
    with pytest.raises(SweepInterrupted) as info:
        run_sweep(path, out, workers=2)
    assert len(info.value.report.ok) == 2  # the outcomes the driver saw ...
    assert driver.finished_runs(out / "runs.parquet") == 3  # ... one fewer than the runs kept
    assert sweep_progress(pq.read_schema(out / "runs.parquet")) == (False, 6)
    runs = load_runs([out])
    assert runs.planned_runs == 6
    assert "3 of 6</b> runs (interrupted sweep)" in render_html(runs)
    monkeypatch.undo()
    run_sweep(path, out, workers=1)
    assert sweep_progress(pq.read_schema(out / "runs.parquet")) == (True, 6)
    assert load_runs([out]).planned_runs is None
