"""``kavier report`` on the command line: writes the page, reports errors in one line."""

from __future__ import annotations

from pathlib import Path

from tests.cli_helper import kavier
from tests.report.helpers import bare_results


def test_cli_writes_the_report_and_reports_errors_in_one_line(tmp_path: Path):
    folder = bare_results(tmp_path / "bare")
    out = tmp_path / "cli.html"
    res = kavier("report", folder, "--out", out, "--title", "CLI title")
    assert res.returncode == 0, res.stderr
    assert str(out) in res.stdout
    assert "<title>CLI title</title>" in out.read_text(encoding="utf-8")
    res = kavier("report", folder)  # default: RESULTS/report.html
    assert res.returncode == 0, res.stderr
    assert (folder / "report.html").is_file()

    res = kavier("report", tmp_path / "missing")
    assert res.returncode == 2
    assert "does not exist" in res.stderr and "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
