"""``kavier.report.runs``: unreadable inputs are one-line errors and no page is written."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from kavier.errors import KavierError
from kavier.report.html import write_report
from kavier.report.runs import ReportError


@pytest.mark.parametrize(
    "setup, message",
    [
        (lambda p: None, "does not exist"),
        (lambda p: p.mkdir(), "has neither runs.parquet nor summary.json"),
        (lambda p: (p.mkdir(), (p / "runs.parquet").write_bytes(b"not parquet")), "cannot read"),
        (
            lambda p: (
                p.mkdir(),
                pq.write_table(pa.table({"run_id": pa.array([], pa.string())}), p / "runs.parquet"),
            ),
            "holds no runs",
        ),
    ],
)
def test_bad_input_is_a_one_line_error(tmp_path: Path, setup, message):
    path = tmp_path / "results"
    setup(path)
    with pytest.raises(ReportError, match=message) as info:
        write_report([path], tmp_path / "r.html")
    assert isinstance(info.value, KavierError) and "\n" not in str(info.value)
    assert not (tmp_path / "r.html").exists()
