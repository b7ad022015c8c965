"""``kavier.workload.readers``: format detection by content, streaming, relative arrivals,
one-line errors."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kavier.errors import WorkloadError
from kavier.workload import readers
from kavier.workload.readers import open_trace
from kavier.workload.source import WorkloadSource, concat_chunks
from tests.paths import SHARED_DATA

AZURE_CSV = """TIMESTAMP,ContextTokens,GeneratedTokens
2023-11-16 18:15:46.6805900,374,44
2023-11-16 18:15:50.9951690,396,109
2023-11-16 18:15:51.2224670,879,0
2023-11-16 18:16:46.6805901,91,12
"""


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def read_all(path: Path, chunk_size: int = 3):
    source = open_trace(path)
    return source, concat_chunks(source.chunks(chunk_size))


def burstgpt_text(rows: int = 6) -> str:
    lines = ["Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type"]
    for i in range(rows):
        response = 0 if i == 2 else 10 + i
        lines.append(f"{5 + 0.5 * i},ChatGPT,{100 + i},{response},{110 + 2 * i},Conversation log")
    return "\n".join(lines) + "\n"


def mooncake_text(timestamps: list[int]) -> str:
    rows = [
        {"timestamp": t, "input_length": 600 + i, "output_length": 7 + i, "hash_ids": [0, 1 + i]}
        for i, t in enumerate(timestamps)
    ]
    return "".join(json.dumps(r) + "\n" for r in rows)


def test_thesis_csv_with_token_lists_as_strings(tmp_path: Path) -> None:
    text = (
        "num_input_tokens,num_output_tokens,input_tokens,output_tokens,session_id\n"
        '3,2,"[1, 100, 101]","[7, 8]",alice\n'
        '2,1,"[1, 100]","[9]",bob\n'
        '4,1,"[1, 100, 101, 102]","[5]",alice\n'
        "0,1,[],[3],carol\n"
    )
    source, chunk = read_all(write(tmp_path / "anything.dat", text))
    assert source.name == "thesis"
    assert isinstance(source, WorkloadSource)
    assert chunk.request_id.tolist() == [0, 1, 2, 3]
    assert chunk.arrival_s.tolist() == [0.0, 0.0, 0.0, 0.0]  # no ts column: all at 0
    assert chunk.num_input_tokens.tolist() == [3, 2, 4, 0]
    assert chunk.num_output_tokens.tolist() == [2, 1, 1, 1]
    assert chunk.input_tokens is not None
    assert chunk.input_tokens.type == pa.list_(pa.int64())
    assert chunk.input_tokens.to_pylist() == [[1, 100, 101], [1, 100], [1, 100, 101, 102], []]
    assert chunk.session_id.tolist() == [0, 1, 0, 2]  # codes in order of first appearance
    assert chunk.turn_id.tolist() == [0, 0, 1, 0]  # derived: order within the session
    assert chunk.session_prefix is False  # token ids say what is shared


def test_thesis_csv_sessions_without_token_lists_share_prefixes(tmp_path: Path) -> None:
    text = "session_id,turn_id,num_input_tokens,num_output_tokens,ts\n7,0,10,5,100.5\n7,1,20,5,101\n"
    _, chunk = read_all(write(tmp_path / "t.csv", text))
    assert chunk.session_id.tolist() == [7, 7]  # integer ids are kept
    assert chunk.turn_id.tolist() == [0, 1]
    assert chunk.arrival_s.tolist() == pytest.approx([0.0, 0.5])
    assert chunk.session_prefix is True


def test_thesis_parquet_with_list_columns(tmp_path: Path) -> None:
    table = pa.table(
        {
            "num_input_tokens": pa.array([3, 2], pa.int32()),
            "num_output_tokens": [4, 1],
            "input_tokens": pa.array([[1, 2, 3], [1, 2]], pa.list_(pa.int32())),
            "output_tokens": [[9, 9, 9, 9], [8]],
            "session_id": ["s1", "s2"],
            "ts": [2.0, 3.5],
        }
    )
    path = tmp_path / "trace.csv"  # misleading extension on purpose
    pq.write_table(table, path)
    source, chunk = read_all(path)
    assert source.name == "thesis"
    assert chunk.input_tokens is not None and chunk.input_tokens.type == pa.list_(pa.int64())
    assert chunk.input_tokens.to_pylist() == [[1, 2, 3], [1, 2]]
    assert chunk.arrival_s.tolist() == [0.0, 1.5]
    assert chunk.session_id.tolist() == [0, 1]
    assert chunk.num_input_tokens.dtype == np.int64


def test_azure_csv_seven_digit_fractions(tmp_path: Path) -> None:
    source, chunk = read_all(write(tmp_path / "azure.txt", AZURE_CSV), chunk_size=2)
    assert source.name == "azure"
    assert chunk.arrival_s.tolist() == pytest.approx([0.0, 4.314579, 4.541877, 60.0000001], abs=1e-9)
    assert chunk.num_input_tokens.tolist() == [374, 396, 879, 91]
    assert chunk.num_output_tokens.tolist() == [44, 109, 0, 12]
    assert chunk.session_id.tolist() == [-1] * 4 and chunk.turn_id.tolist() == [-1] * 4
    assert not chunk.session_prefix and chunk.hash_ids is None


def test_azure_timestamps_with_utc_offset(tmp_path: Path) -> None:
    text = "TIMESTAMP,ContextTokens,GeneratedTokens\n"
    text += "2024-05-10 00:00:00.009930+00:00,10,1\n2024-05-10 00:00:01.509930+00:00,11,2\n"
    _, chunk = read_all(write(tmp_path / "a.csv", text))
    assert chunk.arrival_s.tolist() == pytest.approx([0.0, 1.5])


def test_burstgpt_keeps_failed_requests(tmp_path: Path) -> None:
    source, chunk = read_all(write(tmp_path / "b.csv", burstgpt_text()))
    assert source.name == "burstgpt"
    assert len(chunk) == 6
    assert chunk.num_output_tokens[2] == 0  # a failure row, kept
    assert chunk.arrival_s.tolist() == pytest.approx([0.0, 0.5, 1.0, 1.5, 2.0, 2.5])
    assert chunk.num_input_tokens.tolist() == [100, 101, 102, 103, 104, 105]


def test_mooncake_jsonl(tmp_path: Path) -> None:
    text = mooncake_text([1000, 1000, 3500])
    source, chunk = read_all(write(tmp_path / "m.csv", "\n" + text))  # leading blank line
    assert source.name == "mooncake"
    assert chunk.arrival_s.tolist() == [0.0, 0.0, 2.5]  # ms -> s, relative to the first
    assert chunk.hash_ids is not None
    assert isinstance(chunk.hash_ids, pa.ListArray) and chunk.hash_ids.type.value_type == pa.int64()
    assert chunk.hash_ids.to_pylist() == [[0, 1], [0, 2], [0, 3]]
    assert chunk.hash_block_tokens == 512
    assert chunk.num_input_tokens.tolist() == [600, 601, 602]


def test_vidur_csv(tmp_path: Path) -> None:
    text = "arrived_at,num_prefill_tokens,num_decode_tokens,num_total_tokens\n"
    text += "10.25,100,20,120\n10.75,50,5,55\n"
    source, chunk = read_all(write(tmp_path / "v.json", text))
    assert source.name == "vidur"
    assert chunk.arrival_s.tolist() == [0.0, 0.5]
    assert chunk.num_input_tokens.tolist() == [100, 50]
    assert chunk.num_output_tokens.tolist() == [20, 5]


def test_any_format_in_any_container(tmp_path: Path) -> None:
    rows = [{"TIMESTAMP": "2023-11-16 18:15:46.5", "ContextTokens": 5, "GeneratedTokens": 1}]
    rows.append({"TIMESTAMP": "2023-11-16 18:15:47.0", "ContextTokens": 6, "GeneratedTokens": 2})
    path = write(tmp_path / "azure.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    source, chunk = read_all(path)
    assert source.name == "azure"
    assert chunk.arrival_s.tolist() == [0.0, 0.5]
    vidur = pa.table({"num_prefill_tokens": [5, 6], "num_decode_tokens": [1, 1]})
    pq.write_table(vidur, tmp_path / "v.parquet")
    source, chunk = read_all(tmp_path / "v.parquet")
    assert source.name == "vidur" and chunk.arrival_s.tolist() == [0.0, 0.0]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(chunk_size=st.integers(1, 60))
def test_chunks_concatenate_to_the_whole_trace(tmp_path: Path, chunk_size: int) -> None:
    path = tmp_path / "b.csv"
    if not path.exists():
        write(path, burstgpt_text(50))
    whole = concat_chunks(open_trace(path).chunks(10_000))
    chunks = list(open_trace(path).chunks(chunk_size))
    assert all(len(c) == chunk_size for c in chunks[:-1]) and 1 <= len(chunks[-1]) <= chunk_size
    joined = concat_chunks(chunks)
    assert joined.request_id.tolist() == list(range(50))
    for name in ("arrival_s", "num_input_tokens", "num_output_tokens", "session_id", "turn_id"):
        assert np.array_equal(getattr(joined, name), getattr(whole, name))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.lists(
        st.tuples(st.integers(0, 10_000), st.integers(0, 5000), st.integers(0, 500)),
        min_size=1,
        max_size=40,
    ),
    chunk_size=st.integers(1, 50),
)
def test_any_vidur_trace_reads_back_sorted(tmp_path: Path, rows: list, chunk_size: int) -> None:
    """Random (possibly unsorted) traces read back as the stable sort by arrival."""
    text = "arrived_at,num_prefill_tokens,num_decode_tokens\n"
    text += "".join(f"{ms / 1000},{i},{o}\n" for ms, i, o in rows)
    path = write(tmp_path / "v.csv", text)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        chunks = list(open_trace(path).chunks(chunk_size))
    chunk = concat_chunks(chunks)
    ms = np.array([r[0] for r in rows])
    order = np.argsort(ms, kind="stable")
    assert chunk.request_id.tolist() == list(range(len(rows)))
    assert chunk.arrival_s == pytest.approx((ms[order] - ms.min()) / 1000, abs=1e-9)
    assert chunk.num_input_tokens.tolist() == [rows[k][1] for k in order]
    assert chunk.num_output_tokens.tolist() == [rows[k][2] for k in order]
    assert all(len(c) == chunk_size for c in chunks[:-1])


def test_arrivals_are_relative_to_the_first_request_of_the_trace(tmp_path: Path) -> None:
    chunks = list(open_trace(write(tmp_path / "b.csv", burstgpt_text(6))).chunks(4))
    assert chunks[0].arrival_s[0] == 0.0
    assert chunks[1].arrival_s.tolist() == pytest.approx([2.0, 2.5])  # not re-based per chunk
    assert chunks[1].request_id.tolist() == [4, 5]


def test_streams_across_read_blocks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tiny read blocks: state (ids, session codes, turns, arrival origin) spans blocks."""
    monkeypatch.setattr(readers, "CSV_BLOCK_BYTES", 64)
    monkeypatch.setattr(readers, "JSONL_BLOCK_BYTES", 100)
    monkeypatch.setattr(readers, "PARQUET_BATCH_ROWS", 3)
    n = 40
    names = [f"user{i % 7}" for i in range(n)]
    lines = ["ts,session_id,num_input_tokens,num_output_tokens"]
    lines += [f"{10 + i},{names[i]},{i},{1}" for i in range(n)]
    _, chunk = read_all(write(tmp_path / "t.csv", "\n".join(lines) + "\n"), chunk_size=5)
    assert chunk.arrival_s.tolist() == [float(i) for i in range(n)]
    assert chunk.session_id.tolist() == [i % 7 for i in range(n)]
    assert chunk.turn_id.tolist() == [i // 7 for i in range(n)]
    _, moon = read_all(write(tmp_path / "m.jsonl", mooncake_text([5 * i for i in range(n)])))
    assert moon.arrival_s.tolist() == pytest.approx([0.005 * i for i in range(n)])
    assert moon.hash_ids is not None and moon.hash_ids.to_pylist()[-1] == [0, n]
    table = pa.table({"ts": np.arange(n) + 3.0, "num_input_tokens": np.arange(n)})
    pq.write_table(table.append_column("num_output_tokens", pa.array(np.ones(n))), tmp_path / "p")
    _, par = read_all(tmp_path / "p", chunk_size=7)
    assert par.arrival_s.tolist() == [float(i) for i in range(n)]
    assert par.num_output_tokens.tolist() == [1] * n


def test_unsorted_trace_is_sorted_stably_with_a_note(tmp_path: Path) -> None:
    text = burstgpt_text(0) + "3,m,30,1,31,x\n1,m,10,1,11,x\n2,m,20,1,21,x\n1,m,11,1,12,x\n"
    source = open_trace(write(tmp_path / "b.csv", text))
    with pytest.warns(UserWarning, match="not sorted"):
        chunk = concat_chunks(source.chunks(2))
    assert chunk.num_input_tokens.tolist() == [10, 11, 20, 30]  # stable for equal times
    assert chunk.arrival_s.tolist() == [0.0, 0.0, 1.0, 2.0]
    assert chunk.request_id.tolist() == [0, 1, 2, 3]
    assert len(source.notes) == 1 and "sorted" in source.notes[0]


def test_unsorted_jsonl_moves_hash_ids_with_their_rows(tmp_path: Path) -> None:
    path = write(tmp_path / "m.jsonl", mooncake_text([3000, 1000, 2000]))
    with pytest.warns(UserWarning):
        _, chunk = read_all(path, chunk_size=2)
    assert chunk.arrival_s.tolist() == [0.0, 1.0, 2.0]
    assert chunk.num_input_tokens.tolist() == [601, 602, 600]
    assert chunk.hash_ids is not None and chunk.hash_ids.to_pylist() == [[0, 2], [0, 3], [0, 1]]


def test_unsorted_sessions_recoded_in_arrival_order(tmp_path: Path) -> None:
    text = "ts,session_id,num_input_tokens,num_output_tokens\n5,zed,1,1\n1,amy,1,1\n7,amy,2,1\n"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, chunk = read_all(write(tmp_path / "t.csv", text))
    assert chunk.session_id.tolist() == [0, 1, 0]  # amy first by arrival
    assert chunk.turn_id.tolist() == [0, 0, 1]


def error_of(path: Path) -> str:
    with pytest.raises(WorkloadError) as info:
        source = open_trace(path)
        for _ in source.chunks(2):
            pass
    message = str(info.value)
    assert "\n" not in message
    assert path.name in message
    return message


def test_missing_empty_and_header_only_files(tmp_path: Path) -> None:
    assert "does not exist" in error_of(tmp_path / "nope.csv")
    assert "empty" in error_of(write(tmp_path / "empty.csv", "\n\n"))
    assert "no rows" in error_of(write(tmp_path / "h.csv", "ts,num_input_tokens,num_output_tokens\n"))
    assert "directory" in error_of(tmp_path)


def test_unrecognised_format_lists_accepted_column_sets(tmp_path: Path) -> None:
    message = error_of(write(tmp_path / "x.csv", "foo,bar\n1,2\n"))
    assert "not recognised" in message
    for column in ("num_input_tokens", "ContextTokens", "Request tokens", "input_length"):
        assert column in message
    assert "not recognised" in error_of(write(tmp_path / "y.jsonl", '{"a": 1}\n'))


def test_missing_required_column(tmp_path: Path) -> None:
    message = error_of(write(tmp_path / "a.csv", "TIMESTAMP,ContextTokens\n2023-11-16 18:15:46,5\n"))
    assert "azure" in message and "'GeneratedTokens'" in message


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ("2023-11-16 18:15:47.0,-5,1", "negative"),
        ("2023-11-16 18:15:47.0,,1", "empty"),
        ("2023-11-16 18:15:47.0,NaN,1", "NaN"),
        ("2023-11-16 18:15:47.0,lots,1", "not a number"),
        ("2023-11-16 18:15:47.0,2.5,1", "whole number"),
        ("yesterday,5,1", "timestamp"),
        ("2023-11-16 18:15:47.0,5", "fields"),
    ],
)
def test_bad_values_name_file_row_and_column(tmp_path: Path, row: str, expected: str) -> None:
    good = "2023-11-16 18:15:47.0,5,1\n"
    text = "TIMESTAMP,ContextTokens,GeneratedTokens\n" + good * 3 + row + "\n" + good
    message = error_of(write(tmp_path / "bad.csv", text))
    assert "row 4" in message and expected in message
    if expected != "fields":
        assert "TIMESTAMP" in message or "ContextTokens" in message


def test_errors_in_later_read_blocks_name_the_right_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(readers, "CSV_BLOCK_BYTES", 64)
    lines = ["num_input_tokens,num_output_tokens"] + ["5,1"] * 30 + ["5,-1"]
    message = error_of(write(tmp_path / "t.csv", "\n".join(lines) + "\n"))
    assert "row 31" in message and "num_output_tokens" in message


def test_jsonl_errors_name_the_line(tmp_path: Path) -> None:
    text = mooncake_text([0, 1, 2])
    message = error_of(write(tmp_path / "m.jsonl", text + "{not json}\n"))
    assert "line 4" in message and "JSON" in message
    bad = text + json.dumps({"timestamp": 3, "input_length": "many", "output_length": 1}) + "\n"
    message = error_of(write(tmp_path / "m2.jsonl", bad))
    assert "line 4" in message and "input_length" in message
    neg = text + "\n" + json.dumps({"timestamp": 3, "input_length": -2, "output_length": 1})
    message = error_of(write(tmp_path / "m3.jsonl", neg))
    assert "line 5" in message and "negative" in message  # blank line 4 is counted
    missing = text + json.dumps({"timestamp": 3, "input_length": 2}) + "\n"
    message = error_of(write(tmp_path / "m4.jsonl", missing))
    assert "line 4" in message and "output_length" in message


def test_parquet_errors(tmp_path: Path) -> None:
    pq.write_table(pa.table({"num_input_tokens": [1, None], "num_output_tokens": [1, 1]}), tmp_path / "p")
    message = error_of(tmp_path / "p")
    assert "row 2" in message and "num_input_tokens" in message
    corrupt = tmp_path / "c.parquet"
    corrupt.write_bytes(b"PAR1" + b"\0" * 20)
    assert "parquet" in error_of(corrupt)


def test_arrival_in_wrong_unit_is_reported(tmp_path: Path) -> None:
    text = "ts,num_input_tokens,num_output_tokens\n1.7e12,1,1\n1.7e12,1,1\n"  # ns, not s
    message = error_of(write(tmp_path / "t.csv", text))
    assert "row 1" in message and "'ts'" in message and "unit" in message


def test_token_list_errors(tmp_path: Path) -> None:
    text = 'num_input_tokens,num_output_tokens,input_tokens\n2,1,"[1, 2]"\n2,1,"[1, x]"\n'
    message = error_of(write(tmp_path / "t.csv", text))
    assert "row 2" in message and "input_tokens" in message


@pytest.mark.parametrize(
    ("name", "fmt", "rows"),
    [
        ("azure_llm_2023_conv.csv", "azure", 19_366),
        ("mooncake_conversation.jsonl", "mooncake", 12_031),
    ],
)
def test_real_traces(name: str, fmt: str, rows: int) -> None:
    path = SHARED_DATA / "traces" / name
    if not path.exists():
        pytest.skip(f"{path} not present (../shared is optional)")
    source = open_trace(path)
    assert source.name == fmt
    count, last_id, last_arrival = 0, -1, 0.0
    for chunk in source.chunks(4096):
        assert len(chunk) <= 4096
        assert chunk.request_id[0] == last_id + 1
        assert chunk.arrival_s[0] >= last_arrival and np.all(np.diff(chunk.arrival_s) >= 0)
        if count == 0:
            assert chunk.arrival_s[0] == 0.0
        count += len(chunk)
        last_id, last_arrival = int(chunk.request_id[-1]), float(chunk.arrival_s[-1])
        assert np.all(chunk.num_input_tokens > 0)
    assert count == rows
    assert 3000 < last_arrival < 3700  # about one hour
    assert source.notes == []
