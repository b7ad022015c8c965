"""``kavier.sweep.collect``: runs.parquet holds the axes and every summary value."""

from __future__ import annotations

import json

import pyarrow.parquet as pq

from kavier.sweep import run_sweep
from kavier.sweep.collect import FIXED_COLUMNS
from tests.sweep.helpers import write


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
