"""The contract of every trace format in ``kavier.registry.TRACE_FORMATS``.

From ``kavier.workload.formats`` and ``kavier.workload.readers``: ``open_trace`` picks the first
registered format whose required columns a file has, in any container (CSV, parquet, JSONL); the
requests it yields have the file's token counts and arrivals relative to the first request; a
file that lacks a required column gets a one-line ``WorkloadError`` naming it. The tests are
parametrised over the registry's names as read at collection time, so a newly registered format
is checked too.
"""

from __future__ import annotations

import csv
import json
import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import kavier
from kavier.errors import WorkloadError
from kavier.registry import TRACE_FORMATS
from kavier.workload.formats import TraceFormat
from kavier.workload.readers import open_trace
from kavier.workload.source import concat_chunks
from tests.contracts import assert_registered_once

NAMES = TRACE_FORMATS.names()
CONTAINERS = ("csv", "parquet", "jsonl")
T0_DATETIME = datetime(2023, 11, 16, 18, 15, 46)

# One request: input and output tokens, and the gap to the previous arrival in eighths of a second
# (exact in seconds, milliseconds and microseconds alike).
request_rows = st.lists(
    st.tuples(st.integers(0, 4000), st.integers(0, 400), st.integers(0, 80)), min_size=1, max_size=12
)


def columns_of(fmt: TraceFormat, rows: list[tuple[int, int, int]], roles: tuple[str, ...]) -> dict[str, list]:
    """The file's columns for ``roles`` of ``fmt``, as written: {column name: values}."""
    n = len(rows)
    seconds = np.cumsum([gap for *_, gap in rows]) / 8.0
    out: dict[str, list] = {}
    for role in roles:
        name, kind = fmt.columns[role]
        if role == "input":
            values: list[Any] = [r[0] for r in rows]
        elif role == "output":
            values = [r[1] for r in rows]
        elif kind == "s":
            values = [1000.0 + s for s in seconds]
        elif kind == "ms":
            values = [1_700_000_000_000 + int(s * 1000) for s in seconds]
        elif kind == "datetime":
            values = [
                (T0_DATETIME + timedelta(seconds=float(s))).strftime("%Y-%m-%d %H:%M:%S.%f") for s in seconds
            ]
        elif kind in ("id", "int", "count"):
            values = [i % 3 for i in range(n)]
        elif kind == "list":
            values = [[7, 8, i] for i in range(n)]
        else:
            raise AssertionError(f"no values for kind {kind!r} in the contract test; add them")
        out[name] = values
    return out


def write_trace(path: Path, container: str, columns: dict[str, list]) -> Path:
    names = list(columns)
    rows = [dict(zip(names, values, strict=True)) for values in zip(*columns.values(), strict=True)]
    if container == "csv":
        with path.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(names)
            for row in rows:
                writer.writerow([str(v) if isinstance(v, list) else v for v in row.values()])
    elif container == "parquet":
        pq.write_table(pa.table(columns), path)
    else:
        path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def expected_arrivals(rows: list[tuple[int, int, int]]) -> np.ndarray:
    seconds = np.cumsum([gap for *_, gap in rows]) / 8.0
    return seconds - seconds[0]


def check_reads_back(name: str, container: str, rows: list[tuple[int, int, int]]) -> None:
    fmt = TRACE_FORMATS.get(name)
    with tempfile.TemporaryDirectory() as folder:
        path = write_trace(
            Path(folder) / f"trace.{container}", container, columns_of(fmt, rows, fmt.required)
        )
        source = open_trace(path)
        assert source.name == name and source.format is fmt
        got = concat_chunks(source.chunks(5))
    assert len(got) == len(rows)
    assert got.num_input_tokens.tolist() == [r[0] for r in rows]
    assert got.num_output_tokens.tolist() == [r[1] for r in rows]
    assert got.request_id.tolist() == list(range(len(rows)))
    if "arrival" in fmt.required:
        np.testing.assert_allclose(got.arrival_s, expected_arrivals(rows), rtol=0, atol=1e-6)
    else:
        assert np.all(got.arrival_s == 0.0)


@pytest.mark.parametrize("container", CONTAINERS)
@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=12, deadline=None)
@given(rows=request_rows)
def test_a_file_of_the_required_columns_reads_back_as_its_format(name, container, rows):
    check_reads_back(name, container, rows)


@pytest.mark.parametrize("container", CONTAINERS)
@pytest.mark.parametrize("name", NAMES)
def test_a_file_missing_a_required_column_is_a_one_line_error_naming_it(tmp_path, name, container):
    fmt = TRACE_FORMATS.get(name)
    rows = [(100, 10, 0), (200, 20, 4), (300, 0, 9)]
    for role in fmt.required:
        kept = tuple(r for r in fmt.required if r != role)
        if not kept:
            continue  # a file without columns is no trace at all
        path = write_trace(tmp_path / f"no-{role}.{container}", container, columns_of(fmt, rows, kept))
        with pytest.raises(WorkloadError) as info:
            open_trace(path)
        message = str(info.value)
        assert "\n" not in message and str(path) in message
        assert repr(fmt.columns[role][0]) in message or fmt.columns[role][0] in message, message


TEST_FORMAT = TraceFormat(
    "test-format",
    {"input": ("prompt_len", "count"), "output": ("gen_len", "count"), "arrival": ("t_ms", "ms")},
    ("input", "output", "arrival"),
)


def test_a_registered_format_is_detected_and_used_by_a_run(register, tmp_path):
    register(TRACE_FORMATS, "test-format", TEST_FORMAT)
    assert TRACE_FORMATS.names()[-1] == "test-format"
    rows = [(120, 10, 0), (80, 5, 12), (300, 7, 3)]
    for container in CONTAINERS:
        check_reads_back("test-format", container, rows)
    path = write_trace(tmp_path / "t.csv", "csv", columns_of(TEST_FORMAT, rows, TEST_FORMAT.required))
    result = kavier.simulate(trace=str(path), llm="Llama-3-8B", gpu="A10")
    assert result.requests.num_rows == 3
    assert sorted(result.requests.column("num_input_tokens").to_pylist()) == [80, 120, 300]
    # its columns are listed among the accepted ones when a file matches no format
    odd = tmp_path / "odd.csv"
    odd.write_text("a,b\n1,2\n")
    with pytest.raises(WorkloadError, match=r"test-format \(prompt_len, gen_len, t_ms\)"):
        open_trace(odd)


def test_a_trace_format_name_is_registered_once(register):
    register(TRACE_FORMATS, "test-once", TEST_FORMAT)
    other = TraceFormat("test-once", dict(TEST_FORMAT.columns), ("input", "output"))
    assert_registered_once(TRACE_FORMATS, "test-once", TEST_FORMAT, other)
