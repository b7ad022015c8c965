"""``kavier sweep`` on the command line: one-line validation errors, dry runs, foreign folders."""

from __future__ import annotations

from kavier.sweep import run_sweep
from tests.cli_helper import kavier
from tests.sweep.helpers import write


def test_cli_validation_error_is_one_line_without_traceback(tmp_path):
    path = write(tmp_path, "[axes]\nrate = [1, 'fast']\n")
    res = kavier("sweep", path, "--out", tmp_path / "out")
    assert res.returncode == 2
    assert "axis rate = 'fast'" in res.stderr and "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


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
